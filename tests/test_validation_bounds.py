"""Validation that knows the storage: bounds derived from the models, JSON that PostgreSQL takes.

Whatever a line holds, it ends as a reason, never as a database error: checked against the
real PostgreSQL (its jsonb cast and the writer), and by Hypothesis at the validator level.
"""

import json
import random
from datetime import UTC, date, datetime, timedelta

import hypothesis
import pytest
from hypothesis import HealthCheck, given
from hypothesis import strategies as st
from sqlalchemy import BigInteger, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from odavl_pipeline.db import models as m
from odavl_pipeline.db.limits import INDEXED_TEXT_CHARS, column_limits, integer_range, text_length
from odavl_pipeline.domain.attestations import attestation_hash
from odavl_pipeline.domain.records import (
    AUDIT_SCORES,
    EARLIEST,
    MAX_DEPTH,
    MAX_FUTURE,
    RULES,
    AttestationRecord,
    AuditIssueRecord,
    AuditRecord,
    ErrorRecord,
    Reason,
    Rejected,
    UsageRecord,
    numeric_holds,
    parse_record,
)
from odavl_pipeline.ingest.run import ingest_days
from odavl_pipeline.ingest.sources import SPECS, source_limits
from odavl_pipeline.marts.build import refresh_marts
from odavl_pipeline.marts.store import open_marts

from .records import attestation, audit, error, usage

DAY = "2026-11-03"
RECORDS = {
    "usage_events": usage,
    "error_events": error,
    "fix_attestations": attestation,
    "audit_results": audit,
}
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
INT4 = (-(2**31), 2**31 - 1)
INT8 = (-(2**63), 2**63 - 1)


def ingest(conn, settings, source):
    report = ingest_days(conn, settings.landing_dir, source, [date.fromisoformat(DAY)])
    assert not report.failed, report.failed  # a bad line never fails its file
    return report.counts


def outcomes(conn, source):
    """(line number, reason, detail) of the quarantined lines of a source."""
    return conn.execute(
        "SELECT line_no, reason, detail FROM quarantine WHERE source::text = %s ORDER BY line_no",
        (source,),
    ).fetchall()


def with_raw(record: dict, field: str, fragment: str) -> str:
    """The record as a JSON line whose `field` holds `fragment` exactly as written."""
    return json.dumps({**record, field: "@raw@"}).replace('"@raw@"', fragment)


def nested(depth: int) -> str:
    """A JSON array nested `depth` levels."""
    return "[" * depth + "]" * depth


# --- limits derived from the models ------------------------------------------------


def test_integer_bounds_are_the_columns_ranges_within_the_contracts_rules():
    assert integer_range(m.ErrorEvent.__table__.c.line) == INT4  # Integer: int4
    assert integer_range(m.AuditResult.__table__.c.duration_ms) == INT8  # BigInteger: int8
    assert source_limits("error_events").ints["line"] == (0, 2**31 - 1)
    assert source_limits("error_events").ints["column"] == (0, 2**31 - 1)
    assert source_limits("fix_attestations").ints["files_changed"] == (0, 2**31 - 1)
    assert source_limits("fix_attestations").ints["risk_score"] == (0, 100)
    assert source_limits("audit_results").ints["duration_ms"] == (0, 2**63 - 1)
    assert source_limits("usage_events").ints["quantity"] == (1, 1_000_000)
    assert source_limits("usage_events").ints["duration_ms"] == (
        0,
        2**63 - 1,
    )  # only in the payload


def test_string_bounds_are_the_columns_lengths_within_the_contracts_rules():
    assert text_length(m.ErrorEvent.__table__.c.event_id) == 200
    assert text_length(m.ErrorEvent.__table__.c.message) is None  # Text
    assert source_limits("error_events").lengths == {
        "event_id": 200,
        "detector": 64,
        "message": 10_000,
        "file": 10_000,
    }
    assert source_limits("fix_attestations").lengths["recipes"] == 10_000  # each item of a text[]


