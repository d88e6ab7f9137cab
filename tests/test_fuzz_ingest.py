"""Property-based fuzzing of ingestion: hostile landing zones through the real pipeline.

Each example writes a fresh landing zone (tests/hostile.py: records of every source with hostile
values in every field, lines that are no records, unreadable files, gzip files that expand too
far, odd names and folders, in-progress files, links leading outside the root), ingests every
source over every landed day into a fresh database (twice: the second run must find nothing new),
builds the marts, and checks the contract (sections 2, 4 and 6): nothing raises, every line is
accepted, duplicate, pending or rejected with a reason, every file is in the ledger once and
balances, misplaced files and outside links are reported once, in-progress files are never read,
valid records are never rejected, and accepted usage reaches `usage_daily`.

It runs 25 examples; for a longer run set ODAVL_FUZZ_EXAMPLES, e.g.
`ODAVL_FUZZ_EXAMPLES=500 .venv/bin/python -m pytest tests/test_fuzz_ingest.py -q
--hypothesis-show-statistics` (about two seconds an example; the statistics show how often each
outcome was reached).
"""

import os
import tempfile
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, event, given, settings
from psycopg import sql

from odavl_pipeline import clock
from odavl_pipeline.db.server import connect
from odavl_pipeline.domain.records import SOURCES
from odavl_pipeline.ingest.landing import landed_days
from odavl_pipeline.ingest.run import IngestReport, ingest_days
from odavl_pipeline.marts.build import refresh_marts
from odavl_pipeline.settings import Settings

from .dashboards_fixtures import scratch_database
from .hostile import PRISTINE, UNREAD, HostileLanding, Planted, hostile_landings
from .marts_helpers import rows

EXAMPLES = int(os.environ.get("ODAVL_FUZZ_EXAMPLES", "25"))
# CONTRACT.md section 4: why a line of a readable file may be rejected
LINE_REASONS = {
    "invalid_json",
    "schema_violation",
    "unknown_org",
    "unknown_project",
    "conflicting_duplicate",
    "hash_mismatch",
    "signature_mismatch",
    "chain_fork",
    "future_timestamp",
    "record_too_large",
}
FILE_REASONS = {"unreadable_file", "misplaced_file", "ingest_error"}
TIMESTAMP_COLUMNS = {
    "usage_events": "occurred_at",
    "error_events": "occurred_at",
    "fix_attestations": "created_at",
    "audit_results": "occurred_at",
}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def plant(root: Path, outside: Path, landing: HostileLanding) -> None:
    """Write every entry under `root`; the targets of outside links under `outside`."""
    root.mkdir(parents=True)
    outside.mkdir()
    for index, planted in enumerate(landing.entries):
        path = os.path.join(os.fsencode(root), *planted.path)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if planted.kind == "outside_link":
            target = outside / str(index)
            if planted.target == "folder":
                target.mkdir()
                (target / "inside.ndjson").write_bytes(planted.data())
            else:
                target.write_bytes(planted.data())
            os.symlink(target, path)
        else:
            with open(path, "wb") as handle:
                handle.write(planted.data())


def expected_counts(landing: HostileLanding, source: str) -> tuple[int, int]:
    """(files, lines) a run reports for `source`: its landed files' non-blank lines (an
    unreadable file counts one), one line per misplaced file in its folder."""
    files = lines = 0
    for planted in landing.of_kind("landed", "misplaced", "outside_link"):
        if planted.source == source:
            files += 1
            lines += len(planted.line_numbers()) if is_read(planted) else 1
    return files, lines


def is_read(planted: Planted) -> bool:
    return planted.kind == "landed" and planted.readable


def check_reports(reports: dict[str, IngestReport], landing: HostileLanding) -> None:
    """No file failed, and each source's run counted its files and lines."""
    for source, report in reports.items():
        assert report.failed == [], f"{source}: files failed (ingest_error): {report.failed}"
        assert report.retry_error is None, f"{source}: the quarantine retry raised"
        counts = report.counts
        assert (counts.files, counts.lines) == expected_counts(landing, source), source
        assert counts.lines == counts.accepted + counts.duplicate + counts.pending + counts.rejected


def check_ledger(conn: psycopg.Connection, landing: HostileLanding) -> dict[str, tuple]:
    """Every file once in the ledger, balanced, as the contract says; the rows by path."""
    ledger = conn.execute(
        "SELECT path, id, source::text, status::text, lines, accepted, duplicate, pending, "
        "rejected FROM ingested_files"
    ).fetchall()
    for path, _, _, _, lines, accepted, duplicate, pending, rejected in ledger:
        assert lines == accepted + duplicate + pending + rejected, path
    by_path = {row[0]: row for row in ledger}
    assert len(by_path) == len(ledger), Counter(row[0] for row in ledger).most_common(3)
    expected = {
        planted.relative_path(): planted
        for planted in landing.of_kind("landed", "misplaced", "outside_link")
    }
    assert by_path.keys() == expected.keys()
    file_rejects = dict(
        conn.execute(
            "SELECT file_id, array_agg(reason ORDER BY reason) FROM quarantine "
            "WHERE line_no IS NULL GROUP BY file_id"
        ).fetchall()
    )
    for path, planted in expected.items():
        _, file_id, source, status, lines, *_ = by_path[path]
        assert source == planted.source, path
        if is_read(planted):
            assert (status, lines) == ("ingested", len(planted.line_numbers())), path
            assert file_id not in file_rejects, (path, file_rejects.get(file_id))
        else:
            reason = "unreadable_file" if planted.kind == "landed" else "misplaced_file"
            assert (lines, file_rejects.get(file_id)) == (1, [reason]), (path, status)
    return by_path


