"""Stripe-Signature verification, without network: HMAC-SHA256, tolerance, rotation."""

import pytest
import stripe

from odavl_pipeline.stripe_billing.signatures import (
    SignatureError,
    compute_signature,
    parse_secrets,
    verify_signature,
)

BODY = b'{"id": "evt_1", "type": "customer.updated"}'
NOW = 1_800_000_000
OLD, NEW = "whsec_old", "whsec_new"


def header(*signatures: str, timestamp: int = NOW) -> str:
    return ",".join([f"t={timestamp}", *(f"v1={signature}" for signature in signatures)])


def verify(body: bytes, value: str | None, secrets=(NEW,), now: float = NOW) -> int:
    return verify_signature(body, value, secrets, clock=lambda: now)


def reason(body: bytes, value: str | None, secrets=(NEW,), now: float = NOW) -> str:
    with pytest.raises(SignatureError) as refused:
        verify(body, value, secrets, now)
    return refused.value.reason


def test_our_signature_is_the_one_stripes_own_library_accepts():
    signature = compute_signature(NEW, NOW, BODY)
    assert stripe.WebhookSignature.verify_header(BODY.decode(), header(signature), NEW,
                                                 tolerance=None)
    assert verify(BODY, header(signature)) == NOW


def test_a_forged_signature_or_a_changed_body_is_refused():
    forged = compute_signature("whsec_attacker", NOW, BODY)
    assert reason(BODY, header(forged)) == "no_matching_signature"
    assert reason(BODY + b" ", header(compute_signature(NEW, NOW, BODY))) == "no_matching_signature"
    # the timestamp is signed too: moving it breaks the signature
    assert reason(BODY, header(compute_signature(NEW, NOW, BODY), timestamp=NOW + 1),
                  now=NOW + 1) == "no_matching_signature"


def test_a_stale_or_future_timestamp_is_refused_beyond_300_seconds():
    signature = compute_signature(NEW, NOW, BODY)
    assert verify(BODY, header(signature), now=NOW + 300) == NOW
    assert reason(BODY, header(signature), now=NOW + 301) == "timestamp_outside_tolerance"
    assert reason(BODY, header(signature), now=NOW - 301) == "timestamp_outside_tolerance"


def test_any_of_several_secrets_and_any_of_several_v1_values_is_enough_during_rotation():
    by_old, by_new = compute_signature(OLD, NOW, BODY), compute_signature(NEW, NOW, BODY)
    assert verify(BODY, header("0" * 64, by_new), secrets=(OLD, NEW)) == NOW
    assert verify(BODY, header(by_old, by_new), secrets=(NEW,)) == NOW
    assert verify(BODY, header(by_old), secrets=parse_secrets(f" {OLD} , {NEW} ")) == NOW
    assert reason(BODY, header(by_old), secrets=(NEW,)) == "no_matching_signature"


def test_other_schemes_are_ignored():
    v0 = compute_signature(NEW, NOW, BODY)
    assert reason(BODY, f"t={NOW},v0={v0}") == "malformed_header"
    assert verify(BODY, f"t={NOW},v0=abc,v1={v0}") == NOW


@pytest.mark.parametrize("value, expected", [
    (None, "missing_header"),
    ("", "missing_header"),
    ("garbage", "malformed_header"),
    (f"v1={'a' * 64}", "malformed_header"),
    (f"t=soon,v1={'a' * 64}", "malformed_header"),
    (f"t={NOW},t={NOW},v1={'a' * 64}", "malformed_header"),
    (f"t={NOW}", "malformed_header"),
])
def test_a_missing_or_malformed_header_says_so(value, expected):
    assert reason(BODY, value) == expected


def test_secrets_are_read_comma_separated():
    assert parse_secrets(None) == ()
    assert parse_secrets(" , ") == ()
    assert parse_secrets(f"{OLD},{NEW}") == (OLD, NEW)
