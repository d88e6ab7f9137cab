"""Building the marts: the days that changed since the last build, or all of history.

Postgres rows travel as Arrow into DuckDB and are aggregated there. Each source's changed UTC
days (marked by triggers in `mart_changes`) are read again whole and their rows in the day-keyed
marts replaced; billing periods containing those days are recomputed from the Parquet usage facts;
quota status is recomputed for the current periods. A full build reads everything.

Each step's SQL is a named statement beside the function that runs it. Values, file paths
included, are bound as DuckDB parameters, never written into the SQL; only table names are.
"""

import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pyarrow as pa

from odavl_pipeline.billing.catalogue import QUOTA_METRICS
from odavl_pipeline.billing.closing import HeldFile, files_holding_closes, record_closes
from odavl_pipeline.billing.plans import (
    ALWAYS_BEFORE,
    PlanVersion,
    quotas,
    rated_periods,
    uncovered,
)
from odavl_pipeline.billing.quota import forecast
from odavl_pipeline.db.server import connect, libpq_url, server_url
from odavl_pipeline.domain.records import SOURCES
from odavl_pipeline.marts.extract import (
    CLOSED_USAGE_QUERY,
    CLOSES_QUERY,
    DIMENSION_QUERIES,
    PLAN_VERSIONS_QUERY,
    Changes,
    Extractor,
    forget_changes,
    read_changes,
    usage_cut,
)
from odavl_pipeline.marts.reconcile import Rebuilt
from odavl_pipeline.marts.schema import MART_TABLES
from odavl_pipeline.marts.store import MartsBuild, building
from odavl_pipeline.marts.timing import StepTimer, statement, timed, timed_by
from odavl_pipeline.marts.timing import step as timed_step
from odavl_pipeline.settings import BILLING_GRACE_MINUTES, Settings

DEFAULT_GRACE = timedelta(minutes=BILLING_GRACE_MINUTES)
TIMESTAMP = pa.timestamp("us", "UTC")
CHUNK_ROWS = 1_000_000  # usage is copied in chunks: memory stays flat as history grows
QUOTA_STATUS_TYPES = (
    pa.string(),
    pa.string(),
    TIMESTAMP,
    TIMESTAMP,
    pa.string(),
    pa.int64(),
    pa.int64(),
    pa.float64(),
    pa.string(),
    pa.int64(),
    pa.date32(),
    TIMESTAMP,
)
REJECTED_LINKS = ("hash_mismatch", "chain_fork")


@dataclass(frozen=True)
class LateCarried:
    """Usage of a closed period that arrived late and counts in an open period instead."""

    org: str
    metric: str
    from_period_start: datetime  # the closed period it occurred in
    into_period_start: datetime  # the open period that bills it
    quantity: int

    def __str__(self) -> str:
        return (
            f"{self.org} {self.metric}: {self.quantity:,} of the period from "
            f"{self.from_period_start:%Y-%m-%d} into the open period from "
            f"{self.into_period_start:%Y-%m-%d}"
        )


@dataclass
class MartsReport:
    full: bool
    build_id: str
    as_of: datetime
    days: dict[str, int] = field(default_factory=dict)  # UTC days recomputed, per source
    usage_events_read: int = 0
    periods_recomputed: int = 0
    rows: dict[str, int] = field(default_factory=dict)  # rows per mart after the build
    seconds: float = 0.0
    held_files: list[HeldFile] = field(default_factory=list)  # they hold closes (billing.closing)
    closes_waiting: int = 0  # periods past their end and grace that wait for held files
    # late usage of the days this build read, counted in open periods (`LATE_INTO_OPEN`)
    late_carried: list[LateCarried] = field(default_factory=list)
    rebuilt: Rebuilt | None = None  # what an incremental build rebuilt, for its checks


def refresh_marts(
    settings: Settings,
    *,
    full: bool = False,
    as_of: datetime | None = None,
    grace: timedelta = DEFAULT_GRACE,
    progress: Callable[[str], None] = lambda message: None,
    timer: StepTimer | None = None,
) -> MartsReport:
    """Bring the marts up to date with Postgres and publish them at once; see the module doc.

    `timer`, when given, is told of each step of the build and each DuckDB statement it runs
    (`timing.StepTimer`)."""
    started = time.perf_counter()
    extractor = Extractor(libpq_url(server_url(settings)))
    try:
        with (
            timed_by(timer),
            connect(settings) as conn,
            building(settings.marts_path, full) as build,
        ):
            # the marks before any row is read: a later change keeps its mark
            cut: datetime | None = None
            if as_of is None:
                cut, changes = usage_cut(conn)
                as_of = cut
            else:  # a build as of a given instant reads the rows as they are
                changes = read_changes(conn)
            build.usage_cut = cut
            report = MartsReport(full=build.fresh, build_id=build.build_id, as_of=as_of)
            # the files not in the build by its cut (a build given its instant: as they are)
            report.held_files = files_holding_closes(conn, settings.landing, cut)
            _build(build, conn, extractor, changes, report, grace, progress)
            build.after_publish(lambda: forget_changes(conn, changes))
    finally:
        extractor.close()
    report.seconds = time.perf_counter() - started
    progress(f"marts published in {report.seconds:.1f}s: {report.rows}")
    return report


