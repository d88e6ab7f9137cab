"""One POST of a JSON body to a webhook, standard library only.

The URL often holds a token (Slack, Teams, PagerDuty), so it is never logged or returned.
"""

import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass

TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class Delivery:
    delivered: bool
    detail: str  # "HTTP 200", or why it failed; never the URL
    status: int | None = None  # the HTTP status code, when there was an answer


def post(
    url: str,
    body: bytes,
    headers: Mapping[str, str] | None = None,
    timeout: float = TIMEOUT_SECONDS,
) -> Delivery:
    """POST `body` (JSON) to `url`; delivered on a 2xx answer. A failure is reported, never raised."""
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "odavl-pipeline",
            **(headers or {}),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Delivery(
                200 <= response.status < 300, f"HTTP {response.status}", response.status
            )
    except urllib.error.HTTPError as error:
        return Delivery(False, f"HTTP {error.code}", error.code)
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        return Delivery(False, f"{type(error).__name__}: {type(reason).__name__}")
