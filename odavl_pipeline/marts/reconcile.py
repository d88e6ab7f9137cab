"""Reconciliation: the marts' numbers recomputed independently in Postgres, and compared.

The marts aggregate Parquet facts in DuckDB; these queries aggregate usage_events in SQL from
the same rules (CONTRACT.md section 6 and the closing rule in build.py), so a bug in one path
shows up as a difference. Both leave out the rows the marts cannot hold (bounds.py), which
`rows_left_out` lists.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import duckdb
import psycopg

from odavl_pipeline.marts.bounds import BOUNDED_COLUMNS, held, outside
from odavl_pipeline.marts.metrics import METRIC_SQL


@dataclass(frozen=True)
class Rebuilt:
    """What an incremental build rebuilt, which its checks compare with Postgres: the usage days
    it read again and the billing periods (org, start, end) it recomputed. Rows it did not
    rebuild were compared by the build that made them; a full build compares everything."""

    days: list[date]
    periods: list[tuple[str, datetime, datetime]]


@dataclass(frozen=True)
class Reconciliation:
    compared: int
    differences: list[dict] = field(default_factory=list)  # the first few, for the check's detail
    difference_count: int = 0

    @property
    def passed(self) -> bool:
        return self.difference_count == 0


def published_cut(marts: duckdb.DuckDBPyConnection) -> datetime | None:
    """The cut of the published build (its usage is what was stamped before it), or None for a
    build as of an instant, which holds the usage as it was read."""
    return marts.execute("SELECT max(usage_cut) FROM _meta").fetchall()[0][0]


def _compare(
    mart: Mapping[tuple, object],
    postgres: Mapping[tuple, object],
    names: tuple[str, ...],
    sides: tuple[str, str] = ("marts", "postgres"),
) -> Reconciliation:
    keys = sorted(set(mart) | set(postgres), key=str)
    differing = [key for key in keys if mart.get(key, 0) != postgres.get(key, 0)]
    return Reconciliation(
        compared=len(keys),
        difference_count=len(differing),
        differences=[
            {
                **dict(zip(names, map(str, key), strict=True)),
                sides[0]: mart.get(key, 0),
                sides[1]: postgres.get(key, 0),
            }
            for key in differing[:10]
        ],
    )


# every accepted usage event's quantity per organization and metric
USAGE_TOTALS_SQL = f"""
SELECT o.slug, {METRIC_SQL}, sum(u.quantity)
FROM usage_ledger AS u
JOIN organizations AS o ON o.id = u.organization_id
WHERE {held("usage_events", "u")} AND (%(cut)s::timestamptz IS NULL OR u.ingested_at < %(cut)s)
GROUP BY 1, 2
"""


# ... on the days listed, per day ($days, between $first and $after: the index's range)
DAYS_USAGE_SQL = f"""
SELECT o.slug, (u.occurred_at AT TIME ZONE 'UTC')::date, {METRIC_SQL}, sum(u.quantity)
FROM usage_ledger AS u
JOIN organizations AS o ON o.id = u.organization_id
WHERE u.occurred_at >= %(first)s AND u.occurred_at < %(after)s
  AND (u.occurred_at AT TIME ZONE 'UTC')::date = ANY(%(days)s::date[])
  AND {held("usage_events", "u")} AND (%(cut)s::timestamptz IS NULL OR u.ingested_at < %(cut)s)
GROUP BY 1, 2, 3
"""


def usage_daily_totals(
    marts: duckdb.DuckDBPyConnection, conn: psycopg.Connection, rebuilt: Rebuilt | None = None
) -> Reconciliation:
    """usage_daily per organization and metric against every accepted usage event; after an
    incremental build, per organization, day and metric on the days it read again."""
    mart: dict[tuple, int]
    postgres: dict[tuple, int]
    if rebuilt is None:
        mart = {
            (org, metric): quantity
            for org, metric, quantity in marts.execute(
                "SELECT org, metric, sum(quantity) FROM usage_daily GROUP BY ALL"
            ).fetchall()
        }
        postgres = {
            (org, metric): quantity
            for org, metric, quantity in conn.execute(
                USAGE_TOTALS_SQL, {"cut": published_cut(marts)}
            ).fetchall()
        }
        return _compare(mart, postgres, ("org", "metric"))
    if not rebuilt.days:
        return Reconciliation(compared=0)
    mart = {
        (org, day, metric): quantity
        for org, day, metric, quantity in marts.execute(
            "SELECT org, day, metric, quantity FROM usage_daily WHERE day IN (SELECT unnest($1))",
            [rebuilt.days],
        ).fetchall()
    }
    first, last = min(rebuilt.days), max(rebuilt.days)
    postgres = {
        (org, day, metric): quantity
        for org, day, metric, quantity in conn.execute(
            DAYS_USAGE_SQL,
            {
                "days": rebuilt.days,
                "first": first,
                "after": last + timedelta(days=1),
                "cut": published_cut(marts),
            },
        ).fetchall()
    }
    return _compare(mart, postgres, ("org", "day", "metric"))


BILLED_SQL = f"""
WITH periods AS (
    SELECT o.id AS org_id, p.period_start, p.period_end
    FROM unnest(%(orgs)s::text[], %(starts)s::timestamptz[], %(ends)s::timestamptz[])
         AS p(org, period_start, period_end)
    JOIN organizations AS o ON o.slug = p.org),