@timed("build")
def _build(
    build: MartsBuild,
    conn: psycopg.Connection,
    extractor: Extractor,
    changes: Changes,
    report: MartsReport,
    grace: timedelta,
    progress: Callable[[str], None],
) -> None:
    con = build.con
    for name, query in DIMENSION_QUERIES.items():
        _load(con, name, extractor.read(query))
    _publish_dimensions(con)

    def days(source: str) -> list[date] | None:
        return None if build.fresh else changes.days(source)

    progress(
        (
            "full build from all of history"
            if build.fresh
            else f"incremental build of {len(changes)} changed (source, day) pairs"
        )
        + f", as of {report.as_of:%Y-%m-%d %H:%M:%S} UTC"
    )
    # Each step below sets `touched_days` to its source's days, in turn.
    report.usage_events_read = _usage(build, extractor, days("usage_events"))
    usage_days = [day for (day,) in _execute(con, "SELECT day FROM touched_days").fetchall()]
    report.days["usage_events"] = len(usage_days)
    progress(
        f"usage: {report.usage_events_read:,} events of {report.days['usage_events']} "
        f"days read; usage_daily and Parquet facts written"
    )
    report.periods_recomputed = _billing(
        build, conn, extractor, report.as_of, grace, {held.day for held in report.held_files}
    )
    report.closes_waiting = _scalar(con, "SELECT count(*) FROM waiting")
    report.late_carried = [LateCarried(*row) for row in _execute(con, LATE_INTO_OPEN).fetchall()]
    if report.late_carried:
        progress(
            "late usage counted in open billing periods: "
            + "; ".join(map(str, report.late_carried[:10]))
        )
    if report.closes_waiting:
        progress(
            f"{report.closes_waiting} billing period(s) past their end wait to close for "
            f"{len(report.held_files)} usage file(s) not ingested as they are: "
            + ", ".join(map(str, report.held_files[:10]))
        )
    _quota_status(build, report.as_of)
    progress(
        f"billing: {report.periods_recomputed:,} billing periods recomputed, quota status updated"
    )
    for source, step in (
        ("error_events", _errors),
        ("fix_attestations", _fixes),
        ("audit_results", _audits),
    ):
        step(con, extractor, days(source))
        report.days[source] = _scalar(con, "SELECT count(*) FROM touched_days")
    progress(
        "dashboards: " + ", ".join(f"{source} {report.days[source]} days" for source in SOURCES[1:])
    )
    report.rows = {name: _scalar(con, f"SELECT count(*) FROM {name}") for name in MART_TABLES}
    if not build.fresh:
        report.rebuilt = Rebuilt(usage_days, _execute(con, REBUILT_PERIODS).fetchall())


# --- running statements ------------------------------------------------------------------


def _execute(
    con: duckdb.DuckDBPyConnection, sql: str, parameters: dict | list | None = None
) -> duckdb.DuckDBPyConnection:
    """Run one statement, its values bound; the build's timer (if any) times it."""
    with statement(sql):
        return con.execute(sql, parameters)


def _scalar(con: duckdb.DuckDBPyConnection, query: str):
    """The one value a query returns (its result fully read, as DuckDB wants before a register)."""
    return _execute(con, query).fetchall()[0][0]


def _view(
    con: duckdb.DuckDBPyConnection, name: str, query: str, parameters: dict | None = None
) -> None:
    """Temp view `name` of `query`, its parameters bound. DuckDB cannot prepare CREATE VIEW,
    so the query is bound as a relation (DuckDB holds the values) and registered as the view;
    it is read anew at each use, as a view is."""
    with statement(query):
        con.register(name, con.sql(query, params=parameters))


@timed("load")
def _load(con: duckdb.DuckDBPyConnection, name: str, data) -> None:
    """A temporary table from Arrow data (a reader is consumed once)."""
    con.register("arrow_input", data)
    _execute(con, f"CREATE OR REPLACE TEMP TABLE {name} AS FROM arrow_input")
    con.unregister("arrow_input")


def _append(con: duckdb.DuckDBPyConnection, table: str, rows: list[tuple], types: tuple) -> None:
    """Insert Python rows in one statement, through Arrow (DuckDB is slow row by row)."""
    _rows_table(con, "appended", {f"c{index}": kind for index, kind in enumerate(types)}, rows)
    _execute(con, f"INSERT INTO {table} SELECT * FROM appended")


def _rows_table(
    con: duckdb.DuckDBPyConnection, name: str, columns: dict[str, pa.DataType], rows: list[tuple]
) -> None:
    """A temporary table `name` of `rows`, with these columns and types."""
    values: list[Sequence[Any]] = list(zip(*rows, strict=True)) if rows else [[] for _ in columns]
    _load(
        con,
        name,
        pa.table(
            {
                column: pa.array(data, kind)
                for (column, kind), data in zip(columns.items(), values, strict=True)
            }
        ),
    )


def _replace_all(
    con: duckdb.DuckDBPyConnection, mart: str, insert: str, parameters: dict | None = None
) -> None:
    """Replace every row of `mart` by what the statement `insert` inserts."""
    _execute(con, f"DELETE FROM {mart}")
    _execute(con, insert, parameters)


@timed("replace_days")
def _replace_days(con: duckdb.DuckDBPyConnection, mart: str, insert: str) -> None:
    """Replace the rows of the touched days of a day-keyed mart by what `insert` inserts."""
    _execute(con, f"DELETE FROM {mart} WHERE day IN (SELECT day FROM touched_days)")
    _execute(con, insert)


@timed("touched")
def _touched(con: duckdb.DuckDBPyConnection, days: list[date] | None, all_days: str) -> None:
    """Temp table touched_days: the days asked for, or (a full build) those the statement
    `all_days` finds in the facts."""
    if days is None:
        _execute(con, all_days)
    else:
        _load(con, "touched_days", pa.table({"day": pa.array(days, pa.date32())}))


# --- the dimensions ----------------------------------------------------------------------

# each mart's rows, from the dimensions read from Postgres
DIMENSION_MARTS = {
    "organizations": """
        INSERT INTO organizations
        SELECT o.org, o.name, o.tier, o.status, s.org_id IS NOT NULL, o.org_id
        FROM org_dim AS o
        LEFT JOIN subscription_dim AS s USING (org_id)
    """,
    "projects": """
        INSERT INTO projects
        SELECT org, project, name, status, project_id
        FROM project_dim
    """,
    "memberships": """
        INSERT INTO memberships
        SELECT org, email, name, role
        FROM membership_rows
    """,
    "landing_files": """
        INSERT INTO landing_files
        SELECT file_id, source, path, ingested_at, request, key_prefix, received_at
        FROM file_rows
    """,
    "quarantine_summary": """
        INSERT INTO quarantine_summary
        SELECT source, reason, org, sum(records)
        FROM quarantine_rows
        GROUP BY ALL
    """,
}


