"""Runs that ingest one source at once: the same end state as one run, nothing lost or doubled.

The writers of a source no longer wait for each other (docs/ingestion.md, "Parallel
ingestion"): one path is written by one run at a time, and a billing cut waits for the writes in
progress. These tests run real concurrent writers against PostgreSQL.
"""

import threading
import time
from contextlib import contextmanager
from datetime import date, datetime, timedelta

import pytest

from odavl_pipeline import clock
from odavl_pipeline.db.seed import seed_chain_heads
from odavl_pipeline.db.server import connect
from odavl_pipeline.generate import GenerateOptions, generate_landing
from odavl_pipeline.ingest.landing import SOURCES, read_lines, scan_landing
from odavl_pipeline.ingest.run import ingest_days
from odavl_pipeline.ingest.sources import SPECS, source_limits
from odavl_pipeline.ingest.staging import Line, validated_batches
from odavl_pipeline.ingest.writer import ingest_file, prepare_file
from odavl_pipeline.ingest.zones import LocalZone
from odavl_pipeline.marts.build import refresh_marts

from .commands import cli
from .marts_helpers import anchor_subscription
from .records import ORG, usage
from .state import fingerprint, sibling_database

pytestmark = pytest.mark.slow


@pytest.fixture
def generated(settings) -> list[date]:
    """A week of every source, three files a day, with duplicates and conflicts across files."""
    options = GenerateOptions(
        end_day=date(2026, 11, 20),
        days=6,
        organizations=3,
        usage_per_day=80,
        errors_per_day=10,
        attestations_per_day=4,
        audits_per_day=2,
        duplicate_share=0.08,
        conflict_share=0.03,
        malformed_share=0.03,
        late_share=0.2,
        files_per_day=3,
        chain_heads=seed_chain_heads(),
    )
    reference = settings.home / "reference.json"
    generate_landing(settings.landing_dir, options, reference_path=reference)
    cli("seed", "--reference", str(reference))
    return scan_landing(settings.landing_dir).days()


def _at_once(settings, *work) -> list:
    """Run each `work(conn)` in a thread of its own, with a connection of its own, together."""
    results, errors = [None] * len(work), []
    start = threading.Barrier(len(work))

    def run(index, function):
        try:
            with connect(settings) as conn:
                start.wait()
                results[index] = function(conn)
        except Exception as error:  # surfaced by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=run, args=pair) for pair in enumerate(work)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert errors == [] and not any(thread.is_alive() for thread in threads), errors
    return results


def _one_run(settings, database_url, server_url, days) -> dict:
    """The fingerprint of one run of every source over `days`, in a sibling database."""
    with sibling_database(settings, database_url, server_url, "one_run") as one:
        reference = str(settings.home / "reference.json")
        cli(
            "seed",
            "--reference",
            reference,
            env={"ODAVL_DATABASE_URL": one.database_url.get_secret_value()},
        )
        with connect(one) as conn:
            for source in SOURCES:
                ingest_days(conn, one.landing_dir, source, days)
            return fingerprint(conn)


def test_two_runs_over_the_same_days_end_as_one_run(settings, generated, database_url, server_url):
    def every_source(conn):
        return [ingest_days(conn, settings.landing_dir, source, generated) for source in SOURCES]

    first, second = _at_once(settings, every_source, every_source)

    with connect(settings) as conn:
        both = fingerprint(conn)
    one = _one_run(settings, database_url, server_url, generated)
    for name in both:
        assert (
            set(both[name]) - set(one[name]) == set() and set(one[name]) - set(both[name]) == set()
        ), (
            name,
            sorted(set(both[name]) - set(one[name]))[:3],
            sorted(set(one[name]) - set(both[name]))[:3],
        )
    assert both == one
    for mine, theirs in zip(first, second, strict=True):  # each file was ingested by one of the two
        files = len(scan_landing(settings.landing_dir, (mine.source,)).files)
        assert mine.counts.files + theirs.counts.files == files
        assert mine.skipped_files + theirs.skipped_files == files


def test_two_runs_over_different_days_of_a_source_end_as_one_run(
    settings, generated, database_url, server_url
):
    halves = generated[::2], generated[1::2]

    def half(days):
        return lambda conn: [
            ingest_days(conn, settings.landing_dir, source, days) for source in SOURCES
        ]

    _at_once(settings, half(halves[0]), half(halves[1]))

    with connect(settings) as conn:
        both = fingerprint(conn)
        _assert_settled(conn)
    one = _one_run(settings, database_url, server_url, generated)
    # The files committed in another order than one run's: where two files hold one key, which
    # holds the accepted copy (and, for a conflict, which copy is rejected) follows that order,
    # as in runs one after the other in it. So does which sibling of a fork stays: "the one
    # verified first" (CONTRACT.md section 3), and with it whether the loser's descendants are
    # verified or wait. The rest is the same.
    assert _unordered(both) == _unordered(one)


