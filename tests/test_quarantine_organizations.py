"""The quarantine's organization and project: filled by the ingestion for every rejected line that
names them (conflicting duplicates and chain forks included), and by migration 0019 for the rows
written before, whatever their raw text."""

import importlib.util
import json
import sys
from datetime import date

import hypothesis
import pytest
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from hypothesis import HealthCheck, given
from hypothesis import strategies as st
from sqlalchemy import create_engine

from odavl_pipeline.db.migrate import PROJECT_ROOT
from odavl_pipeline.domain.records import MAX_DEPTH, SOURCES, Rejected, parse_record
from odavl_pipeline.ingest.run import ingest_days
from odavl_pipeline.ingest.writer import storable
from odavl_pipeline.marts.build import refresh_marts

from .hostile import edge_records, hostile_records
from .marts_helpers import rows as mart_rows
from .records import ORG, PROJECT, attestation, chain, error, usage, with_signature

pytestmark = pytest.mark.clock("2026-11-20T12:00:00Z")

DAY = "2026-11-03"
MIGRATION = PROJECT_ROOT / "migrations" / "versions" / "0019_quarantine_organizations.py"


def _migration():
    spec = importlib.util.spec_from_file_location("quarantine_organizations", MIGRATION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


migration = _migration()


# --- the ingestion ------------------------------------------------------------------------


def _ingest(conn, settings, source: str) -> None:
    ingest_days(conn, settings.landing_dir, source, [date.fromisoformat(DAY)])


def _quarantined(conn) -> list[tuple]:
    return conn.execute(
        "SELECT source::text, reason, org_slug, project_slug, lines FROM quarantine "
        "ORDER BY source, reason, file_id, line_no"
    ).fetchall()


def test_conflicting_duplicates_and_chain_forks_keep_their_organization(conn, settings, landing):
    landing.write("usage_events", DAY, "a.ndjson", [usage("u1"), usage("u1", quantity=2)])
    landing.write(
        "error_events",
        DAY,
        "a.ndjson",
        [with_signature(error("e1")), with_signature(error("e1", message="another message"))],
    )
    links = chain("fix", 2)
    rival = attestation("rival", links[0]["hash"], created_at="2026-11-03T13:00:00Z")
    landing.write("fix_attestations", DAY, "a.ndjson", [links[0], links[1], rival])
    for source in ("usage_events", "error_events", "fix_attestations"):
        _ingest(conn, settings, source)
    assert _quarantined(conn) == [
        ("error_events", "conflicting_duplicate", ORG, PROJECT, 1),
        ("fix_attestations", "chain_fork", ORG, PROJECT, 1),
        ("usage_events", "conflicting_duplicate", ORG, None, 1),
    ]
    refresh_marts(settings)
    assert mart_rows(
        settings, "SELECT source, reason, org, records FROM quarantine_summary ORDER BY 1, 2"
    ) == [
        ("error_events", "conflicting_duplicate", ORG, 1),
        ("fix_attestations", "chain_fork", ORG, 1),
        ("usage_events", "conflicting_duplicate", ORG, 1),
    ]


def test_a_line_that_is_not_json_keeps_no_organization(conn, settings, landing):
    landing.write("usage_events", DAY, "a.ndjson", ['{"org": "odavl-test-org", ', usage("u1")])
    _ingest(conn, settings, "usage_events")
    assert _quarantined(conn) == [("usage_events", "invalid_json", None, None, 1)]


# --- migration 0019 ----------------------------------------------------------------------


@pytest.fixture
def ledger_file(conn) -> int:
    """A ledger row for quarantine rows to belong to."""
    file_id = conn.execute(
        "INSERT INTO ingested_files (source, path, day, sha256, size_bytes, lines, accepted, "
        "duplicate, pending, rejected) VALUES ('usage_events', 'usage_events/old.ndjson', %s, "
        "repeat('0', 64), 0, 0, 0, 0, 0, 0) RETURNING id",
        (date.fromisoformat(DAY),),
    ).fetchone()[0]
    conn.commit()
    return file_id


def _quarantine(conn, file_id: int, raw: str | None, org: str | None = None) -> int:
    return conn.execute(
        "INSERT INTO quarantine (source, file_id, line_no, reason, detail, raw, org_slug) "
        "VALUES ('usage_events', %s, 1, 'schema_violation', 'old', %s, %s) RETURNING id",
        (file_id, raw, org),
    ).fetchone()[0]


def _slugs(conn, row_id: int) -> tuple:
    return conn.execute(
        "SELECT org_slug, project_slug FROM quarantine WHERE id = %s", (row_id,)
    ).fetchone()


def test_the_migration_fills_the_rows_written_before(conn, database_url, ledger_file):
    written = {
        "object": json.dumps({"org": "acme", "project": "web", "quantity": 0}),
        "no project": json.dumps({"org": "acme", "project": 7}),
        "org not text": json.dumps({"org": ["acme"]}),
        "array": json.dumps([{"org": "acme"}]),
        "not json": '{"org": "acme", ',
        "too deep": '{"org": "acme", "d": ' + "[" * 100_000 + "]" * 100_000 + "}",
        "whole file": None,
    }
    ids = {name: _quarantine(conn, ledger_file, raw) for name, raw in written.items()}
    kept = _quarantine(conn, ledger_file, json.dumps({"org": "other"}), org="acme")
    conn.commit()
    engine = create_engine(database_url)
    try:
        with engine.begin() as connection:
            with Operations.context(MigrationContext.configure(connection)):
                migration.upgrade()
    finally:
        engine.dispose()
    assert {name: _slugs(conn, row_id) for name, row_id in ids.items()} == {
        "object": ("acme", "web"),
        "no project": ("acme", None),
        "org not text": (None, None),
        "array": (None, None),
        "not json": (None, None),
        "too deep": (None, None),
        "whole file": (None, None),
    }
    assert _slugs(conn, kept) == ("acme", None)


def _deep_lines() -> st.SearchStrategy[str]:
    """Objects naming an org around nests of every depth, closed or not: PostgreSQL reads the
    shallow ones and runs out of stack on the deepest."""
    depth = st.sampled_from((1, MAX_DEPTH, MAX_DEPTH + 1, 3_000, 100_000))
    nest = st.one_of(
        depth.map(lambda n: "[" * n + "]" * n),
        depth.map(lambda n: '{"a":' * n + "null" + "}" * n),
        depth.map(lambda n: "[" * n),
    )
    return nest.map(lambda inner: '{"org": "acme", "nest": ' + inner + "}")


def _json_objects() -> st.SearchStrategy[str]:
    """JSON objects with an `org` and a `project` of any type, or without them."""
    values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
        max_leaves=8,
    )
    named = st.fixed_dictionaries({}, optional={"org": values | st.text(), "project": values})
    return st.builds(
        lambda fields, more, ascii: json.dumps({**more, **fields}, ensure_ascii=ascii),
        named,
        st.dictionaries(st.text(), values, max_size=3),
        st.booleans(),
    )