@timed("publish_dimensions")
def _publish_dimensions(con: duckdb.DuckDBPyConnection) -> None:
    for mart, insert in DIMENSION_MARTS.items():
        _replace_all(con, mart, insert)


# --- usage ---------------------------------------------------------------------------------

# a chunk of usage (registered as `arrow_input`) into this build's Parquet facts, a folder per
# UTC day under $folder
WRITE_USAGE_FACTS = """
    COPY (
        SELECT *, (occurred_at AT TIME ZONE 'UTC')::DATE AS day
        FROM arrow_input
    ) TO $folder (FORMAT parquet, PARTITION_BY (day), COMPRESSION zstd, APPEND)
"""

# view `pulled`: the usage this build read, in the facts it wrote ($files: their glob)
PULLED = """
    SELECT *
    FROM read_parquet($files, hive_partitioning = true, hive_types = {'day': DATE})
"""

# `pulled` when this build read no usage: the facts' columns, no rows
NOTHING_PULLED = """
    CREATE OR REPLACE TEMP TABLE pulled (
        org_id INTEGER, metric VARCHAR, event_id VARCHAR, occurred_at TIMESTAMPTZ,
        ingested_at TIMESTAMPTZ, quantity BIGINT, events INTEGER, project_id INTEGER,
        file_id BIGINT, line_no INTEGER, batch_id BIGINT, day DATE)
"""

# a full build's touched days: every day with usage
USAGE_DAYS = """
    CREATE OR REPLACE TEMP TABLE touched_days AS
    SELECT DISTINCT (occurred_at AT TIME ZONE 'UTC')::DATE AS day
    FROM pulled
"""

# the touched days' facts are this build's (listed again below)
FORGET_FACT_FILES = """
    DELETE FROM _fact_files
    WHERE day IN (SELECT day FROM touched_days)
"""

# the organizations with usage on a touched day, before this build or now
TOUCHED_ORG_DAYS = """
    CREATE OR REPLACE TEMP TABLE touched_org_days AS
    SELECT o.org_id, u.day
    FROM usage_daily AS u
    JOIN org_dim AS o USING (org)
    WHERE u.day IN (SELECT day FROM touched_days)
    UNION
    SELECT DISTINCT org_id, day
    FROM pulled
"""

USAGE_DAILY = """
    INSERT INTO usage_daily
    SELECT o.org, p.day, p.metric, sum(p.quantity), sum(p.events)
    FROM pulled AS p
    JOIN org_dim AS o USING (org_id)
    GROUP BY ALL
    HAVING sum(p.events) > 0
"""


@timed("usage")
def _usage(build: MartsBuild, extractor: Extractor, days: list[date] | None) -> int:
    """Copy the touched days' usage (all of it in a full build) stamped before the build's cut
    from Postgres into this build's Parquet facts, list them in `_fact_files` and replace the
    days' usage_daily rows; returns how many events were read. One read, written in chunks
    while the next chunk is read."""
    con = build.con
    folder = build.fact_folder("usage")
    folder.parent.mkdir(parents=True, exist_ok=True)
    for rows in _chunks(extractor.facts("usage_events", days, build.usage_cut), CHUNK_ROWS):
        con.register("arrow_input", rows)
        _execute(con, WRITE_USAGE_FACTS, {"folder": str(folder)})
        con.unregister("arrow_input")
    written = sorted(child.name.removeprefix("day=") for child in folder.glob("day=*"))
    if written:
        _view(con, "pulled", PULLED, {"files": str(folder / "*" / "*.parquet")})
    else:
        _execute(con, NOTHING_PULLED)
    _touched(con, days, USAGE_DAYS)
    _execute(con, FORGET_FACT_FILES)
    _append(
        con,
        "_fact_files",
        [
            (date.fromisoformat(day), f"{build.build_id}/usage/day={day}/*.parquet")
            for day in written
        ],
        (pa.date32(), pa.string()),
    )
    _execute(con, TOUCHED_ORG_DAYS)
    _replace_days(con, "usage_daily", USAGE_DAILY)
    return _scalar(con, "SELECT count(*) FROM pulled")


def _chunks(reader: pa.RecordBatchReader, rows: int) -> Iterator[pa.Table]:
    """The reader's batches as tables of about `rows` rows, the next one read in a thread
    while the caller writes this one (Postgres and DuckDB then work at the same time)."""

    def gather() -> pa.Table | None:
        batches, count = [], 0
        while count < rows:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                break
            batches.append(batch)
            count += batch.num_rows
        return pa.Table.from_batches(batches, schema=reader.schema) if batches else None

    with ThreadPoolExecutor(max_workers=1) as thread:
        upcoming = thread.submit(gather)
        while (table := upcoming.result()) is not None:
            upcoming = thread.submit(gather)
            yield table


# a view of the usage facts in the files $files (a list of paths), as written
FACTS = """
    SELECT *
    FROM read_parquet($files, hive_partitioning = false)
"""

# the same view when no file is listed: the facts' columns, no rows
NO_FACTS = """
    SELECT * EXCLUDE (day)
    FROM pulled
    LIMIT 0
"""

# the facts' files of the days that the periods of table {periods} span, in order of day
_FACT_FILES_OF_PERIODS = """
    SELECT path
    FROM _fact_files
    WHERE day IN (
        SELECT f.day
        FROM _fact_files AS f
        JOIN {periods} AS p
          ON f.day >= (p.period_start AT TIME ZONE 'UTC')::DATE
         AND f.day <= ((p.period_end - INTERVAL 1 MICROSECOND) AT TIME ZONE 'UTC')::DATE)
    ORDER BY day
"""
AFFECTED_FACT_FILES = _FACT_FILES_OF_PERIODS.format(periods="affected")
CURRENT_FACT_FILES = _FACT_FILES_OF_PERIODS.format(periods="current_periods")

