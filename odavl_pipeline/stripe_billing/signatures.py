"""Verification of the `Stripe-Signature` header of a webhook delivery.

The header is `t=<unix seconds>,v1=<hex>[,v1=<hex>…]` (other schemes such as `v0` are
ignored). A delivery is genuine when one of its `v1` values is the HMAC-SHA256, keyed with
one of our endpoint secrets, of `"<t>." + raw body`, and `t` lies within the tolerance of our
clock. Several secrets are accepted while a secret is being rotated (STRIPE_WEBHOOK_SECRET
holds them comma-separated); Stripe then sends one `v1` per secret it signs with.
"""

import hashlib
import hmac
import time
from collections.abc import Callable, Sequence

TOLERANCE_SECONDS = 300


class SignatureError(Exception):
    """A delivery that is not proven to come from Stripe; `reason` says why."""

    MISSING_HEADER = "missing_header"
    MALFORMED_HEADER = "malformed_header"
    NO_MATCHING_SIGNATURE = "no_matching_signature"
    TIMESTAMP_OUTSIDE_TOLERANCE = "timestamp_outside_tolerance"

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def parse_secrets(value: str | None) -> tuple[str, ...]:
    """The endpoint secrets of a comma-separated STRIPE_WEBHOOK_SECRET (empty when unset)."""
    return tuple(secret.strip() for secret in (value or "").split(",") if secret.strip())


def compute_signature(secret: str, timestamp: int, payload: bytes) -> str:
    """The `v1` signature: hex HMAC-SHA256 of `"<timestamp>." + payload` keyed with `secret`."""
    signed = str(timestamp).encode() + b"." + payload
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def verify_signature(payload: bytes, header: str | None, secrets: Sequence[str], *,
                     tolerance: int = TOLERANCE_SECONDS,
                     clock: Callable[[], float] = time.time) -> int:
    """Return the signed timestamp of a genuine delivery; raise `SignatureError` otherwise."""
    if not header or not header.strip():
        raise SignatureError(SignatureError.MISSING_HEADER, "no Stripe-Signature header")
    if not secrets:
        raise ValueError("no webhook secret to verify with")
    timestamp, candidates = _parse_header(header)
    expected = [compute_signature(secret, timestamp, payload) for secret in secrets]
    matched = False
    for candidate in candidates:  # every pair is compared, in constant time each
        for signature in expected:
            matched |= hmac.compare_digest(signature.encode(), candidate.encode())
    if not matched:
        raise SignatureError(SignatureError.NO_MATCHING_SIGNATURE,
                             "no v1 signature matches the payload with our secrets")
    age = clock() - timestamp
    if abs(age) > tolerance:
        raise SignatureError(SignatureError.TIMESTAMP_OUTSIDE_TOLERANCE,
                             f"signed {age:.0f} s from now, tolerance {tolerance} s")
    return timestamp


def _parse_header(header: str) -> tuple[int, list[str]]:
    timestamps, candidates = [], []
    for part in header.split(","):
        key, separator, value = part.strip().partition("=")
        if not separator:
            raise SignatureError(SignatureError.MALFORMED_HEADER, "an element is not key=value")
        if key == "t":
            timestamps.append(value)
        elif key == "v1":
            candidates.append(value)
    if len(timestamps) != 1 or not timestamps[0].isdigit():
        raise SignatureError(SignatureError.MALFORMED_HEADER, "expected exactly one integer t=")
    if not candidates:
        raise SignatureError(SignatureError.MALFORMED_HEADER, "no v1 signature")
    return int(timestamps[0]), candidates