def test_a_change_of_a_model_moves_the_bound_with_it():
    class Base(DeclarativeBase):
        pass

    class Wider(Base):
        __tablename__ = "wider"
        __table_args__ = (UniqueConstraint("detector", "message"),)

        id: Mapped[int] = mapped_column(primary_key=True)
        line: Mapped[int] = mapped_column(BigInteger)
        column: Mapped[int] = mapped_column(Integer)
        event_id: Mapped[str] = mapped_column(String(100))
        detector: Mapped[str] = mapped_column(String(40))
        message: Mapped[str] = mapped_column(Text)  # indexed, unbounded
        file: Mapped[str] = mapped_column(String(20_000))

    limits = RULES["error_events"].within(
        *column_limits(
            Wider,
            {name: name for name in ("line", "column", "event_id", "detector", "message", "file")},
        )
    )
    assert limits.ints == {"line": (0, 2**63 - 1), "column": (0, 2**31 - 1)}
    assert limits.lengths == {
        "event_id": 100,
        "detector": 40,
        "message": INDEXED_TEXT_CHARS,
        "file": 10_000,
    }
    with pytest.raises(ValueError, match="stored fields without a rule: surprise"):
        RULES["error_events"].within({"surprise": INT4}, {})


def test_an_indexed_text_column_holds_its_bound_in_four_byte_characters(conn):
    conn.execute("CREATE TEMPORARY TABLE indexed (id integer, value text, UNIQUE (id, value))")
    rng = random.Random(9)  # random code points: PostgreSQL cannot compress the entry smaller
    value = "".join(chr(rng.randrange(0x10000, 0x110000)) for _ in range(INDEXED_TEXT_CHARS))
    conn.execute("INSERT INTO indexed VALUES (1, %s)", (value,))
    assert conn.execute("SELECT octet_length(value) FROM indexed").fetchone()[0] == 4 * len(value)


# --- regressions through the writer into PostgreSQL ----------------------------------


def test_a_line_beyond_int4_is_rejected_and_the_rest_of_the_file_ingested(conn, settings, landing):
    landing.write(
        "error_events",
        DAY,
        "a.ndjson",
        [error("e1"), error("e2", line=3_000_000_000), error("e3"), error("e4", column=2**31)],
    )
    counts = ingest(conn, settings, "error_events")
    assert (counts.lines, counts.accepted, counts.rejected) == (4, 2, 2)
    assert outcomes(conn, "error_events") == [
        (2, "schema_violation", "line: must be between 0 and 2,147,483,647, got 3000000000"),
        (4, "schema_violation", "column: must be between 0 and 2,147,483,647, got 2147483648"),
    ]


def test_integers_beyond_64_bits_are_schema_violations(conn, settings, landing):
    landing.write("audit_results", DAY, "a.ndjson", [audit("r1", duration_ms=2**63), audit("r2")])
    landing.write(
        "usage_events",
        DAY,
        "a.ndjson",
        [
            usage("u1", duration_ms=2**63),
            usage("u2", files_analyzed=-1),
            usage("u3", status=2**63),
            usage("u4", quantity=2**64),
            usage("u5", duration_ms=2**63 - 1, status=-(2**63)),
        ],
    )
    assert ingest(conn, settings, "audit_results").accepted == 1
    assert outcomes(conn, "audit_results") == [
        (
            1,
            "schema_violation",
            "duration_ms: must be between 0 and 9,223,372,036,854,775,807, got 9223372036854775808",
        )
    ]
    assert ingest(conn, settings, "usage_events").accepted == 1
    assert [(line, detail.split(",")[0]) for line, _, detail in outcomes(conn, "usage_events")] == [
        (1, "duration_ms: must be between 0 and 9"),
        (2, "files_analyzed: must be between 0 and 9"),
        (3, "status: must be between -9"),
        (4, "quantity: must be an integer"),
    ]