# the facts' files of the days not touched (a reset organization's other usage is there)
UNTOUCHED_FACT_FILES = """
    SELECT path
    FROM _fact_files
    WHERE day IN (SELECT day FROM _fact_files EXCEPT SELECT day FROM touched_days)
    ORDER BY day
"""


@timed("facts_view")
def _facts_view(con: duckdb.DuckDBPyConnection, root: Path, name: str, files: str) -> None:
    """View `name` over the Parquet usage facts (under `root`) in the files `files` lists."""
    paths = [str(root / path) for (path,) in _execute(con, files).fetchall()]
    if paths:
        _view(con, name, FACTS, {"files": paths})
    else:
        _view(con, name, NO_FACTS)


# --- billing ---------------------------------------------------------------------------------
#
# The closing rule: a period closes at the first build after its end plus the grace at which no
# landed usage file that may hold its usage waits to be ingested (billing.closing), with the
# usage that had arrived by then, and is never recomputed after: its figures are what Postgres
# recorded when it closed (`billing_close_usage`), whatever is rebuilt. Usage that arrives after
# its period closed counts in the period open at its arrival (`billing_adjustments`).

# the usage whose late share is placed again: the touched days'
LATE_CANDIDATES = """
    CREATE OR REPLACE TEMP VIEW late_candidates AS
    SELECT org_id, day, metric, quantity, events, batch_id, occurred_at, ingested_at
    FROM pulled
"""

# ... and, when some organizations' plan history changed, every other day's of those
LATE_CANDIDATES_WITH_RESETS = """
    CREATE OR REPLACE TEMP VIEW late_candidates AS
    SELECT org_id, day, metric, quantity, events, batch_id, occurred_at, ingested_at
    FROM pulled
    UNION ALL
    SELECT org_id, (occurred_at AT TIME ZONE 'UTC')::DATE AS day, metric, quantity, events,
           batch_id, occurred_at, ingested_at
    FROM reset_facts
    WHERE org_id IN (SELECT org_id FROM reset_orgs)
"""

# every period: the closed ones as Postgres recorded them, then the open ones
PERIODS = """
    CREATE OR REPLACE TEMP TABLE periods AS
    SELECT org_id, period_start, period_end
    FROM closes
    UNION ALL
    SELECT *
    FROM open_periods
"""

# the periods past their end: ended $grace_us microseconds or more before $as_of, not closed
PAST_PERIODS = """
    CREATE OR REPLACE TEMP TABLE past AS
    SELECT p.org_id, p.period_start, p.period_end
    FROM periods AS p
    WHERE p.period_end + to_microseconds($grace_us) <= $as_of
      AND (p.org_id, p.period_start) NOT IN (SELECT org_id, period_start FROM closes)
"""

# ... those this build closes: no usage file that can hold their usage waits (billing.closing)
DUE_PERIODS = """
    CREATE OR REPLACE TEMP TABLE due AS
    SELECT * FROM past AS p
    WHERE NOT EXISTS (
        SELECT 1 FROM held_days AS h
        WHERE h.day >= CAST(timezone('UTC', p.period_start) AS DATE) - 1
    )
"""

# ... and those that wait
WAITING_PERIODS = """
    CREATE OR REPLACE TEMP TABLE waiting AS
    SELECT * FROM past EXCEPT SELECT * FROM due
"""

# ... closed at $as_of; recorded in Postgres once their figures are computed
CLOSE_DUE_PERIODS = """
    INSERT INTO closes
    SELECT org_id, period_start, period_end, $as_of, NULL
    FROM due
"""

# the periods that had late usage of the touched days: their late share may drop to nothing
LATE_TARGETS_BEFORE = """
    CREATE OR REPLACE TEMP TABLE old_targets AS
    SELECT DISTINCT org_id, period_start FROM _late_usage
    WHERE day IN (SELECT day FROM touched_days)
"""

FORGET_LATE_USAGE = """
    DELETE FROM _late_usage
    WHERE day IN (SELECT day FROM touched_days)
       OR org_id IN (SELECT org_id FROM reset_orgs)
       OR org_id NOT IN (SELECT org_id FROM periods)
"""

# usage that arrived after the period it occurred in had closed, by the period of its arrival:
# a landed row is late usage, a correction's entry (usage_ledger) a correction of its batch
LATE_USAGE = """
    INSERT INTO _late_usage
    SELECT c.org_id, c.day, c.metric, occurred.period_start, arrived.period_start,
           sum(c.quantity), sum(c.events),
           CASE WHEN c.batch_id IS NULL THEN 'late' ELSE 'correction' END, c.batch_id
    FROM late_candidates AS c
    JOIN periods AS occurred ON occurred.org_id = c.org_id
         AND c.occurred_at >= occurred.period_start AND c.occurred_at < occurred.period_end
    JOIN closes AS closed ON closed.org_id = occurred.org_id
         AND closed.period_start = occurred.period_start AND c.ingested_at >= closed.closed_at
    JOIN periods AS arrived ON arrived.org_id = c.org_id
         AND c.ingested_at >= arrived.period_start AND c.ingested_at < arrived.period_end
    WHERE c.metric IN (SELECT metric FROM period_plans)
    GROUP BY ALL
"""

