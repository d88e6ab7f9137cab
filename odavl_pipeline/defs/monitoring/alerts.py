"""Alerts to a webhook (ODAVL_ALERT_WEBHOOK_URL): plain Python, standard library only.

The URL often holds a token (Slack, Teams, PagerDuty), so it is never logged or returned.
The body is JSON with a `text` field, which Slack-compatible incoming webhooks display as is.
The POST itself is `odavl_pipeline.alerts.http.post`, shared with the quota alerts.
"""

import json

from odavl_pipeline.alerts.http import TIMEOUT_SECONDS, Delivery, post

__all__ = ["TIMEOUT_SECONDS", "Delivery", "post_alert"]


def post_alert(url: str, payload: dict) -> Delivery:
    """POST `payload` as JSON to `url`; a failure is reported, never raised."""
    return post(url, json.dumps(payload, default=str).encode())