occurred AS (
    SELECT u.organization_id AS org_id, {METRIC_SQL} AS metric, u.quantity, u.ingested_at,
           p.period_start, c.closed_at
    FROM usage_ledger AS u
    JOIN periods AS p ON p.org_id = u.organization_id
     AND u.occurred_at >= p.period_start AND u.occurred_at < p.period_end
    LEFT JOIN billing_closes AS c ON c.organization_id = p.org_id AND c.period_start = p.period_start
    WHERE u.event_type <> 'api_call' AND {held("usage_events", "u")} AND (%(cut)s::timestamptz IS NULL OR u.ingested_at < %(cut)s))
SELECT o.slug, CASE WHEN e.closed_at IS NULL OR e.ingested_at < e.closed_at
                    THEN e.period_start ELSE arrival.period_start END, e.metric, sum(e.quantity)
FROM occurred AS e
JOIN organizations AS o ON o.id = e.org_id
LEFT JOIN periods AS arrival ON arrival.org_id = e.org_id
 AND e.ingested_at >= arrival.period_start AND e.ingested_at < arrival.period_end
GROUP BY 1, 2, 3
"""


# The same for some periods, read by time instead of whole: what occurred in each of them (by
# the occurred_at index), and what arrived in each after the period it occurred in had closed
# (by the BRIN index on the arrival time), between $first and $after.
PERIODS_BILLED_SQL = f"""
WITH periods AS (
    SELECT o.id AS org_id, p.org, p.period_start, p.period_end
    FROM unnest(%(orgs)s::text[], %(starts)s::timestamptz[], %(ends)s::timestamptz[])
         AS p(org, period_start, period_end)
    JOIN organizations AS o ON o.slug = p.org),
occurred AS (
    SELECT p.org, p.period_start, {METRIC_SQL} AS metric, u.quantity
    FROM usage_ledger AS u
    JOIN periods AS p ON p.org_id = u.organization_id
     AND u.occurred_at >= p.period_start AND u.occurred_at < p.period_end
    LEFT JOIN billing_closes AS c ON c.organization_id = p.org_id AND c.period_start = p.period_start
    WHERE u.occurred_at >= %(first)s AND u.occurred_at < %(after)s
      AND (c.closed_at IS NULL OR u.ingested_at < c.closed_at)
      AND u.event_type <> 'api_call' AND {held("usage_events", "u")} AND (%(cut)s::timestamptz IS NULL OR u.ingested_at < %(cut)s)),
arrived_late AS (
    SELECT p.org, p.period_start, {METRIC_SQL} AS metric, u.quantity
    FROM usage_ledger AS u
    JOIN periods AS p ON p.org_id = u.organization_id
     AND u.ingested_at >= p.period_start AND u.ingested_at < p.period_end
     AND u.occurred_at < p.period_start
    JOIN billing_closes AS c ON c.organization_id = u.organization_id
     AND u.occurred_at >= c.period_start AND u.occurred_at < c.period_end
     AND u.ingested_at >= c.closed_at
    WHERE u.ingested_at >= %(first)s AND u.ingested_at < %(after)s
      AND u.event_type <> 'api_call' AND {held("usage_events", "u")} AND (%(cut)s::timestamptz IS NULL OR u.ingested_at < %(cut)s))