def _unordered(state: dict) -> dict:
    """What does not depend on the order the files committed in: the keys each source holds,
    each file with its lines, the totals of each outcome per source, and why lines were rejected
    (a conflict's detail names the copy kept, which the order chose)."""
    kept = {name: sorted(row[:2] for row in state[name]) for name in KEYED}
    kept["files"] = sorted(row[:4] for row in state["ingested_files"])
    kept["totals"] = [
        _outcomes(source, [row for row in state["ingested_files"] if row[0] == source])
        for source in SOURCES
    ]
    # quarantine rows: source, path, line, more lines, reason, detail
    kept["reasons"] = sorted(
        row[:5] for row in state["quarantine"] if row[4] != "conflicting_duplicate"
    )
    kept["conflicts"] = sum(row[4] == "conflicting_duplicate" for row in state["quarantine"])
    return kept


KEYED = ("usage_events", "error_events", "fix_attestations", "audit_results")


def _outcomes(source: str, files: list[tuple]) -> tuple[int, ...]:
    """A source's lines accepted, duplicate, pending and rejected; for attestations, accepted and
    pending together (behind a fork, which branch is verified depends on the order)."""
    accepted, duplicate, pending, rejected = (
        sum(int(row[column]) for row in files) for column in range(4, 8)
    )
    if source == "fix_attestations":
        return accepted + pending, duplicate, rejected
    return accepted, duplicate, pending, rejected


def _assert_settled(conn) -> None:
    """Every file balances; no attestation waits for a verified parent; no fork is verified."""
    assert conn.execute(
        "SELECT count(*) FROM ingested_files WHERE lines <> accepted + duplicate + pending + rejected"
    ).fetchone() == (0,)
    assert conn.execute(
        "SELECT count(*) FROM fix_attestations p JOIN fix_attestations v "
        "ON v.project_id = p.project_id AND v.hash = p.prev_hash "
        "WHERE p.chain_status = 'pending' AND v.chain_status = 'verified'"
    ).fetchone() == (0,)
    assert conn.execute(
        "SELECT count(*) FROM (SELECT project_id, prev_hash FROM fix_attestations "
        "WHERE chain_status = 'verified' GROUP BY 1, 2 HAVING count(*) > 1) AS forks"
    ).fetchone() == (0,)


# --- a billing period's close racing a commit ----------------------------------------------


def _paused_ingestion(settings, landing, name: str, event_ids: list[str], occurred: datetime):
    """A usage file, and a function that ingests it in one transaction, stopping after its
    first batch is written until `resume` is set: (ingest, written, resume)."""
    records = [usage(event_id, occurred_at=occurred.isoformat()) for event_id in event_ids]
    landing.write("usage_events", occurred.date().isoformat(), name, records)
    zone = LocalZone(settings.landing_dir)
    [landed] = [
        f for f in scan_landing(zone, ("usage_events",)).files if f.relative_path.endswith(name)
    ]
    written, resume = threading.Event(), threading.Event()

    def ingest(conn):
        prepared = prepare_file(conn, zone, landed)
        with zone.open(landed.location) as handle:
            lines = [Line(prepared.file_id, *line) for line in read_lines(handle, False)]
        spec = SPECS["usage_events"]

        def batches():
            for batch in validated_batches(
                spec, prepared.refs, iter(lines), source_limits(spec.name)
            ):
                yield batch
                written.set()
                assert resume.wait(60), "the test never let the file commit"

        return ingest_file(conn, prepared, batches())

    return ingest, written, resume


def _closed_usage(conn, occurred: datetime) -> int | None:
    """What the closed period holding `occurred` counted of analyses; None when not closed."""
    row = conn.execute(
        "SELECT u.used FROM billing_closes c JOIN organizations o ON o.id = c.organization_id "
        "LEFT JOIN billing_close_usage u ON u.organization_id = c.organization_id "
        "AND u.period_start = c.period_start AND u.metric = 'analyses' "
        "WHERE o.slug = %s AND c.period_start <= %s AND %s < c.period_end",
        (ORG, occurred, occurred),
    ).fetchone()
    return None if row is None else row[0] or 0


def _waiting_for_a_lock(conn) -> bool:
    """Whether a session waits for a lock (read afresh: a transaction of its own)."""
    with conn.transaction():
        return conn.execute("SELECT count(*) > 0 FROM pg_locks WHERE NOT granted").fetchone()[0]