def test_timestamps_run_from_1970_to_five_minutes_after_ingestion(conn, settings, landing):
    landing.write(
        "usage_events",
        DAY,
        "a.ndjson",
        [
            usage("u1", occurred_at="0001-01-01T00:00:00+01:00"),
            usage("u2", occurred_at="1969-12-31T23:59:59Z"),
            usage("u3", occurred_at="1970-01-01T00:59:59+01:00"),  # 1969 in UTC
            usage("u4", occurred_at="1970-01-01T00:00:00Z"),
            usage("u5", occurred_at="9999-12-31T23:59:59-23:59"),
            usage("u6", occurred_at="2026-11-03T14:05:00+24:00"),
            usage("u7", occurred_at="2026-11-03T14:05:00+00:60"),
        ],
    )
    counts = ingest(conn, settings, "usage_events")
    assert (counts.accepted, counts.rejected) == (1, 6)
    rejected = outcomes(conn, "usage_events")
    assert [(line, reason) for line, reason, _ in rejected] == [
        (1, "schema_violation"),
        (2, "schema_violation"),
        (3, "schema_violation"),
        (5, "future_timestamp"),
        (6, "schema_violation"),
        (7, "schema_violation"),
    ]
    assert rejected[0][2] == (
        "occurred_at: must be at or after 1970-01-01T00:00:00Z, got 0001-01-01T00:00:00+01:00"
    )
    refresh_marts(settings)  # a date before year 1 used to fail every build from then on
    with open_marts(settings.marts_path) as marts:
        assert marts.execute("SELECT min(day) FROM usage_daily").fetchone()[0] == date(1970, 1, 1)


# --- every hostile JSON value, against the real database --------------------------

BEYOND_64_BITS = "18446744073709551616"
ESCAPED_BACKSLASH = '"\\\\u0000"'  # a backslash then u0000: no NUL at all
HOSTILE_FRAGMENTS = [  # (fragment, reason or None when accepted)
    ("1e1000000", "schema_violation"),
    ("-1e1000000", "schema_violation"),
    ("1e-16384", "schema_violation"),
    ("0e1073741824", "schema_violation"),
    ("1" * 131_073, "schema_violation"),
    ("0." + "1" * 16_384, "schema_violation"),
    ("1e400", None),
    ("1e-400", None),
    ("0e1073741823", None),
    ("1" * 131_072, None),
    ("0." + "1" * 16_383, None),
    ("-0", None),
    ("-0.0", None),
    (BEYOND_64_BITS, None),
    ("-9223372036854775809", None),
    ("1" * 400, None),
    ('"\\ud800"', "invalid_json"),
    ('"\\udc00x"', "invalid_json"),
    ('{"\\ud800": 1}', "invalid_json"),
    ('"\\ud83d\\ude00"', None),
    ('"a\\u0000b"', "schema_violation"),
    ('{"a\\u0000": 1}', "schema_violation"),
    (ESCAPED_BACKSLASH, None),
    ("NaN", "invalid_json"),
    ("Infinity", "invalid_json"),
    ("-Infinity", "invalid_json"),
    (nested(MAX_DEPTH - 1), None),
    (nested(MAX_DEPTH), "schema_violation"),  # + the record
    (nested(1_100), "schema_violation"),
    (nested(200_000), "schema_violation"),
]


@pytest.mark.parametrize(
    "fragment, reason", HOSTILE_FRAGMENTS, ids=[fragment[:24] for fragment, _ in HOSTILE_FRAGMENTS]
)
def test_what_parsing_accepts_the_jsonb_cast_takes(conn, fragment, reason):
    text = with_raw(usage("u1"), "surprise", fragment)
    try:
        parse_record(text)
        outcome = None
    except Rejected as rejected:
        outcome = rejected.reason.value
        if outcome == "schema_violation":  # names the field, or the whole record's nesting
            assert rejected.detail.startswith(("surprise", "record: nested")), rejected.detail
    assert outcome == reason
    if outcome is None:
        assert conn.execute("SELECT pg_input_is_valid(%s, 'jsonb')", (text,)).fetchone()[0]


