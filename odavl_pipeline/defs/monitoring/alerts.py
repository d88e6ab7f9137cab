"""Alerts to a webhook (ODAVL_ALERT_WEBHOOK_URL): plain Python, standard library only.

The URL often holds a token (Slack, Teams, PagerDuty), so it is never logged or returned.
The body is JSON with a `text` field, which Slack-compatible incoming webhooks display as is.
"""

import json
import urllib.error
import urllib.request
from dataclasses import dataclass

TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class Delivery:
    delivered: bool
    detail: str  # "HTTP 200", or why it failed; never the URL


def post_alert(url: str, payload: dict) -> Delivery:
    """POST `payload` as JSON to `url`; a failure is reported, never raised."""
    request = urllib.request.Request(
        url, data=json.dumps(payload, default=str).encode(), method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "odavl-pipeline"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            return Delivery(200 <= response.status < 300, f"HTTP {response.status}")
    except urllib.error.HTTPError as error:
        return Delivery(False, f"HTTP {error.code}")
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        return Delivery(False, f"{type(error).__name__}: {type(reason).__name__}")