def _cut(texts: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Those texts cut short or with one character changed: mostly no longer JSON."""
    return st.builds(
        lambda text, at, char, cut: text[:at] if cut else text[:at] + char + text[at + 1 :],
        texts,
        st.integers(0, 200),
        st.characters(),
        st.booleans(),
    )


def _raw_lines() -> st.SearchStrategy[str]:
    records = st.sampled_from(SOURCES).flatmap(
        lambda source: hostile_records(source, "k") | edge_records(source, "k")
    )
    return st.one_of(
        st.text(),
        st.text(alphabet=' \t\n\r{}[]":,.-+0123456789eEtruefalsnorg\\u'),
        _json_objects(),
        records,
        _cut(_json_objects() | records),
        _deep_lines(),
    )


def _what_python_reads(raw: str) -> tuple[str | None, str | None]:
    """Python's json reading of a line nested beyond what the pipeline reads, as far as the
    interpreter's stack goes."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(10_000)
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError):
        return None, None
    finally:
        sys.setrecursionlimit(limit)
    return _named(obj)


def _named(obj) -> tuple[str | None, str | None]:
    """The string `org` and `project` of a JSON object, (None, None) without a string org."""
    if type(obj) is not dict or type(obj.get("org")) is not str:
        return None, None
    project = obj.get("project")
    return obj["org"], project if type(project) is str else None


TOO_DEEP = f"record: nested deeper than {MAX_DEPTH} levels"


@hypothesis.settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=_raw_lines())
def test_the_migration_fills_exactly_the_json_objects_with_a_string_org(conn, ledger_file, text):
    """Whatever the raw text, the statement runs; it fills the slugs of a JSON object
    PostgreSQL reads (the pipeline's `parse_record` says which) with a string `org`, and
    nothing else. Beyond the 512 levels the pipeline reads, PostgreSQL's stack decides: the
    slugs are then those Python reads, or none."""
    raw = storable(text)  # as the quarantine holds it: no NUL, no lone surrogate
    with conn.transaction(force_rollback=True):
        row_id = _quarantine(conn, ledger_file, raw)
        conn.execute(migration.CREATE_READER)
        conn.execute(migration.FILL_SLUGS)
        conn.execute(migration.DROP_READER)
        filled = _slugs(conn, row_id)
    try:
        expected = _named(parse_record(raw))
    except Rejected as rejected:
        if rejected.detail != TOO_DEEP:
            expected = (None, None)
        else:
            assert filled in {(None, None), _what_python_reads(raw)}
            return
    assert filled == expected