def test_every_hostile_value_ends_as_a_reason_through_the_writer(conn, settings, landing):
    lines = [
        with_raw(usage(f"h{index}"), "surprise", fragment)
        for index, (fragment, _) in enumerate(HOSTILE_FRAGMENTS)
    ]
    landing.write("usage_events", DAY, "a.ndjson", lines)
    counts = ingest(conn, settings, "usage_events")
    expected = [reason for _, reason in HOSTILE_FRAGMENTS]
    assert counts.accepted == expected.count(None)
    assert [(line, reason) for line, reason, _ in outcomes(conn, "usage_events")] == [
        (index + 1, reason) for index, reason in enumerate(expected) if reason
    ]
    kept = dict(conn.execute("SELECT event_id, payload->>'surprise' FROM usage_events"))
    fragments = [fragment for fragment, _ in HOSTILE_FRAGMENTS]
    assert kept[f"h{fragments.index(BEYOND_64_BITS)}"] == BEYOND_64_BITS  # kept as written
    assert kept[f"h{fragments.index(ESCAPED_BACKSLASH)}"] == "\\u0000"


def test_duplicate_keys_keep_the_last_value_as_jsonb_does(conn, settings, landing):
    twice = json.dumps(usage("d1", quantity=1))[:-1] + ', "quantity": 3}'
    landing.write(
        "usage_events", DAY, "a.ndjson", [twice, usage("d1", quantity=3), usage("d1", quantity=1)]
    )
    counts = ingest(conn, settings, "usage_events")
    assert (counts.accepted, counts.duplicate, counts.rejected) == (1, 1, 1)
    assert conn.execute(
        "SELECT quantity, (payload->>'quantity')::int FROM usage_events"
    ).fetchone() == (3, 3)
    assert [reason for _, reason, _ in outcomes(conn, "usage_events")] == ["conflicting_duplicate"]


def test_a_repeated_key_cannot_hide_a_value_postgresql_refuses(conn, settings, landing):
    # found by tests/test_fuzz_ingest.py: each once failed its whole file in the jsonb cast
    hidden = ['"\\u0000"', '"\\udfff"', "1e1000000", "1e-16384", "0." + "0" * 16_384 + "1"]
    lines = [
        json.dumps(usage(f"h{index}"))[:-1].replace("{", '{"quantity": ' + value + ", ", 1) + "}"
        for index, value in enumerate(hidden)
    ]
    landing.write("usage_events", DAY, "a.ndjson", [*lines, usage("ok")])
    counts = ingest(conn, settings, "usage_events")  # asserts that the file did not fail
    assert (counts.accepted, counts.rejected) == (1, len(hidden))
    reasons = [reason for _, reason, _ in outcomes(conn, "usage_events")]
    assert reasons == [
        "schema_violation",
        "invalid_json",
        "schema_violation",
        "schema_violation",
        "schema_violation",
    ]


def test_a_repeated_key_that_is_not_unicode_is_named_storably(conn, settings, landing):
    # found by tests/test_fuzz_ingest.py: the key went into the detail, which failed the COPY
    line = json.dumps(usage("k1"))[:-1] + ', "\\ud800": 1, "\\ud800": 2}'
    landing.write("usage_events", DAY, "a.ndjson", [line, usage("ok")])
    counts = ingest(conn, settings, "usage_events")  # asserts that the file did not fail
    assert (counts.accepted, counts.rejected) == (1, 1)
    [(_, reason, detail)] = outcomes(conn, "usage_events")
    assert reason == "invalid_json" and "lone surrogate \\ud800" in detail