# the periods to recompute: not frozen (or closed by this build, or closed before their figures
# were kept), and reached by a touched day, a reset, late usage, or missing from the mart
AFFECTED_PERIODS = """
    CREATE OR REPLACE TEMP TABLE affected AS
    SELECT p.org_id, p.period_start, p.period_end FROM periods AS p
    WHERE (p.org_id, p.period_start) NOT IN (SELECT org_id, period_start FROM closed_usage)
      AND (p.org_id IN (SELECT org_id FROM reset_orgs)
        OR (p.org_id, p.period_start) IN (SELECT org_id, period_start FROM due)
        OR (p.org_id, p.period_start) IN (SELECT org_id, period_start FROM closes)
        OR EXISTS (SELECT 1 FROM touched_org_days AS t WHERE t.org_id = p.org_id
                   AND p.period_start < (t.day + 1)::TIMESTAMPTZ
                   AND p.period_end > t.day::TIMESTAMPTZ)
        OR (p.org_id, p.period_start) IN (SELECT org_id, period_start FROM old_targets)
        OR (p.org_id, p.period_start) IN (SELECT org_id, period_start FROM _late_usage
            WHERE day IN (SELECT day FROM touched_days) OR org_id IN (SELECT org_id FROM reset_orgs))
        OR NOT EXISTS (SELECT 1 FROM billing_periods AS b JOIN org_dim AS o ON o.org = b.org
                       WHERE o.org_id = p.org_id AND b.period_start = p.period_start
                         AND b.period_end = p.period_end))
"""

# each affected period's use per metric: what occurred in it (and, once closed, had arrived by
# the close) plus the late usage carried into it, rated with its plan
RECOMPUTED_PERIODS = """
    CREATE OR REPLACE TEMP TABLE recomputed AS
    WITH regular AS (
        SELECT a.org_id, a.period_start, f.metric, sum(f.quantity) AS used
        FROM period_facts AS f
        JOIN affected AS a ON a.org_id = f.org_id
             AND f.occurred_at >= a.period_start AND f.occurred_at < a.period_end
        LEFT JOIN closes AS c ON c.org_id = a.org_id AND c.period_start = a.period_start
        WHERE c.closed_at IS NULL OR f.ingested_at < c.closed_at
        GROUP BY ALL),
    late AS (
        SELECT org_id, period_start, metric, sum(quantity) AS used FROM _late_usage GROUP BY ALL)
    SELECT a.org_id, o.org, a.period_start, a.period_end, q.tier, q.metric,
           coalesce(r.used, 0) + coalesce(l.used, 0) AS used, q.quota
    FROM affected AS a
    JOIN org_dim AS o USING (org_id)
    JOIN period_plans AS q ON q.org_id = a.org_id AND q.period_start = a.period_start
    LEFT JOIN regular AS r ON r.org_id = a.org_id AND r.period_start = a.period_start
         AND r.metric = q.metric
    LEFT JOIN late AS l ON l.org_id = a.org_id AND l.period_start = a.period_start
         AND l.metric = q.metric
"""

# the rows published below, and the periods that no longer exist
PUBLISH_BILLING_PERIODS_DELETE = """
    DELETE FROM billing_periods AS b
    WHERE b.closed
       OR (b.org, b.period_start) IN (SELECT org, period_start FROM recomputed)
       OR NOT EXISTS (SELECT 1 FROM periods AS p JOIN org_dim AS o USING (org_id)
                      WHERE o.org = b.org AND p.period_start = b.period_start)
"""

# closed periods as Postgres recorded them
PUBLISH_CLOSED_PERIODS = """
    INSERT INTO billing_periods
    SELECT o.org, c.period_start, c.period_end, u.metric, u.used, u.quota, u.overage, true
    FROM closes AS c
    JOIN closed_usage AS u USING (org_id, period_start)
    JOIN org_dim AS o USING (org_id)
"""

# open periods as recomputed
PUBLISH_OPEN_PERIODS = """
    INSERT INTO billing_periods
    SELECT org, period_start, period_end, metric, used, quota, greatest(used - quota, 0), false
    FROM recomputed
    WHERE (org_id, period_start) NOT IN (SELECT org_id, period_start FROM closes)
"""

# late usage and corrections of closed periods, by the period they count in, their kind, the
# period they occurred in and their batch
PUBLISH_ADJUSTMENTS = """
    INSERT INTO billing_adjustments
    SELECT o.org, l.period_start, l.metric, l.kind, sum(l.quantity), sum(l.events),
           l.occurred_period_start, l.batch
    FROM _late_usage AS l
    JOIN org_dim AS o USING (org_id)
    GROUP BY o.org, l.period_start, l.metric, l.kind, l.occurred_period_start, l.batch
    HAVING sum(l.quantity) <> 0 OR sum(l.events) <> 0
"""

# the late usage of the days this build read that open periods bill, per origin
LATE_INTO_OPEN = """
    SELECT o.org, l.metric, l.occurred_period_start, l.period_start, sum(l.quantity)
    FROM _late_usage AS l
    JOIN org_dim AS o USING (org_id)
    WHERE l.kind = 'late' AND l.day IN (SELECT day FROM touched_days)
      AND (l.org_id, l.period_start) NOT IN (SELECT org_id, period_start FROM closes)
    GROUP BY ALL
    ORDER BY o.org, l.metric, l.occurred_period_start, l.period_start
"""

# the periods recomputed, for the checks
REBUILT_PERIODS = """
    SELECT o.org, a.period_start, a.period_end
    FROM affected AS a
    JOIN org_dim AS o USING (org_id)
"""

# the periods this build closes (or closed before their figures were kept), as recomputed
CLOSING_PERIODS = """
    SELECT DISTINCT r.org_id, r.period_start, r.period_end, r.tier
    FROM recomputed AS r
    JOIN closes AS c USING (org_id, period_start)
"""

# ... and their figures per metric
CLOSING_USAGE = """
    SELECT r.org_id, r.period_start, r.metric, r.used, r.quota, greatest(r.used - r.quota, 0)
    FROM recomputed AS r
    JOIN closes AS c USING (org_id, period_start)
"""


