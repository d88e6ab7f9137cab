"""Reading the operational database for the marts: what changed, and the rows, as Arrow."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import adbc_driver_postgresql.dbapi as adbc
import psycopg
import pyarrow as pa

from odavl_pipeline.db.locks import take_source
from odavl_pipeline.marts.bounds import EARLIEST_DAY_SQL, LATEST_DAY_SQL, held, outside
from odavl_pipeline.marts.metrics import METRIC_SQL
from odavl_pipeline.marts.timing import timed


@dataclass(frozen=True)
class Changes:
    """The marks read: one (source, day, version) per write that changed the day since."""

    marks: tuple[tuple[str, date, int], ...] = ()

    def days(self, source: str) -> list[date]:
        return sorted({day for changed, day, _ in self.marks if changed == source})

    def __len__(self) -> int:
        return len(self.marks)


# the marks of the days the marts can hold; a day outside (its rows are left out) keeps its mark
MARKS = f"""
    SELECT source::text, day, version FROM mart_changes
    WHERE day >= {EARLIEST_DAY_SQL} AND day < {LATEST_DAY_SQL}
"""


@timed("read_changes")
def read_changes(conn: psycopg.Connection) -> Changes:
    """The change marks as they are now."""
    rows = conn.execute(MARKS).fetchall()
    conn.commit()
    return Changes(tuple(rows))


@timed("forget_changes")
def forget_changes(conn: psycopg.Connection, changes: Changes) -> int:
    """Delete the marks the marts now reflect; a mark written since (committed after the read)
    stays for the next build."""
    if not changes:
        return 0
    cursor = conn.execute(
        "DELETE FROM mart_changes WHERE version = ANY(%s)",
        ([version for _, _, version in changes.marks],),
    )
    conn.commit()
    return cursor.rowcount


@timed("usage_cut")
def usage_cut(conn: psycopg.Connection) -> tuple[datetime, Changes]:
    """A moment before which every usage row is committed, and the change marks as they are at
    that moment: read while no usage write is open.

    Writers share the source lock from before their first insert until they commit, and stamp
    rows with their statement's time; this takes the lock alone, so it waits for the writes in
    progress to commit, and writes that start meanwhile wait for it. So rows stamped before this
    moment are all committed and their marks among those read here; rows committed later are
    stamped after it, their marks left for the next build (docs/ingestion.md, "Parallel
    ingestion"). A build that reads the usage stamped before the moment holds exactly that.
    """
    take_source(conn, "usage_events")
    marks = conn.execute(MARKS).fetchall()
    row = conn.execute("SELECT odavl_now()").fetchone()
    assert row is not None  # a SELECT without FROM returns exactly one row
    moment = row[0]
    conn.commit()
    return moment, Changes(tuple(marks))


CLOSES_QUERY = """
    SELECT organization_id AS org_id, period_start, period_end, closed_at, tier::text AS tier
    FROM billing_closes
"""

CLOSED_USAGE_QUERY = """
    SELECT organization_id AS org_id, period_start, metric, used, quota, overage
    FROM billing_close_usage
"""

# a version with a time the marts cannot hold is left out (its subscription row is reported)
PLAN_VERSIONS_QUERY = f"""
    SELECT v.organization_id AS org_id, v.effective_at, v.tier::text AS tier, v.anchor,
           v.analyses_limit, v.fixes_limit, v.audits_limit
    FROM plan_versions AS v
    WHERE {outside("v.effective_at")} IS NOT TRUE
      AND {outside("v.anchor")} IS NOT TRUE
    ORDER BY v.organization_id, v.effective_at, v.id
"""


def day_ranges(days: Iterable[date]) -> list[tuple[datetime, datetime]]:
    """Consecutive UTC days merged into [start, end) ranges of timestamps."""
    ranges: list[list[date]] = []
    for day in sorted(set(days)):
        if ranges and ranges[-1][1] + timedelta(days=1) == day:
            ranges[-1][1] = day
        else:
            ranges.append([day, day])
    return [(_midnight(first), _midnight(last + timedelta(days=1))) for first, last in ranges]


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


# The contract's metric of a usage event (`u` in the query), as SQL.
# Rows for the marts with the timestamp that puts them on a UTC day, read by day, the condition
# they are read under (the rows the marts cannot hold are left out: bounds.py), and the column
# usage is stamped with on arrival (a build holds the usage stamped before its cut).
FACT_QUERIES = {
    "usage_events": (
        f"""
        SELECT u.organization_id AS org_id, {METRIC_SQL} AS metric, u.event_id, u.occurred_at,
               u.ingested_at, u.quantity::bigint AS quantity, u.events, u.project_id,
               u.file_id, u.line_no,
               u.batch_id
        FROM usage_ledger AS u
        """,
        "u.occurred_at",
        held("usage_events", "u"),
        "u.ingested_at",
    ),
    "error_events": (
        """
        SELECT e.project_id, e.occurred_at, e.detector, e.severity::text AS severity,
               e.signature_hash
        FROM error_events AS e
        """,
        "e.occurred_at",
        held("error_events", "e"),
        None,
    ),
    "fix_attestations": (
        """
        SELECT a.project_id, a.created_at, a.status::text AS status, a.files_changed,
               a.lines_added, a.lines_removed, a.risk_score, a.chain_status::text AS chain_status
        FROM fix_attestations AS a
        """,
        "a.created_at",
        held("fix_attestations", "a"),
        None,
    ),
    "audit_results": (
        """
        SELECT r.id AS audit_id, r.project_id, r.occurred_at, r.url, r.device::text AS device,
               r.environment::text AS environment, r.score_accessibility, r.score_performance,
               r.score_security, r.score_seo, r.lighthouse_performance,
               r.lighthouse_accessibility, r.lighthouse_best_practices, r.lighthouse_seo,
               r.total_issues
        FROM audit_results AS r
        """,
        "r.occurred_at",
        held("audit_results", "r"),
        None,
    ),
    "audit_issues": (
        """
        SELECT r.project_id, r.occurred_at, i.suite::text AS suite, i.severity::text AS severity
        FROM audit_issues AS i
        JOIN audit_results AS r ON r.id = i.audit_id
        """,
        "r.occurred_at",
        held("audit_results", "r"),
        None,
    ),
}

DIMENSION_QUERIES = {
    "org_dim": (
        "SELECT o.id AS org_id, o.slug AS org, o.name, o.tier::text AS tier, "
        "o.status::text AS status FROM organizations AS o"
    ),
    "project_dim": (
        "SELECT p.id AS project_id, o.slug AS org, p.slug AS project, p.name, "
        "p.status::text AS status FROM projects AS p JOIN organizations AS o "
        "ON o.id = p.organization_id"
    ),
    "membership_rows": (
        "SELECT o.slug AS org, u.email, u.name, m.role::text AS role "
        "FROM organization_members AS m JOIN organizations AS o ON o.id = m.organization_id "
        "JOIN users AS u ON u.id = m.user_id"
    ),
    "subscription_dim": (
        "SELECT s.organization_id AS org_id, s.current_period_start AS anchor, "
        "s.status::text AS status, s.analyses_limit, s.fixes_limit, s.audits_limit "
        f"FROM subscriptions AS s WHERE {held('subscriptions', 's')}"
    ),
    "signature_rows": (
        "SELECT s.project_id, s.hash, s.detector, s.severity::text AS severity, s.message, "
        "s.file, s.line, s.count, s.first_seen, s.last_seen, s.status::text AS status, "
        f"s.resolved_at FROM error_signatures AS s WHERE {held('error_signatures', 's')}"
    ),
    "chain_rows": (
        "SELECT a.project_id, count(*) FILTER (WHERE a.chain_status = 'verified') AS verified, "
        "count(*) FILTER (WHERE a.chain_status = 'pending') AS pending, "
        "(array_agg(a.hash ORDER BY a.created_at DESC) FILTER (WHERE a.chain_status = 'verified' "
        "AND NOT EXISTS (SELECT 1 FROM fix_attestations AS c WHERE c.project_id = a.project_id "
        "AND c.prev_hash = a.hash AND c.chain_status = 'verified')))[1] AS head_hash, "
        "max(a.created_at) FILTER (WHERE a.chain_status = 'verified' AND NOT EXISTS ("
        "SELECT 1 FROM fix_attestations AS c WHERE c.project_id = a.project_id "
        "AND c.prev_hash = a.hash AND c.chain_status = 'verified')) AS head_created_at "
        f"FROM fix_attestations AS a WHERE {held('fix_attestations', 'a')} GROUP BY a.project_id"
    ),
    # the pending attestations (none once every chain is linked) and whether their parent came
    "pending_rows": (
        "SELECT a.project_id, a.request_id, a.created_at, a.status::text AS status, a.hash, "
        "a.prev_hash, EXISTS (SELECT 1 FROM fix_attestations AS p WHERE p.project_id = "
        "a.project_id AND p.hash = a.prev_hash) AS parent_received FROM fix_attestations AS a "
        f"WHERE a.chain_status = 'pending' AND {held('fix_attestations', 'a')}"
    ),
    "quarantine_rows": (
        "SELECT COALESCE(q.source::text, '(no source)') AS source, q.reason, q.org_slug AS org, q.project_slug AS project, "
        "sum(q.lines) AS records FROM quarantine AS q GROUP BY 1, 2, 3, 4"
    ),
    # a request of the HTTP API is a ledger file of its own, named by the request's id
    "file_rows": (
        "SELECT f.id AS file_id, f.source::text AS source, f.path, f.ingested_at, "
        "CASE WHEN r.file_id IS NOT NULL THEN substring(f.path from '([^/]+)\\.ndjson$') END "
        "AS request, r.key_prefix, r.received_at "
        "FROM ingested_files AS f LEFT JOIN api_requests AS r ON r.file_id = f.id "
        "WHERE f.status = 'ingested'"
    ),
    "latest_audit_issue_rows": (
        "SELECT latest.project_id, latest.url, latest.device, latest.occurred_at, "
        "i.suite::text AS suite, i.severity::text AS severity, i.message, i.recommendation, "
        "i.element, i.documentation FROM (SELECT DISTINCT ON (r.project_id) r.id, r.project_id, "
        "r.url, r.device::text AS device, r.occurred_at FROM audit_results AS r "
        f"WHERE {held('audit_results', 'r')} ORDER BY r.project_id, r.occurred_at DESC, r.id DESC) "
        "AS latest "
        "JOIN audit_issues AS i ON i.audit_id = latest.id"
    ),
}


class Extractor:
    """Arrow reads over one ADBC connection (libpq's binary COPY underneath)."""

    def __init__(self, libpq_url: str):
        self.connection = adbc.connect(libpq_url)

    def close(self) -> None:
        self.connection.close()

    def read(self, query: str, parameters: tuple = ()) -> pa.RecordBatchReader:
        cursor = self.connection.cursor()
        cursor.execute(query, parameters=parameters or None)
        reader = cursor.fetch_record_batch()

        def batches():  # the cursor lives as long as its stream
            try:
                yield from reader
            finally:
                cursor.close()

        return pa.RecordBatchReader.from_batches(reader.schema, batches())

    def facts(
        self, name: str, days: list[date] | None, stamped_before: datetime | None = None
    ) -> pa.RecordBatchReader:
        """FACT_QUERIES[name]'s rows on the given UTC days (every row when days is None); of a
        source stamped on arrival, only the rows stamped before `stamped_before` when given."""
        query, timestamp, condition, arrival = FACT_QUERIES[name]
        parameters: list = []
        if stamped_before is not None:
            parameters.append(stamped_before.isoformat())
            condition = f"{condition} AND {arrival} < $1::text::timestamptz"
        if days is not None:
            ranges = day_ranges(days)
            first = len(parameters) + 1
            query = (
                f"{query} JOIN unnest(${first}::text[]::timestamptz[], "
                f"${first + 1}::text[]::timestamptz[]) AS wanted(lo, hi) "
                f"ON {timestamp} >= wanted.lo AND {timestamp} < wanted.hi"
            )
            parameters += [
                [lo.isoformat() for lo, _ in ranges],
                [hi.isoformat() for _, hi in ranges],
            ]
        return self.read(f"{query} WHERE {condition}", tuple(parameters))