def test_hostile_values_of_every_source_end_as_reasons(conn, settings, landing):
    too_long = "r" * 10_001
    landing.write(
        "fix_attestations",
        DAY,
        "a.ndjson",
        [
            attestation("a1", files_changed=2**31),
            attestation("a2", recipes=[too_long]),
            attestation("a3", metadata={"n": 2**63}),
        ],
    )  # an unlisted field: kept whatever its size
    landing.write(
        "audit_results",
        DAY,
        "a.ndjson",
        [
            audit("r1", issues=None),
            audit(
                "r2",
                issues=[
                    {"suite": "seo", "severity": "h\u0131gh", "message": "m", "recommendation": "r"}
                ],
            ),
            audit("r3", score_seo=2**31),
        ],
    )
    attestations = ingest(conn, settings, "fix_attestations")
    assert (attestations.pending + attestations.accepted, attestations.rejected) == (1, 2)
    assert [detail.split(":")[0] for _, _, detail in outcomes(conn, "fix_attestations")] == [
        "files_changed",
        "recipes",
    ]
    audits = ingest(conn, settings, "audit_results")
    assert (audits.accepted, audits.rejected) == (1, 2)
    assert conn.execute("SELECT count(*) FROM audit_issues").fetchone()[0] == 0  # issues: null
    assert [detail.split(":")[0] for _, _, detail in outcomes(conn, "audit_results")] == [
        "issues[0].severity",
        "score_seo",
    ]


def test_nesting_within_orjsons_limit_but_beyond_pythons_is_rejected_before_validation():
    text = with_raw(attestation("a1"), "surprise", nested(1_023))  # orjson reads 1,024 levels
    with pytest.raises(Rejected) as caught:  # the attestation's hash would recurse past 1,000
        SPECS["fix_attestations"].validate(parse_record(text), NOW)
    assert caught.value.detail == f"record: nested deeper than {MAX_DEPTH} levels"


@pytest.mark.parametrize(
    "source, field",
    [
        ("usage_events", "event_type"),
        ("error_events", "severity"),
        ("fix_attestations", "status"),
        ("audit_results", "device"),
    ],
)
@pytest.mark.parametrize("value", [[], {}, ["HIGH"]])
def test_a_choice_field_holding_an_array_or_object_is_a_schema_violation(source, field, value):
    with pytest.raises(Rejected) as caught:  # it used to raise TypeError: unhashable type
        SPECS[source].validate({**RECORDS[source]("x1"), field: value}, NOW)
    assert caught.value.reason == Reason.SCHEMA_VIOLATION
    assert caught.value.detail.startswith(f"{field}: must be one of")


# --- properties: the validators never fail otherwise than with Rejected ------------


def _integers():
    edges = [
        bound + shift
        for low, high in (INT4, INT8, (0, 2**64 - 1))
        for bound in (low, high)
        for shift in (-1, 0, 1)
    ]
    return st.one_of(st.integers(), st.sampled_from(edges), st.integers(-(10**400), 10**400))


def _timestamps():
    def stamp(moment: datetime, offset: int, fraction: str) -> str:
        hours, minutes = divmod(abs(offset), 60)  # up to ±25:00: beyond ±23:59 too
        sign = "-" if offset < 0 else "+"
        return f"{moment:%Y-%m-%dT%H:%M:%S}{fraction}{sign}{hours:02d}:{minutes:02d}"

    return st.one_of(
        st.builds(
            stamp,
            st.datetimes(),
            st.integers(-25 * 60, 25 * 60),
            st.sampled_from(["", ".5", ".123456789"]),
        ),
        st.sampled_from(
            [
                "1969-12-31T23:59:59Z",
                "1970-01-01T00:00:00Z",
                "0001-01-01T00:00:00Z",
                "9999-12-31T23:59:59-23:59",
                "0001-01-01T00:00:00+23:59",
                "2026-11-26T12:05:00Z",
                "2026-11-26T12:05:00.000001Z",
            ]
        ),
    )


