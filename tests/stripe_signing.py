"""Stripe-Signature headers for test deliveries, computed the documented way."""

import hashlib
import hmac

from odavl_pipeline import clock


def signature(secret: str, timestamp: int | str, body: bytes) -> str:
    """A `v1` value: hex HMAC-SHA256 of `"<t>." + body` keyed with the endpoint secret."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signed_now() -> int:
    """A signature's timestamp now: our clock's Unix seconds, the clock the endpoint checks with."""
    return int(clock.now().timestamp())


def signature_header(body: bytes, secret: str, timestamp: int | str | None = None) -> str:
    """`t=<timestamp>,v1=<signature>`, signed now unless a timestamp is given."""
    timestamp = signed_now() if timestamp is None else timestamp
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"