@timed("billing")
def _billing(
    build: MartsBuild,
    conn: psycopg.Connection,
    extractor: Extractor,
    as_of: datetime,
    grace: timedelta,
    held_days: set[date],
) -> int:
    """Recompute the open billing periods the touched days reach, close the periods due (the
    closing rule above) but those a usage file of `held_days` may hold usage of (temp table
    `waiting`), and publish every period; returns how many were recomputed."""
    con = build.con
    latest = max(as_of, _scalar(con, "SELECT max(ingested_at) FROM pulled") or as_of)
    _load_closes(con, extractor)
    versions = _plan_versions(extractor)
    reset = _plans_changed(con, versions, build.fresh)
    _load(con, "reset_orgs", pa.table({"org_id": pa.array(sorted(reset), pa.int32())}))
    if reset:
        _facts_view(con, build.facts_root, "reset_facts", UNTOUCHED_FACT_FILES)
        _execute(con, LATE_CANDIDATES_WITH_RESETS)
    else:
        _execute(con, LATE_CANDIDATES)
    _periods(con, versions, reset, latest, as_of)
    grace_us = grace // timedelta(microseconds=1)
    _load(con, "held_days", pa.table({"day": pa.array(sorted(held_days), pa.date32())}))
    _execute(con, PAST_PERIODS, {"grace_us": grace_us, "as_of": as_of})
    _execute(con, DUE_PERIODS)
    _execute(con, WAITING_PERIODS)
    _execute(con, CLOSE_DUE_PERIODS, {"as_of": as_of})
    for sql in (LATE_TARGETS_BEFORE, FORGET_LATE_USAGE, LATE_USAGE, AFFECTED_PERIODS):
        _execute(con, sql)
    _facts_view(con, build.facts_root, "period_facts", AFFECTED_FACT_FILES)
    _execute(con, RECOMPUTED_PERIODS)
    _close_due_periods(con, conn, extractor, as_of)
    for sql in (PUBLISH_BILLING_PERIODS_DELETE, PUBLISH_CLOSED_PERIODS, PUBLISH_OPEN_PERIODS):
        _execute(con, sql)
    _replace_all(con, "billing_adjustments", PUBLISH_ADJUSTMENTS)
    return _scalar(con, "SELECT count(*) FROM affected")


def _load_closes(con: duckdb.DuckDBPyConnection, extractor: Extractor) -> None:
    """Temp tables `closes` and `closed_usage`: the closed periods and their figures, as
    Postgres holds them."""
    _load(con, "closes", extractor.read(CLOSES_QUERY))
    _load(con, "closed_usage", extractor.read(CLOSED_USAGE_QUERY))


@timed("close_due_periods")
def _close_due_periods(
    con: duckdb.DuckDBPyConnection, conn: psycopg.Connection, extractor: Extractor, as_of: datetime
) -> None:
    """Record in Postgres the periods closed by this build, and the figures of periods closed
    before their figures were kept, then read back what Postgres holds (a concurrent build that
    closed a period first keeps its figures)."""
    closing = _execute(con, CLOSING_PERIODS).fetchall()
    if not closing:
        return
    usage = _execute(con, CLOSING_USAGE).fetchall()
    due = set(_execute(con, "SELECT org_id, period_start FROM due").fetchall())
    with timed_step("record_closes"):
        record_closes(conn, [row for row in closing if (row[0], row[1]) in due], usage, as_of)
    _load_closes(con, extractor)


def _plan_versions(extractor: Extractor) -> dict[int, list[PlanVersion]]:
    """Each organization's plan versions, in order of effect."""
    versions: dict[int, list[PlanVersion]] = {}
    for row in extractor.read(PLAN_VERSIONS_QUERY).read_all().to_pylist():
        limits = {metric: row[f"{metric}_limit"] for metric in QUOTA_METRICS}
        versions.setdefault(row["org_id"], []).append(
            PlanVersion(
                row["effective_at"], row["tier"], row["anchor"], quotas(row["tier"], limits)
            )
        )
    return versions


def _plans_changed(
    con: duckdb.DuckDBPyConnection, versions: dict[int, list[PlanVersion]], fresh: bool
) -> set[int]:
    """The organizations whose plan history changed since the last build (all, from scratch):
    their open periods may have moved, so all their late usage is placed again."""
    seen = dict(_execute(con, "SELECT org_id, plan FROM _billing_orgs").fetchall())
    return {
        org_id
        for org_id, history in versions.items()
        if fresh or seen.get(org_id) != _fingerprint(history)
    }


def _fingerprint(history: list[PlanVersion]) -> str:
    return repr(
        [
            (
                v.effective_at.isoformat(),
                v.tier,
                v.anchor and v.anchor.isoformat(),
                sorted(v.quotas.items()),
            )
            for v in history
        ]
    )


OPEN_PERIOD_COLUMNS: dict[str, pa.DataType] = {
    "org_id": pa.int32(),
    "period_start": TIMESTAMP,
    "period_end": TIMESTAMP,
}
PERIOD_PLAN_COLUMNS: dict[str, pa.DataType] = {
    "org_id": pa.int32(),
    "period_start": TIMESTAMP,
    "tier": pa.string(),
    "metric": pa.string(),
    "quota": pa.int64(),
}


