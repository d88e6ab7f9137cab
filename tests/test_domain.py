"""The plain-Python domain: signatures, attestation hashes, record rules, plan periods."""

import hashlib
import json
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from odavl_pipeline.billing.plans import add_months, period_containing, periods_covering, quotas
from odavl_pipeline.billing.quota import forecast, quota_status
from odavl_pipeline.domain.attestations import attestation_hash
from odavl_pipeline.domain.records import (
    RULES,
    Reason,
    Rejected,
    validate_attestation,
    validate_audit,
    validate_error,
    validate_usage,
)
from odavl_pipeline.domain.signatures import error_signature, normalize_message

from .records import attestation, audit, error, usage

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
# the contract's own limits: the domain is tested without the storage that narrows them
USAGE, ERRORS, ATTESTATIONS, AUDITS = (
    RULES[source]
    for source in ("usage_events", "error_events", "fix_attestations", "audit_results")
)


@pytest.mark.parametrize(
    "message, normalized",
    [
        ("  Unexpected   token\t at\n line 12 ", "Unexpected token at line <n>"),
        ("Request 3F2504E0-4F89-11D3-9A0C-0305E82C3301 failed", "Request <uuid> failed"),
        ("Segfault at 0xDEADbeef in frame 7", "Segfault at <hex> in frame <n>"),
        ("v2 and 10.5", "v<n> and <n>.<n>"),
    ],
)
def test_normalize_masks_variable_parts_in_the_contract_order(message, normalized):
    assert normalize_message(message) == normalized


def test_signature_is_the_sha256_of_the_versioned_text_and_ignores_line_numbers():
    expected = hashlib.sha256(b"v1\neslint\nsrc/a.ts\nToo many lines (<n>)").hexdigest()
    assert error_signature("eslint", "src/a.ts", "Too  many lines (301)") == expected
    assert error_signature("eslint", "src/b.ts", "Too many lines (301)") != expected


def test_attestation_hash_is_over_canonical_json_without_the_hash_field():
    record = {"b": 1, "a": "é", "hash": "ignored"}
    canonical = json.dumps({"a": "é", "b": 1}, separators=(",", ":"), ensure_ascii=False)
    assert attestation_hash(record) == hashlib.sha256(canonical.encode()).hexdigest()


def test_valid_records_of_every_source_pass():
    assert validate_usage(usage("u1"), NOW, USAGE).quantity == 1
    assert validate_error(error("e1"), NOW, ERRORS).line == 42
    assert validate_attestation(attestation("a1"), NOW, ATTESTATIONS).risk_score == 20
    issues = validate_audit(audit("r1"), NOW, AUDITS).issues
    assert [issue.severity for issue in issues] == ["HIGH", "LOW"]


def test_timestamps_keep_their_instant_whatever_the_offset():
    utc = validate_usage(usage("u1", occurred_at="2026-11-03T14:05:00Z"), NOW, USAGE)
    paris = validate_usage(usage("u1", occurred_at="2026-11-03T16:05:00+02:00"), NOW, USAGE)
    assert utc.occurred_at == paris.occurred_at


@pytest.mark.parametrize(
    "stamp",
    ["2026-11-03T14:05:00", "2026-11-03", "03/11/2026 14:05Z", "2026-13-03T14:05:00Z", 1700000000],
)
def test_timestamps_without_offset_or_malformed_are_schema_violations(stamp):
    with pytest.raises(Rejected) as caught:
        validate_usage(usage("u1", occurred_at=stamp), NOW, USAGE)
    assert caught.value.reason == Reason.SCHEMA_VIOLATION
    assert caught.value.detail.startswith("occurred_at:")


def test_a_timestamp_more_than_five_minutes_ahead_is_future():
    validate_usage(usage("u1", occurred_at="2026-11-26T12:04:59Z"), NOW, USAGE)
    with pytest.raises(Rejected) as caught:
        validate_usage(usage("u1", occurred_at="2026-11-26T12:05:01Z"), NOW, USAGE)
    assert caught.value.reason == Reason.FUTURE_TIMESTAMP


