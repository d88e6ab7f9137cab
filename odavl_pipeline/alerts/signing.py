"""Signed webhooks, the way Stripe signs its own.

Header `ODAVL-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`: the
timestamp is part of what is signed, so a receiver rejects a replayed request by its age, and
the body is the exact bytes received. A receiver may get several `v1=` while a secret rotates.
"""

import hashlib
import hmac

from odavl_pipeline import clock

SIGNATURE_HEADER = "ODAVL-Signature"
TOLERANCE_SECONDS = 300  # what `verify` accepts between the signature's time and now


def _hmac(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The value of the `ODAVL-Signature` header for `body`, signed at `timestamp` (now)."""
    t = int(clock.now().timestamp()) if timestamp is None else timestamp
    return f"t={t},v1={_hmac(secret, t, body)}"


def verify(
    secret: str,
    header: str,
    body: bytes,
    tolerance: int = TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """Whether `header` signs `body` with `secret`, at most `tolerance` seconds ago."""
    try:
        parts = [item.split("=", 1) for item in header.split(",")]
        timestamps = [int(value) for key, value in parts if key.strip() == "t"]
        signatures = [value for key, value in parts if key.strip() == "v1"]
    except ValueError:
        return False
    if len(timestamps) != 1 or not signatures:
        return False
    t = timestamps[0]
    if abs((clock.now().timestamp() if now is None else now) - t) > tolerance:
        return False
    expected = _hmac(secret, t, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in signatures)


def organization_secret(master: str, organization_id: int) -> str:
    """The secret that signs an organization's own endpoint: derived from the master secret
    (ODAVL_ALERT_WEBHOOK_SECRET), so no organization can sign for another and none is stored."""
    digest = hmac.new(
        master.encode(), f"odavl-organization-alerts:{organization_id}".encode(), hashlib.sha256
    ).hexdigest()
    return f"whsec_{digest}"


def endpoint_secret(master: str, salt: str) -> str:
    """The secret that signs one endpoint added by its organization: derived from the master
    secret and the endpoint's random salt (kept in its row), so it is shown once when added,
    recomputed to sign, and never stored."""
    digest = hmac.new(
        master.encode(), f"odavl-alert-endpoint:{salt}".encode(), hashlib.sha256
    ).hexdigest()
    return f"whsec_{digest}"