def check_lines(
    conn: psycopg.Connection, landing: HostileLanding, ledger: dict[str, tuple]
) -> None:
    """Each non-blank line of a readable file is a row, a quarantine row or a duplicate."""
    for planted in filter(is_read, landing.entries):
        path, file_id, source, _, _, accepted, duplicate, pending, rejected = ledger[
            planted.relative_path()
        ]
        kept = [
            line
            for (line,) in conn.execute(
                sql.SQL("SELECT line_no FROM {} WHERE file_id = %s").format(sql.Identifier(source)),
                (file_id,),
            )
        ]
        quarantined = [  # the identical lines of a row each
            line
            for (line,) in conn.execute(
                "SELECT n FROM quarantine, unnest(line_no || coalesce(more_line_nos, '{}')) AS n "
                "WHERE file_id = %s",
                (file_id,),
            )
        ]
        numbers = set(planted.line_numbers())
        assert (len(kept), len(quarantined)) == (accepted + pending, rejected), path
        assert len(set(kept) | set(quarantined)) == len(kept) + len(quarantined), path
        assert set(kept) | set(quarantined) <= numbers, path
        assert len(numbers) - len(kept) - len(quarantined) == duplicate, path


def check_quarantine(conn: psycopg.Connection) -> None:
    """Every rejection has the contract's reason and a detail; nothing unread was read; no valid
    record is rejected (but a valid attestation may fork another)."""
    for source, reason, line_no, detail, raw in conn.execute(
        "SELECT source::text, reason, line_no, detail, raw FROM quarantine"
    ):
        event(f"rejected: {reason}")
        assert reason in (FILE_REASONS if line_no is None else LINE_REASONS), (reason, detail)
        assert detail and detail.strip(), (reason, line_no)
        assert f'"{UNREAD}-' not in (raw or ""), raw[:200]
        if source != "fix_attestations":
            assert f'"{PRISTINE}-' not in (raw or ""), (reason, detail, raw[:300])


def check_accepted(conn: psycopg.Connection, settings: Settings, landing: HostileLanding) -> None:
    """Accepted rows keep the contract's bounds; valid usage is accepted and reaches usage_daily."""
    now = clock.now()
    for table, column in TIMESTAMP_COLUMNS.items():
        query = sql.SQL("SELECT min({0}), max({0}), count(*) FROM {1}").format(
            sql.Identifier(column), sql.Identifier(table)
        )
        earliest, latest, count = conn.execute(query).fetchone()
        event(f"{table}: {'some' if count else 'no'} rows")
        if count:
            assert earliest >= EPOCH, f"{table}.{column} before 1970 accepted: {earliest}"
            assert latest <= now + timedelta(minutes=5), f"{table}.{column} in the future: {latest}"
    assert (
        conn.execute(
            "SELECT count(*) FROM usage_events WHERE event_id LIKE %s", (f"{UNREAD}-%",)
        ).fetchone()[0]
        == 0
    )
    valid = {
        line.pristine
        for planted in filter(is_read, landing.entries)
        if planted.source == "usage_events"
        for line in planted.lines
        if line.pristine
    }
    accepted = {
        event_id
        for (event_id,) in conn.execute(
            "SELECT event_id FROM usage_events WHERE event_id = ANY(%s)", (list(valid),)
        )
    }
    assert accepted == valid
    in_postgres = dict(
        conn.execute(
            "SELECT o.slug, sum(u.quantity) FROM usage_events u "
            "JOIN organizations o ON o.id = u.organization_id GROUP BY o.slug"
        ).fetchall()
    )
    in_marts = dict(rows(settings, "SELECT org, sum(quantity) FROM usage_daily GROUP BY org"))
    assert in_marts == in_postgres


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
@pytest.mark.slow
@given(landing=hostile_landings())
def test_every_hostile_line_and_file_is_accounted_for(server_url, template_url, landing):
    with (
        scratch_database(server_url, template_url.database) as url,
        tempfile.TemporaryDirectory() as folder,
    ):
        settings = Settings.from_env(
            {
                "ODAVL_HOME": os.path.join(folder, "home"),
                "ODAVL_DATABASE_URL": url.render_as_string(hide_password=False),
                "ODAVL_LANDING_DIR": os.path.join(folder, "landing"),
            }
        )
        plant(settings.landing_dir, Path(folder, "outside"), landing)
        with connect(settings) as conn:
            days = landed_days(settings.landing_dir)
            reports = {
                source: ingest_days(conn, settings.landing_dir, source, days) for source in SOURCES
            }
            again = {
                source: ingest_days(conn, settings.landing_dir, source, days).counts.files
                for source in SOURCES
            }
        refresh_marts(settings)
        with connect(settings) as conn:
            check_reports(reports, landing)
            assert again == dict.fromkeys(SOURCES, 0), "a second run ingested files again"
            ledger = check_ledger(conn, landing)
            check_lines(conn, landing, ledger)
            check_quarantine(conn)
            check_accepted(conn, settings, landing)