SELECT org, period_start, metric, sum(quantity)
FROM (SELECT * FROM occurred UNION ALL SELECT * FROM arrived_late) AS billed
GROUP BY 1, 2, 3
"""


def billing_periods_usage(
    marts: duckdb.DuckDBPyConnection, conn: psycopg.Connection, rebuilt: Rebuilt | None = None
) -> Reconciliation:
    """Each billing period's `used` against accepted usage in Postgres, under the closing rule:
    usage that arrived after its period closed counts in the period open at its arrival. After
    an incremental build, the periods it recomputed."""
    rows = marts.execute(
        "SELECT org, period_start, period_end, metric, used FROM billing_periods"
    ).fetchall()
    cut = published_cut(marts)
    if rebuilt is None:
        periods = sorted({(org, start, end) for org, start, end, _, _ in rows})
        billed = _billed(conn, periods, cut)
    else:
        wanted = set(rebuilt.periods)
        billed = _billed_periods(conn, sorted(wanted), cut)
        rows = [row for row in rows if row[:3] in wanted]
    mart = {(org, start, metric): used for org, start, _, metric, used in rows}
    return _compare(mart, billed, ("org", "period_start", "metric"))


def _billed(
    conn: psycopg.Connection, periods: list[tuple], cut: datetime | None
) -> dict[tuple, int]:
    """What each of `periods` (org, start, end), every period of the marts, is billed for per
    metric, by BILLED_SQL."""
    # Every usage event is read once: one scan joined by organization. An index scan per
    # period, which the planner picks, reads the heap in random order: 3.5 s instead of 1.0 s
    # for a year of a thousand organizations.
    conn.execute("SET enable_nestloop = off")
    try:
        return {
            (org, start, metric): used
            for org, start, metric, used in conn.execute(
                BILLED_SQL,
                {
                    "orgs": [p[0] for p in periods],
                    "starts": [p[1] for p in periods],
                    "ends": [p[2] for p in periods],
                    "cut": cut,
                },
            )
        }
    finally:
        conn.execute("RESET enable_nestloop")


def _billed_periods(
    conn: psycopg.Connection, periods: list[tuple], cut: datetime | None
) -> dict[tuple, int]:
    """What each of `periods` (org, start, end), some of them, is billed for per metric, by
    PERIODS_BILLED_SQL."""
    if not periods:
        return {}
    return {
        (org, start, metric): used
        for org, start, metric, used in conn.execute(
            PERIODS_BILLED_SQL,
            {
                "orgs": [p[0] for p in periods],
                "starts": [p[1] for p in periods],
                "ends": [p[2] for p in periods],
                "first": min(p[1] for p in periods),
                "after": max(p[2] for p in periods),
                "cut": cut,
            },
        )
    }


# each closed period's figures per metric, as recorded when it closed
CLOSED_PERIODS_SQL = """
SELECT o.slug, c.period_start, c.period_end, u.metric, u.used, u.quota, u.overage
FROM billing_close_usage AS u
JOIN billing_closes AS c USING (organization_id, period_start)
JOIN organizations AS o ON o.id = u.organization_id
"""


def closed_periods_as_recorded(
    marts: duckdb.DuckDBPyConnection, conn: psycopg.Connection
) -> Reconciliation:
    """Each closed period's row (end, used, quota, overage) against what Postgres recorded when
    it closed: no build may change a closed period, and none may drop one."""
    mart = {
        (org, start, metric): (end, used, quota, overage)
        for org, start, end, metric, used, quota, overage in marts.execute(
            "SELECT org, period_start, period_end, metric, used, quota, overage "
            "FROM billing_periods WHERE closed"
        ).fetchall()
    }
    postgres = {
        (org, start, metric): (end, used, quota, overage)
        for org, start, end, metric, used, quota, overage in conn.execute(
            CLOSED_PERIODS_SQL
        ).fetchall()
    }
    return _compare(mart, postgres, ("org", "period_start", "metric"))


def quota_status_usage(
    marts: duckdb.DuckDBPyConnection, conn: psycopg.Connection
) -> Reconciliation:
    """quota_status.used against its period's billing_periods row: one number per period
    (that row is checked against Postgres by `billing_periods_usage`, which need not be
    computed twice)."""
    mart = {
        (org, start, metric): used
        for org, start, metric, used in marts.execute(
            "SELECT org, period_start, metric, used FROM quota_status"
        ).fetchall()
    }
    billed = {
        (org, start, metric): used
        for org, start, metric, used in marts.execute(
            "SELECT b.org, b.period_start, b.metric, b.used FROM billing_periods AS b "
            "JOIN (SELECT DISTINCT org, period_start FROM quota_status) USING (org, period_start)"
        ).fetchall()
    }
    return _compare(
        mart, billed, ("org", "period_start", "metric"), ("quota_status", "billing_periods")
    )


@dataclass(frozen=True)
class LeftOut:
    """Rows the marts leave out: how many, and the first few (source, id, column, value in UTC)."""

    count: int
    first: list[dict] = field(default_factory=list)


def rows_left_out(conn: psycopg.Connection, table: str, limit: int = 10) -> LeftOut:
    """The rows of `table` with a timestamp outside what the marts can hold (bounds.py)."""
    columns = BOUNDED_COLUMNS[table]
    counted = conn.execute(
        f"SELECT count(*) FROM {table} AS t WHERE "
        + " OR ".join(outside(f"t.{column}") for column in columns)
    ).fetchone()
    assert counted is not None  # an aggregate without GROUP BY returns exactly one row
    count = counted[0]
    if not count:
        return LeftOut(0)
    values = ", ".join(f"('{column}', t.{column})" for column in columns)
    first = conn.execute(
        f"SELECT t.id, c.name, (c.value AT TIME ZONE 'UTC')::text FROM {table} AS t "
        f"CROSS JOIN LATERAL (VALUES {values}) AS c(name, value) "
        f"WHERE {outside('c.value')} ORDER BY t.id, c.name LIMIT %s",
        (limit,),
    ).fetchall()
    return LeftOut(
        count,
        [
            {"source": table, "id": row_id, "column": column, "value": value}
            for row_id, column, value in first
        ],
    )
