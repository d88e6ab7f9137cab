"""Verification of the `Stripe-Signature` header of a webhook delivery, by the `stripe` package.

`stripe.WebhookSignature.verify_header` parses the header (`t=<unix seconds>,v1=<hex>…`) and
checks that a `v1` value is the HMAC-SHA256 of `"<t>." + body` keyed with the endpoint
secret. It is called once per secret: STRIPE_WEBHOOK_SECRET holds several, comma-separated,
while a secret is rotated. A header that is not ASCII is refused before: Stripe's header is
ASCII, and the package's comparison raises TypeError on anything else. A signed timestamp
older than the tolerance is refused, a future one accepted, as the package does, but measured
on our clock (`clock.now()`), not the package's `time.time()`: the one clock every rule asks.
"""

from collections.abc import Sequence

import stripe

from odavl_pipeline import clock

TOLERANCE_SECONDS = 300


class SignatureError(Exception):
    """A delivery that is not proven to come from Stripe; `reason` says why, `detail` how."""

    MISSING_HEADER = "missing_header"
    INVALID_SIGNATURE = "invalid_signature"
    TIMESTAMP_OUTSIDE_TOLERANCE = "timestamp_outside_tolerance"

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def parse_secrets(value: str | None) -> tuple[str, ...]:
    """The endpoint secrets of a comma-separated STRIPE_WEBHOOK_SECRET (empty when unset)."""
    return tuple(secret.strip() for secret in (value or "").split(",") if secret.strip())


def verify_signature(
    payload: str, header: str | None, secrets: Sequence[str], *, tolerance: int = TOLERANCE_SECONDS
) -> None:
    """Return when one of `secrets` signed `payload` (the body as text) within `tolerance`
    seconds; raise `SignatureError` otherwise."""
    if not secrets:
        raise ValueError("no webhook secret to verify with")
    if not header or not header.strip():
        raise SignatureError(SignatureError.MISSING_HEADER, "no Stripe-Signature header")
    if not header.isascii():
        raise SignatureError(
            SignatureError.INVALID_SIGNATURE, "the Stripe-Signature header is not ASCII"
        )
    refusals = []
    for secret in secrets:
        try:  # the signature alone first, so that a stale one is told apart from a forged one
            stripe.WebhookSignature.verify_header(payload, header, secret)
        except stripe.SignatureVerificationError as error:
            refusals.append(str(error))  # its message only, not the header or body
            continue
        signed_at = _signed_at(header)
        if signed_at < clock.now().timestamp() - tolerance:
            raise SignatureError(
                SignatureError.TIMESTAMP_OUTSIDE_TOLERANCE,
                f"Timestamp outside the tolerance zone ({signed_at})",
            )
        return
    raise SignatureError(SignatureError.INVALID_SIGNATURE, refusals[0])


def _signed_at(header: str) -> int:
    """The header's first `t`, read as the package reads it: the value its signature covers."""
    return int(next(part.split("=", 2)[1] for part in header.split(",") if part.startswith("t=")))