@pytest.mark.parametrize(
    "field, value, detail",
    [
        ("event_id", None, "event_id: required field is missing"),
        ("event_id", "x" * 201, "event_id: must be at most 200 characters"),
        ("quantity", 0, "quantity: must be between 1 and 1,000,000"),
        ("quantity", 1_000_001, "quantity: must be between 1 and 1,000,000"),
        ("quantity", 1.5, "quantity: must be an integer, got number"),
        ("quantity", True, "quantity: must be an integer, got boolean"),
        ("event_type", "coffee", "event_type: must be one of"),
        ("user", 42, "user: must be a string, got integer"),
        ("metadata", [1], "metadata: must be an object, got array"),
    ],
)
def test_usage_schema_violations_name_the_field(field, value, detail):
    record = usage("u1")
    if value is None:
        del record[field]
    else:
        record[field] = value
    with pytest.raises(Rejected) as caught:
        validate_usage(record, NOW, USAGE)
    assert caught.value.reason == Reason.SCHEMA_VIOLATION
    assert caught.value.detail.startswith(detail)


def test_quantity_defaults_to_one_and_extra_fields_are_no_error():
    record = usage("u1", surprise={"kept": True})
    del record["quantity"]
    assert validate_usage(record, NOW, USAGE).quantity == 1


def test_error_signature_field_must_match_the_computed_one():
    good = error("e1")
    good["signature"] = error_signature(good["detector"], good["file"], good["message"])
    assert validate_error(good, NOW, ERRORS).signature == good["signature"]
    with pytest.raises(Rejected) as caught:
        validate_error({**good, "signature": "0" * 64}, NOW, ERRORS)
    assert caught.value.reason == Reason.SIGNATURE_MISMATCH


@pytest.mark.parametrize(
    "field, value",
    [("severity", "FATAL"), ("line", -1), ("detector", "d" * 65), ("message", ""), ("column", "7")],
)
def test_error_schema_violations(field, value):
    with pytest.raises(Rejected) as caught:
        validate_error(error("e1", **{field: value}), NOW, ERRORS)
    assert caught.value.reason == Reason.SCHEMA_VIOLATION
    assert caught.value.detail.startswith(f"{field}:")


def test_attestation_with_a_wrong_hash_is_a_hash_mismatch():
    record = attestation("a1")
    with pytest.raises(Rejected) as caught:
        validate_attestation({**record, "risk_score": 21}, NOW, ATTESTATIONS)
    assert caught.value.reason == Reason.HASH_MISMATCH


@pytest.mark.parametrize(
    "field, value",
    [("risk_score", 101), ("recipes", ["ok", 3]), ("prev_hash", "abc"), ("status", "DONE")],
)
def test_attestation_schema_violations(field, value):
    record = attestation("a1")
    record[field] = value
    with pytest.raises(Rejected) as caught:
        validate_attestation(record, NOW, ATTESTATIONS)
    assert caught.value.reason == Reason.SCHEMA_VIOLATION


def test_attestation_floats_are_refused_by_name():
    record = attestation("a1", metadata={"ratio": 0.5})
    with pytest.raises(Rejected) as caught:
        validate_attestation(record, NOW, ATTESTATIONS)
    assert caught.value.detail.startswith("metadata.ratio:")


@pytest.mark.parametrize(
    "field, value, detail",
    [
        ("url", "ftp://x", "url:"),
        ("device", "watch", "device:"),
        ("score_seo", 101, "score_seo:"),
        (
            "issues",
            [{"suite": "speed", "severity": "HIGH", "message": "m", "recommendation": "r"}],
            "issues[0].suite:",
        ),
        (
            "issues",
            [{"suite": "seo", "severity": "HIGH", "recommendation": "r"}],
            "issues[0].message:",
        ),
    ],
)
def test_audit_schema_violations_name_the_field(field, value, detail):
    with pytest.raises(Rejected) as caught:
        validate_audit(audit("r1", **{field: value}), NOW, AUDITS)
    assert caught.value.reason == Reason.SCHEMA_VIOLATION
    assert caught.value.detail.startswith(detail)