@timed("periods")
def _periods(
    con: duckdb.DuckDBPyConnection,
    versions: dict[int, list[PlanVersion]],
    reset: set[int],
    latest: datetime,
    as_of: datetime,
) -> None:
    """Temp tables `periods` (the closed periods as Postgres recorded them, then every other
    period of every organization, from its first usage to `latest` and `as_of`)
    and `period_plans` (each open period's tier and quota per metric); records each
    organization's first usage and plan history in `_billing_orgs`."""
    firsts = _first_usage(con, reset)
    closed: dict[int, list[tuple[datetime, datetime]]] = {}
    for org_id, start, end in _execute(
        con, "SELECT org_id, period_start, period_end FROM closes ORDER BY ALL"
    ).fetchall():
        closed.setdefault(org_id, []).append((start, end))
    last = max(latest, as_of)
    open_periods: list[tuple[int, datetime, datetime]] = []
    plans: list[tuple[int, datetime, str, str, int]] = []
    recorded: list[tuple[int, datetime | None, str]] = []
    for (org_id,) in _execute(con, "SELECT org_id FROM org_dim ORDER BY org_id").fetchall():
        history = versions.get(org_id) or [
            PlanVersion(ALWAYS_BEFORE, "FREE", None, quotas("FREE", {}))
        ]
        first = firsts.get(org_id)
        recorded.append((org_id, first, _fingerprint(history)))
        for period in rated_periods(history, min(first or as_of, as_of), last):
            for start, end in uncovered(period.start, period.end, closed.get(org_id, [])):
                open_periods.append((org_id, start, end))
                plans.extend(
                    (org_id, start, period.tier, metric, quota)
                    for metric, quota in period.quotas.items()
                )
    _execute(con, "DELETE FROM _billing_orgs")
    _append(con, "_billing_orgs", recorded, (pa.int32(), TIMESTAMP, pa.string()))
    _rows_table(con, "open_periods", OPEN_PERIOD_COLUMNS, open_periods)
    _execute(con, PERIODS)
    _rows_table(con, "period_plans", PERIOD_PLAN_COLUMNS, plans)


def _first_usage(con: duckdb.DuckDBPyConnection, reset: set[int]) -> dict[int, datetime]:
    """Each organization's first usage: as the last build knew it (unless its plan history
    changed), or among the usage read now, whichever is earlier."""
    firsts = {
        org_id: first
        for org_id, first in _execute(con, "SELECT org_id, first_at FROM _billing_orgs").fetchall()
        if org_id not in reset and first is not None
    }
    for org_id, first in _execute(
        con, "SELECT org_id, min(occurred_at) FROM late_candidates GROUP BY org_id"
    ).fetchall():
        firsts[org_id] = min(first, firsts.get(org_id, first))
    return firsts


# --- quota status ----------------------------------------------------------------------------

# each organization's open period containing $as_of
CURRENT_PERIODS = """
    CREATE OR REPLACE TEMP TABLE current_periods AS
    SELECT org_id, period_start, period_end
    FROM open_periods
    WHERE period_start <= $as_of AND $as_of < period_end
"""

# each current period's use per metric, as billed: what occurred in it plus the adjustments
# booked into it (late usage of closed periods); its quota, when the use reached it (adjustments
# count from the period's start), and the booked part
QUOTA_USE = """
    WITH events AS (
        SELECT c.org_id, f.metric, f.occurred_at, f.quantity
        FROM current_facts AS f
        JOIN current_periods AS c ON c.org_id = f.org_id
             AND f.occurred_at >= c.period_start AND f.occurred_at < c.period_end),
    booked AS (
        SELECT l.org_id, l.metric, sum(l.quantity) AS quantity
        FROM _late_usage AS l
        JOIN current_periods USING (org_id, period_start)
        GROUP BY ALL),
    quota_now AS (
        SELECT q.*
        FROM period_plans AS q
        JOIN current_periods USING (org_id, period_start)),
    running AS (
        SELECT org_id, metric, occurred_at,
               sum(quantity) OVER (
                   PARTITION BY org_id, metric ORDER BY occurred_at
                   RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS total
        FROM events),
    used AS (
        SELECT org_id, metric, sum(quantity) AS used
        FROM events
        GROUP BY ALL),
    reached AS (
        SELECT r.org_id, r.metric, min(r.occurred_at) AS reached_at
        FROM running AS r
        JOIN quota_now AS q USING (org_id, metric)
        LEFT JOIN booked AS b USING (org_id, metric)
        WHERE r.total + coalesce(b.quantity, 0) >= q.quota
        GROUP BY ALL)
    SELECT o.org, q.tier, c.period_start, c.period_end, q.metric,
           coalesce(u.used, 0) + coalesce(b.quantity, 0), q.quota,
           CASE WHEN coalesce(b.quantity, 0) >= q.quota THEN c.period_start
                ELSE r.reached_at END,
           coalesce(b.quantity, 0)
    FROM current_periods AS c
    JOIN org_dim AS o USING (org_id)
    JOIN quota_now AS q USING (org_id)
    LEFT JOIN used AS u USING (org_id, metric)
    LEFT JOIN booked AS b USING (org_id, metric)
    LEFT JOIN reached AS r USING (org_id, metric)
    ORDER BY o.org, q.metric
"""


@timed("quota_status")
def _quota_status(build: MartsBuild, as_of: datetime) -> None:
    """quota_status for each organization's current period: `used` as the period is billed
    (its open `billing_periods` row's), and the forecast."""
    con = build.con
    _execute(con, CURRENT_PERIODS, {"as_of": as_of})
    _facts_view(con, build.facts_root, "current_facts", CURRENT_FACT_FILES)
    statuses = []
    for org, tier, start, end, metric, used, quota, reached_at, booked in _execute(
        con, QUOTA_USE
    ).fetchall():
        status = forecast(used, quota, start, end, as_of, reached_at, booked)
        statuses.append(
            (
                org,
                tier,
                start,
                end,
                metric,
                used,
                quota,
                status.pct_used,
                status.status,
                status.projected,
                status.projected_exhaustion,
                as_of,
            )
        )
    _execute(con, "DELETE FROM quota_status")
    _append(con, "quota_status", statuses, QUOTA_STATUS_TYPES)


# --- the dashboards' marts -------------------------------------------------------------------

ERROR_DAYS = """
    CREATE OR REPLACE TEMP TABLE touched_days AS
    SELECT DISTINCT (occurred_at AT TIME ZONE 'UTC')::DATE AS day
    FROM error_rows
"""