_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5))
HOSTILE_VALUES = st.one_of(
    _integers(),
    st.floats(),  # NaN and infinities included: json.dumps writes them, they are not JSON
    st.booleans(),
    st.none(),
    st.text(st.characters(exclude_categories=()), max_size=20),  # NUL, lone surrogates…
    st.sampled_from([10_000, 10_001, 200, 201, 64, 65]).flatmap(
        lambda n: st.sampled_from(["x" * n, "\U0001d11e" * n])
    ),
    st.recursive(
        _LEAVES,
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(st.text(max_size=3), children, max_size=3)
        ),
        max_leaves=8,
    ),
    st.integers(MAX_DEPTH - 3, MAX_DEPTH + 3).map(lambda depth: json.loads(nested(depth))),
    _timestamps(),
)
RAW_FRAGMENTS = st.one_of(
    st.sampled_from(
        [fragment for fragment, _ in HOSTILE_FRAGMENTS if len(fragment) < 20_000]
        + [nested(1_000), nested(1_023)]
    ),  # within orjson's depth, beyond Python's
    st.from_regex(r"-?(0|[1-9][0-9]{0,30})(\.[0-9]{1,30})?([eE][+-]?[0-9]{1,12})?", fullmatch=True),
)


@st.composite
def hostile_lines(draw, source: str) -> str:
    """A valid record of the source with one field (or an unlisted one, or a field of an
    audit issue) replaced by a hostile value, as a JSON line."""
    record = RECORDS[source](f"{source}-1")
    field = draw(st.sampled_from(sorted(record) + ["surprise", "issue"]))
    if draw(st.booleans()):
        fragment = draw(RAW_FRAGMENTS)
        if field == "issue":
            field = "issues"
            fragment = (
                f'[{{"suite": "seo", "severity": {fragment}, "message": "m", '
                f'"recommendation": "r"}}]'
            )
        return with_raw(record, field, fragment)
    value = draw(HOSTILE_VALUES)
    if field == "issue":
        field, value = (
            "issues",
            [
                {
                    "suite": "seo",
                    "severity": "HIGH",
                    "message": "m",
                    "recommendation": "r",
                    draw(st.sampled_from(["suite", "severity", "message", "element"])): value,
                }
            ],
        )
    line = {**record, field: value}
    if source == "fix_attestations" and field != "hash":  # rehashed: the other rules are reached
        try:
            line["hash"] = attestation_hash(line)
        except UnicodeEncodeError:  # a lone surrogate has no UTF-8 to hash
            pass
    return json.dumps(line)


STORED = {  # record attribute -> (model, column) storing it
    UsageRecord: (
        m.UsageEvent,
        {"event_id": "event_id", "quantity": "quantity", "user": "user_email"},
    ),
    ErrorRecord: (
        m.ErrorEvent,
        {name: name for name in ("event_id", "detector", "message", "file", "line", "column")},
    ),
    AttestationRecord: (
        m.FixAttestation,
        {
            name: name
            for name in (
                "request_id",
                "files_changed",
                "lines_added",
                "lines_removed",
                "risk_score",
                "recipes",
                "prev_hash",
                "hash",
            )
        },
    ),
    AuditRecord: (
        m.AuditResult,
        {"request_id": "request_id", "url": "url", "duration_ms": "duration_ms"},
    ),
    AuditIssueRecord: (
        m.AuditIssue,
        {name: name for name in ("message", "recommendation", "element", "documentation")},
    ),
}