def test_monthly_periods_clamp_to_the_end_of_short_months():
    anchor = datetime(2026, 1, 31, tzinfo=UTC)
    assert add_months(anchor, 1) == datetime(2026, 2, 28, tzinfo=UTC)
    assert period_containing(anchor, datetime(2026, 3, 5, tzinfo=UTC)) == (
        datetime(2026, 2, 28, tzinfo=UTC),
        datetime(2026, 3, 31, tzinfo=UTC),
    )
    assert period_containing(anchor, datetime(2026, 1, 31, tzinfo=UTC))[0] == anchor


def test_periods_covering_run_from_first_to_last_without_gaps():
    anchor = datetime(2026, 1, 31, 12, tzinfo=UTC)
    periods = periods_covering(
        anchor, datetime(2025, 12, 31, 12, tzinfo=UTC), datetime(2026, 3, 31, 11, 59, tzinfo=UTC)
    )
    assert [start.date().isoformat() for start, _ in periods] == [
        "2025-12-31",
        "2026-01-31",
        "2026-02-28",
    ]
    assert all(end == following for (_, end), (following, _) in pairwise(periods))


def test_quotas_take_the_override_else_the_tier_limit():
    assert quotas("FREE", {}) == {"analyses": 100, "fixes": 50, "audits": 20}
    assert quotas("ENTERPRISE", {"fixes": 7, "audits": None}) == {
        "analyses": 5000,
        "fixes": 7,
        "audits": 1000,
    }


@pytest.mark.parametrize(
    "used, quota, status",
    [
        (79, 100, "ok"),
        (80, 100, "warning"),
        (99, 100, "warning"),
        (100, 100, "exceeded"),
        (101, 100, "exceeded"),
        (0, 0, "ok"),
        (1, 0, "exceeded"),
        (3999, 5000, "ok"),
        (4000, 5000, "warning"),
    ],
)
def test_status_thresholds_are_exact(used, quota, status):
    assert quota_status(used, quota) == status


def test_forecast_projects_linearly_to_the_end_of_the_period():
    start, end = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
    tenth = start + (end - start) / 10
    halfway = forecast(100, 500, start, end, tenth)
    assert (halfway.projected, halfway.status, halfway.pct_used) == (1000, "ok", 20.0)
    assert halfway.projected_exhaustion == date(2026, 11, 16)  # at half the period
    unreachable = forecast(10, 500, start, end, tenth)
    assert (unreachable.projected, unreachable.projected_exhaustion) == (100, None)
    reached = forecast(
        600, 500, start, end, tenth, reached_at=datetime(2026, 11, 2, 23, tzinfo=UTC)
    )
    assert (reached.status, reached.projected_exhaustion) == ("exceeded", date(2026, 11, 2))
    assert forecast(5, 500, start, end, start).projected == 5  # no time elapsed yet
    assert forecast(5, 500, start, end, end + timedelta(days=3)).projected == 5  # period over
    assert forecast(3, 0, start, end, tenth).pct_used is None


def test_forecast_of_usage_past_what_timedelta_arithmetic_holds():
    start, end = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
    tenth = start + (end - start) / 10
    # 40 events of the contract's largest quantity: once an OverflowError that stopped every build
    assert forecast(40_000_000, 500, start, end, tenth).projected == 400_000_000
    assert (
        forecast(2**62, 500, start, end, start + timedelta(microseconds=1)).projected == 2**63 - 1
    )


@given(
    used=st.integers(0, 2**63 - 1),
    quota=st.integers(0, 2**63 - 1),
    elapsed=st.timedeltas(min_value=timedelta(days=-40), max_value=timedelta(days=40)),
)
def test_forecast_holds_any_usage_a_bigint_holds(used, quota, elapsed):
    start, end = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
    result = forecast(used, quota, start, end, start + elapsed)
    assert 0 <= result.projected <= 2**63 - 1
    assert result.projected >= used or result.projected == 2**63 - 1