class _PauseAtTheBuild:
    """A marts timer that holds the build at its first step (the cut taken, nothing read yet)
    until `go` is set."""

    def __init__(self, cut_taken: threading.Event, go: threading.Event):
        self.cut_taken, self.go = cut_taken, go

    @contextmanager
    def step(self, name):
        if name == "build":
            self.cut_taken.set()
            assert self.go.wait(60), "the file never committed"
        yield

    @contextmanager
    def statement(self, sql):
        yield


@pytest.mark.parametrize("commit", ["before the cut", "after the cut"])
def test_a_period_close_counts_exactly_what_committed_before_it(settings, landing, conn, commit):
    now = clock.now().replace(microsecond=0)
    anchor_subscription(
        conn, ORG, (now - timedelta(days=5)).isoformat(), (now + timedelta(days=25)).isoformat()
    )  # the period before ended five days ago: the next build closes it
    occurred = now - timedelta(days=10)
    ingest, written, resume = _paused_ingestion(
        settings, landing, "racing.ndjson", [f"race-{n}" for n in range(7)], occurred
    )
    cut_taken, committed = threading.Event(), threading.Event()
    hold = _PauseAtTheBuild(cut_taken, committed if commit == "after the cut" else cut_taken)

    def build(_conn):
        if commit == "before the cut":
            assert written.wait(60)  # the file's rows are written, not committed
        refresh_marts(settings, timer=hold)

    def write(_conn):
        if commit == "after the cut":
            assert cut_taken.wait(60)
            resume.set()
        ingest(_conn)
        committed.set()

    def referee(watch):
        if commit == "before the cut":
            assert written.wait(60)
            deadline = time.monotonic() + 30
            while not _waiting_for_a_lock(watch):  # the cut waits for the file to commit
                assert time.monotonic() < deadline, "the cut did not wait for the open write"
                time.sleep(0.05)
            resume.set()

    _at_once(settings, build, write, referee)

    total = conn.execute("SELECT count(*) FROM usage_events WHERE event_id LIKE 'race-%%'")
    assert total.fetchone() == (7,)  # committed either way
    if commit == "before the cut":
        assert _closed_usage(conn, occurred) == 7
        return
    # after the cut, the file is not in the build: landed and unread then, it holds the close
    # (billing.closing), which the next build makes with it
    assert _closed_usage(conn, occurred) is None
    refresh_marts(settings)
    assert _closed_usage(conn, occurred) == 7


# --- a deadlock with another writer ----------------------------------------------------------


def _insert_usage(conn, event_id: str) -> None:
    conn.execute(
        "INSERT INTO usage_events (organization_id, event_id, event_type, occurred_at, quantity, "
        "payload, file_id, line_no) SELECT id, %s, 'api_call', now(), 1, '{}', 0, 1 "
        "FROM organizations WHERE slug = %s",
        (event_id, ORG),
    )


def test_a_file_rolled_back_by_a_deadlock_with_another_writer_goes_again(settings, landing):
    day = "2026-11-03"
    landing.write("usage_events", day, "a.ndjson", [usage("key-a"), usage("key-b")])
    reports = []
    with connect(settings) as other, connect(settings) as watch:
        other.execute("SET deadlock_timeout = '10s'")  # the file's writer detects it first
        _insert_usage(other, "key-b")  # not committed: the file's writer waits for this
        ingesting = threading.Thread(
            target=lambda: reports.append(
                _ingest_alone(settings, "usage_events", [date.fromisoformat(day)])
            )
        )
        ingesting.start()
        deadline = time.monotonic() + 30
        while not _waiting_for_a_lock(watch):  # it inserted key-a, and waits on key-b
            assert time.monotonic() < deadline and ingesting.is_alive()
            time.sleep(0.05)
        _insert_usage(other, "key-a")  # each now waits for the other: PostgreSQL rolls one back
        other.commit()
        ingesting.join(timeout=60)

    [report] = reports
    assert report.failed == []  # rolled back, then ingested again in the same run
    counts = report.counts
    assert (counts.files, counts.lines, counts.accepted, counts.rejected) == (1, 2, 0, 2)
    with connect(settings) as conn:
        reasons = conn.execute("SELECT reason FROM quarantine ORDER BY line_no").fetchall()
    assert reasons == [("conflicting_duplicate",), ("conflicting_duplicate",)]


def _ingest_alone(settings, source: str, days: list[date]):
    with connect(settings) as conn:
        return ingest_days(conn, settings.landing_dir, source, days)