def assert_storable(record) -> None:
    """Every integer fits its column, every string its column and PostgreSQL's text, every
    timestamp the contract's window."""
    model, columns = STORED[type(record)]
    for attribute, name in columns.items():
        column = model.__table__.c[name]
        value = getattr(record, attribute)
        if value is None:
            continue
        if isinstance(column.type, Integer):
            low, high = integer_range(column)
            assert type(value) is int and low <= value <= high, (attribute, value)
        else:
            longest = text_length(column)
            for text in value if isinstance(value, tuple) else (value,):
                assert longest is None or len(text) <= longest, (attribute, len(text))
    for attribute in record.__slots__:
        value = getattr(record, attribute)
        if type(value) is str:
            assert "\x00" not in value
            value.encode()  # no lone surrogate
        elif type(value) is datetime:
            assert EARLIEST <= value <= NOW + MAX_FUTURE
    if type(record) is AuditRecord:
        for score, name in zip(record.scores, AUDIT_SCORES, strict=True):
            low, high = integer_range(m.AuditResult.__table__.c[name])
            assert score is None or (type(score) is int and low <= score <= high)
        for issue in record.issues:
            assert_storable(issue)


@pytest.mark.parametrize("source", sorted(RECORDS))
@hypothesis.settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_a_hostile_field_validates_into_a_storable_record_or_is_rejected(source, data):
    text = data.draw(hostile_lines(source))
    try:
        record = SPECS[source].validate(parse_record(text), NOW)
    except Rejected as rejected:
        assert rejected.reason in Reason
        assert "\x00" not in rejected.detail and rejected.detail.encode()
        return
    assert_storable(record)


def _number_literals():
    """JSON numbers, many of them about the limits of PostgreSQL's numeric."""
    digits = st.integers(1, 20).map(lambda n: "1" * n)
    whole = st.one_of(st.just("0"), digits, st.integers(131_060, 131_080).map(lambda n: "9" * n))
    fraction = st.one_of(
        st.just(""),
        digits.map(lambda ones: "." + ones),
        st.integers(16_370, 16_390).flatmap(
            lambda n: st.sampled_from(["." + "0" * n, "." + "0" * (n - 1) + "7", "." + "3" * n])
        ),
    )
    exponent = st.one_of(
        st.integers(-20, 20).map(str),
        st.integers(-16_400, -16_360).map(str),
        st.integers(131_000, 131_100).map(str),
        st.integers(1_073_741_820, 1_073_741_826).flatmap(
            lambda e: st.sampled_from([f"{e}", f"-{e}", f"+{e}"])
        ),
        st.sampled_from(["+0016383", "-00000000000000000001", "99999999999999999999"]),
    )
    return st.builds(
        lambda sign, w, f, e: sign + w + f + e,
        st.sampled_from(["", "-"]),
        whole,
        fraction,
        st.one_of(st.just(""), st.builds(str.__add__, st.sampled_from(["e", "E"]), exponent)),
    )


@hypothesis.settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(literal=_number_literals())
def test_numeric_holds_exactly_what_postgresql_takes(conn, literal):
    expected = conn.execute("SELECT pg_input_is_valid(%s, 'jsonb')", (literal,)).fetchone()[0]
    assert numeric_holds(literal) == expected


@pytest.mark.parametrize("source", sorted(RECORDS))
@hypothesis.settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_a_parsed_line_is_one_postgresql_can_cast(conn, source, data):
    text = data.draw(hostile_lines(source))
    try:
        parse_record(text)
    except Rejected:
        return
    assert conn.execute("SELECT pg_input_is_valid(%s, 'jsonb')", (text,)).fetchone()[0]


@hypothesis.settings(max_examples=500, deadline=None)
@given(
    stamp=_timestamps(),
    now=st.datetimes(datetime(1971, 1, 1), datetime(9000, 1, 1), timezones=st.just(UTC)),
)
def test_timestamps_are_accepted_only_within_the_window_and_never_overflow(stamp, now):
    try:
        moment = SPECS["usage_events"].validate(usage("u1", occurred_at=stamp), now).occurred_at
    except Rejected as rejected:
        assert rejected.reason in (Reason.SCHEMA_VIOLATION, Reason.FUTURE_TIMESTAMP)
        assert rejected.detail.startswith("occurred_at:")
        return
    assert EARLIEST <= moment <= now + timedelta(minutes=5)
