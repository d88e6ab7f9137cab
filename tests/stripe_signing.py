"""Stripe-Signature headers for test deliveries, computed the documented way."""

import hashlib
import hmac
import time


def signature(secret: str, timestamp: int | str, body: bytes) -> str:
    """A `v1` value: hex HMAC-SHA256 of `"<t>." + body` keyed with the endpoint secret."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(body: bytes, secret: str, timestamp: int | str | None = None) -> str:
    """`t=<timestamp>,v1=<signature>`, signed now unless a timestamp is given."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"