ERROR_TRENDS = """
    INSERT INTO error_trends
    SELECT p.org, p.project, (e.occurred_at AT TIME ZONE 'UTC')::DATE AS day, e.detector,
           e.severity, count(*), count(DISTINCT e.signature_hash)
    FROM error_rows AS e
    JOIN project_dim AS p USING (project_id)
    GROUP BY ALL
"""

ERROR_SIGNATURE_DAYS = """
    INSERT INTO error_signature_days
    SELECT p.org, p.project, (e.occurred_at AT TIME ZONE 'UTC')::DATE AS day, e.signature_hash,
           count(*)
    FROM error_rows AS e
    JOIN project_dim AS p USING (project_id)
    GROUP BY ALL
"""

ERROR_SIGNATURES = """
    INSERT INTO error_signatures
    SELECT p.org, p.project, s.hash, s.detector, s.severity, s.message, s.file, s.line, s.count,
           s.first_seen, s.last_seen, s.status, s.resolved_at
    FROM signature_rows AS s
    JOIN project_dim AS p USING (project_id)
"""


@timed("errors")
def _errors(con: duckdb.DuckDBPyConnection, extractor: Extractor, days: list[date] | None) -> None:
    _load(con, "error_rows", extractor.facts("error_events", days))
    _touched(con, days, ERROR_DAYS)
    _replace_days(con, "error_trends", ERROR_TRENDS)
    _replace_days(con, "error_signature_days", ERROR_SIGNATURE_DAYS)
    _replace_all(con, "error_signatures", ERROR_SIGNATURES)


FIX_DAYS = """
    CREATE OR REPLACE TEMP TABLE touched_days AS
    SELECT DISTINCT (created_at AT TIME ZONE 'UTC')::DATE AS day
    FROM fix_rows
"""

FIX_OUTCOMES = """
    INSERT INTO fix_outcomes
    SELECT p.org, p.project, (a.created_at AT TIME ZONE 'UTC')::DATE AS day, a.status,
           a.chain_status, count(*), sum(a.files_changed), sum(a.lines_added),
           sum(a.lines_removed), avg(a.risk_score), max(a.risk_score)
    FROM fix_rows AS a
    JOIN project_dim AS p USING (project_id)
    GROUP BY ALL
"""

PENDING_ATTESTATIONS = """
    INSERT INTO pending_attestations
    SELECT p.org, p.project, a.request_id, a.created_at, a.status, a.hash, a.prev_hash,
           a.parent_received
    FROM pending_rows AS a
    JOIN project_dim AS p USING (project_id)
"""

# each project's chain, with the attestations rejected for a link of the reasons $rejected
ATTESTATION_CHAINS = """
    INSERT INTO attestation_chains
    SELECT p.org, p.project, coalesce(c.verified, 0), coalesce(c.pending, 0),
           coalesce(q.rejected, 0), c.head_hash, c.head_created_at
    FROM project_dim AS p
    LEFT JOIN chain_rows AS c USING (project_id)
    LEFT JOIN (
        SELECT org, project, sum(records) AS rejected
        FROM quarantine_rows
        WHERE source = 'fix_attestations' AND reason IN (SELECT unnest($rejected))
        GROUP BY ALL
    ) AS q ON q.org = p.org AND q.project = p.project
    WHERE c.project_id IS NOT NULL OR q.rejected IS NOT NULL
"""


@timed("fixes")
def _fixes(con: duckdb.DuckDBPyConnection, extractor: Extractor, days: list[date] | None) -> None:
    _load(con, "fix_rows", extractor.facts("fix_attestations", days))
    _touched(con, days, FIX_DAYS)
    _replace_days(con, "fix_outcomes", FIX_OUTCOMES)
    _replace_all(con, "pending_attestations", PENDING_ATTESTATIONS)
    _replace_all(con, "attestation_chains", ATTESTATION_CHAINS, {"rejected": list(REJECTED_LINKS)})


AUDIT_DAYS = """
    CREATE OR REPLACE TEMP TABLE touched_days AS
    SELECT DISTINCT (occurred_at AT TIME ZONE 'UTC')::DATE AS day
    FROM audit_rows
"""

AUDIT_SCORES = """
    INSERT INTO audit_scores
    SELECT p.org, p.project, (r.occurred_at AT TIME ZONE 'UTC')::DATE AS day, r.url, r.device,
           r.environment, count(*),
           avg(r.score_accessibility), avg(r.score_performance), avg(r.score_security),
           avg(r.score_seo), avg(r.lighthouse_performance), avg(r.lighthouse_accessibility),
           avg(r.lighthouse_best_practices), avg(r.lighthouse_seo),
           sum(r.total_issues)
    FROM audit_rows AS r
    JOIN project_dim AS p USING (project_id)
    GROUP BY ALL
"""

AUDIT_ISSUES = """
    INSERT INTO audit_issues
    SELECT p.org, p.project, (i.occurred_at AT TIME ZONE 'UTC')::DATE AS day, i.suite,
           i.severity, count(*)
    FROM audit_issue_rows AS i
    JOIN project_dim AS p USING (project_id)
    GROUP BY ALL
"""

LATEST_AUDIT_ISSUES = """
    INSERT INTO latest_audit_issues
    SELECT p.org, p.project, l.url, l.device, l.occurred_at, l.suite, l.severity, l.message,
           l.recommendation, l.element, l.documentation
    FROM latest_audit_issue_rows AS l
    JOIN project_dim AS p USING (project_id)
"""


@timed("audits")
def _audits(con: duckdb.DuckDBPyConnection, extractor: Extractor, days: list[date] | None) -> None:
    _load(con, "audit_rows", extractor.facts("audit_results", days))
    _touched(con, days, AUDIT_DAYS)
    _replace_days(con, "audit_scores", AUDIT_SCORES)
    _load(con, "audit_issue_rows", extractor.facts("audit_issues", days))
    _replace_days(con, "audit_issues", AUDIT_ISSUES)
    _replace_all(con, "latest_audit_issues", LATEST_AUDIT_ISSUES)
