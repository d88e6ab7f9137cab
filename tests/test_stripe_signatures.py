"""Stripe-Signature verification through the `stripe` package, without network: tolerance
(on our clock), rotation, and headers of any shape refused with a reason, never an exception."""

import time
from datetime import UTC, datetime, timedelta

import pytest
import stripe
from hypothesis import given, settings
from hypothesis import strategies as st

from odavl_pipeline.stripe_billing.signatures import SignatureError, parse_secrets, verify_signature

from .stripe_signing import signature, signature_header, signed_now

BODY = '{"id": "evt_1", "type": "customer.updated", "note": "été"}'
OLD, NEW = "whsec_old", "whsec_new"


def header(*signatures: str, timestamp: int | str) -> str:
    return ",".join([f"t={timestamp}", *(f"v1={value}" for value in signatures)])


def sign(secret: str, timestamp: int, body: str = BODY) -> str:
    return signature(secret, timestamp, body.encode())


def reason(value: str | None, secrets=(NEW,), body: str = BODY) -> str:
    with pytest.raises(SignatureError) as refused:
        verify_signature(body, value, secrets)
    return refused.value.reason


def test_our_test_signatures_are_the_ones_stripe_computes_and_they_are_accepted():
    t = signed_now()
    assert signature_header(
        BODY.encode(), NEW, t
    ) == stripe.WebhookSignature.generate_signature_header(BODY, NEW, t)
    verify_signature(BODY, signature_header(BODY.encode(), NEW), (NEW,))


def test_a_forged_signature_or_a_changed_body_is_refused():
    t = signed_now()
    assert reason(header(sign("whsec_attacker", t), timestamp=t)) == "invalid_signature"
    assert reason(header(sign(NEW, t), timestamp=t), body=BODY + " ") == "invalid_signature"
    # the timestamp is signed too: moving it breaks the signature
    assert reason(header(sign(NEW, t), timestamp=t - 1)) == "invalid_signature"


def test_a_signature_older_than_300_seconds_is_refused_a_future_one_accepted_as_by_stripe():
    t = signed_now()
    verify_signature(BODY, header(sign(NEW, t - 250), timestamp=t - 250), (NEW,))
    assert reason(header(sign(NEW, t - 301), timestamp=t - 301)) == "timestamp_outside_tolerance"
    verify_signature(BODY, header(sign(NEW, t + 3600), timestamp=t + 3600), (NEW,))


def test_the_age_of_a_signature_is_measured_on_our_clock(clock_at):
    system_now = int(time.time())
    t = int(clock_at(datetime.now(UTC) + timedelta(days=400)).timestamp())
    assert reason(header(sign(NEW, system_now), timestamp=system_now)) == (
        "timestamp_outside_tolerance"
    )
    verify_signature(BODY, header(sign(NEW, t - 250), timestamp=t - 250), (NEW,))
    assert reason(header(sign(NEW, t - 301), timestamp=t - 301)) == "timestamp_outside_tolerance"
    verify_signature(BODY, signature_header(BODY.encode(), NEW), (NEW,))


def test_a_stale_signature_by_the_second_secret_is_told_apart_from_a_forged_one():
    stale = signed_now() - 301
    assert reason(header(sign(NEW, stale), timestamp=stale), secrets=(OLD, NEW)) == (
        "timestamp_outside_tolerance"
    )


def test_any_of_several_secrets_and_any_of_several_v1_values_is_enough_during_rotation():
    t = signed_now()
    by_old, by_new = sign(OLD, t), sign(NEW, t)
    verify_signature(BODY, header("0" * 64, by_new, timestamp=t), (OLD, NEW))
    verify_signature(BODY, header(by_old, by_new, timestamp=t), (NEW,))
    verify_signature(BODY, header(by_old, timestamp=t), parse_secrets(f" {OLD} , {NEW} "))
    assert reason(header(by_old, timestamp=t), secrets=(NEW,)) == "invalid_signature"


def test_other_schemes_are_ignored():
    t = signed_now()
    assert reason(f"t={t},v0={sign(NEW, t)}") == "invalid_signature"
    verify_signature(BODY, f"t={t},v0=abc,v1={sign(NEW, t)}", (NEW,))


T = 1_800_000_000
GOOD = sign(NEW, T)


@pytest.mark.parametrize(
    "value",
    [
        "garbage",
        ",,,",
        "t",
        "t=",
        f"v1={GOOD}",
        f"t=soon,v1={GOOD}",
        f"t=²,v1={GOOD}",  # "²".isdigit(), but not a number int() reads
        f"t=١٨٠٠٠٠٠٠٠٠,v1={GOOD}",  # Arabic-Indic digits: not ASCII
        f"t={'9' * 5000},v1={GOOD}",  # longer than int() reads
        f"t={10**20},v1={GOOD}",
        f"t=-{T},v1={GOOD}",
        f"t={T}",
        f"t={T},v1=",
        f"t={T},v1=é{GOOD}",  # stripe's comparison raises TypeError on non-ASCII
        f"t={T},v1=\x00",
        header(*["0" * 64] * 10_000, timestamp=T),
    ],
)
def test_an_odd_header_is_refused_with_a_reason(value):
    assert reason(value) == "invalid_signature"


@pytest.mark.parametrize("value", [None, "", "  "])
def test_a_missing_header_says_so(value):
    assert reason(value) == "missing_header"


HEADERS = st.one_of(
    st.text(),
    st.lists(
        st.sampled_from(["t=", "v1=", "v0=", "=", ",", "t", str(T), GOOD])
        | st.integers(-(10**30), 10**30).map(str)
        | st.text(max_size=8)
    ).map("".join),
)


@settings(max_examples=300, deadline=None, database=None)
@given(value=HEADERS, body=st.text())
def test_any_header_and_body_end_in_acceptance_or_a_signature_error(value, body):
    body = body.encode("utf-8", "replace").decode()  # the endpoint verifies decoded UTF-8
    try:
        verify_signature(body, value, (OLD, NEW))
    except SignatureError as error:
        assert error.reason in (
            "missing_header",
            "invalid_signature",
            "timestamp_outside_tolerance",
        )


def test_a_refusal_carries_stripes_message_not_the_header_or_body():
    t = signed_now()
    with pytest.raises(SignatureError) as refused:
        verify_signature(BODY, header(sign("whsec_attacker", t), timestamp=t), (NEW,))
    assert BODY not in str(refused.value) and "v1=" not in refused.value.detail


def test_secrets_are_read_comma_separated():
    assert parse_secrets(None) == ()
    assert parse_secrets(" , ") == ()
    assert parse_secrets(f"{OLD},{NEW}") == (OLD, NEW)
