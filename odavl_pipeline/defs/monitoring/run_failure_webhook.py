"""A failed run's report to the webhook (ODAVL_ALERT_WEBHOOK_URL): plain Python, standard
library only.

The URL often holds a token (Slack, Teams, PagerDuty), so it is never logged or returned.
The body is JSON with a `text` field, which Slack-compatible incoming webhooks display as is.
The POST itself is `odavl_pipeline.alerts.http.post`, shared with the quota alerts.
"""

import json

from odavl_pipeline.alerts.http import Delivery, post


def post_run_failure(url: str, report: dict) -> Delivery:
    """POST `report` as JSON to `url`; a failure is reported, never raised."""
    return post(url, json.dumps(report, default=str).encode())
