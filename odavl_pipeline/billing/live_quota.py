"""Quota as it stands at a request (CONTRACT.md section 9): the rules of `quota_status`
(section 6) with `used` counting every usage event accepted before the request, from the API or
from files, not only what the last marts build saw.

The current period and its plan come from the plan history in PostgreSQL, as the marts draw
them (`rated_periods`; a closed period stays as it closed). When the last build's quota_status
is for that same period, `used` is its figure plus what the ledger took in since the build's
usage cut: a build holds exactly the rows stamped before its cut (marts/extract.py `usage_cut`),
so that read grows with the usage since the build, not with the period. Otherwise (no build yet, a period the build did not know, a new series of periods)
the period is summed from the ledger whole.
"""

import os
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from threading import Lock

import duckdb
import psycopg

from odavl_pipeline.billing.catalogue import QUOTA_METRICS
from odavl_pipeline.billing.plans import (
    ALWAYS_BEFORE,
    PlanVersion,
    quotas,
    rated_periods,
    uncovered,
)
from odavl_pipeline.billing.quota import forecast
from odavl_pipeline.marts.bounds import held, outside
from odavl_pipeline.marts.metrics import METRIC_SQL
from odavl_pipeline.marts.store import MartsNotBuilt, open_marts

NEVER = datetime(1, 1, 1, tzinfo=UTC)  # a cut before every row: the period summed whole


@dataclass(frozen=True)
class PublishedPeriod:
    """One organization's current period as the last marts build published it."""

    tier: str
    period_start: datetime
    period_end: datetime
    cut: datetime  # the build's usage cut: it holds exactly the usage stamped before
    used: dict[str, int]
    quota: dict[str, int]
    booked: dict[str, int]  # the adjustments booked into the period
    reached_on: dict[str, date | None]  # the day an exceeded quota was reached


class PublishedQuota:
    """The published quota_status, read again only when a build has replaced the marts file:
    a request then costs a `stat`, not a DuckDB query. Safe for a server's threads."""

    def __init__(self, marts_path: Path):
        self.marts_path = marts_path
        self._lock = Lock()
        self._identity: tuple | None = None
        self._periods: dict[str, PublishedPeriod] = {}

    def period_of(self, org: str) -> PublishedPeriod | None:
        try:
            stat = os.stat(self.marts_path)
        except FileNotFoundError:
            return None
        identity = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if identity != self._identity:
                try:
                    self._periods = _read_published(self.marts_path)
                except (MartsNotBuilt, duckdb.CatalogException):
                    self._periods = {}
                self._identity = identity
            return self._periods.get(org)


# each organization's current period as published, by a build with a cut (not one "as of" an
# instant, whose usage is not bounded by a moment)
PUBLISHED = """
    SELECT q.org, q.tier, q.period_start, q.period_end, m.usage_cut, q.metric, q.used, q.quota,
           q.status, q.projected_exhaustion, coalesce(a.quantity, 0)
    FROM quota_status AS q
    JOIN _meta AS m ON m.usage_cut IS NOT NULL
    LEFT JOIN (SELECT org, period_start, metric, sum(quantity) AS quantity
               FROM billing_adjustments GROUP BY ALL) AS a USING (org, period_start, metric)
"""


def _read_published(marts_path: Path) -> dict[str, PublishedPeriod]:
    periods: dict[str, PublishedPeriod] = {}
    with open_marts(marts_path) as marts:
        for row in marts.execute(PUBLISHED).fetchall():
            org, tier, start, end, cut, metric, used, quota, status, exhaustion, booked = row
            period = periods.setdefault(org, PublishedPeriod(tier, start, end, cut, {}, {}, {}, {}))
            period.used[metric], period.quota[metric], period.booked[metric] = used, quota, booked
            period.reached_on[metric] = exhaustion if status == "exceeded" else None
    return periods


@dataclass(frozen=True)
class LiveQuota:
    org: str
    tier: str
    period_start: datetime
    period_end: datetime
    as_of: datetime
    used: dict[str, int]
    quota: dict[str, int]
    booked: dict[str, int]
    reached_at: dict[str, datetime | None]

    def remaining(self, metric: str) -> int:
        return max(self.quota[metric] - self.used[metric], 0)

    def as_json(self) -> dict:
        """The answer of `GET …/quota` (section 9)."""
        metrics = {}
        for metric in QUOTA_METRICS:
            status = forecast(
                self.used[metric],
                self.quota[metric],
                self.period_start,
                self.period_end,
                self.as_of,
                self.reached_at[metric],
                self.booked[metric],
            )
            metrics[metric] = {
                "used": self.used[metric],
                "quota": self.quota[metric],
                "remaining": self.remaining(metric),
                "status": status.status,
                "projected": status.projected,
                "projected_exhaustion": status.projected_exhaustion
                and status.projected_exhaustion.isoformat(),
            }
        return {
            "org": self.org,
            "tier": self.tier,
            "period_start": self.period_start.isoformat(),
            "period_end": self.period_end.isoformat(),
            "as_of": self.as_of.isoformat(),
            "metrics": metrics,
        }


# one organization's plan versions in order of effect, and the ends of its closed periods
PLAN_HISTORY = f"""
    SELECT effective_at, tier::text, anchor, analyses_limit, fixes_limit, audits_limit
    FROM plan_versions
    WHERE organization_id = %s
      AND {outside("effective_at")} IS NOT TRUE AND {outside("anchor")} IS NOT TRUE
    ORDER BY effective_at, id
"""
CLOSED_PERIODS = """
    SELECT period_start, period_end FROM billing_closes
    WHERE organization_id = %s AND period_end > %s ORDER BY period_start
"""

# What the ledger took in at or after $since for one organization's period [$start, $end), per
# metric: what occurred in it ("own"), and what arrived in it for a period closed before its
# arrival ("booked": late usage, corrections of closed periods), as the marts bill them.
LEDGER_SINCE = f"""
    WITH arrived AS (
        SELECT {METRIC_SQL} AS metric, u.quantity, u.occurred_at, u.ingested_at
        FROM usage_ledger AS u
        WHERE u.organization_id = %(org)s AND u.ingested_at >= %(since)s
          AND u.occurred_at >= %(start)s AND u.occurred_at < %(end)s
          AND u.event_type <> 'api_call' AND {held("usage_events", "u")}
        UNION ALL
        SELECT {METRIC_SQL}, u.quantity, u.occurred_at, u.ingested_at
        FROM usage_ledger AS u
        WHERE u.organization_id = %(org)s AND u.ingested_at >= greatest(%(since)s, %(start)s)
          AND u.ingested_at < %(end)s AND u.occurred_at < %(start)s
          AND u.event_type <> 'api_call' AND {held("usage_events", "u")}
          AND EXISTS (
              SELECT FROM billing_closes AS c
              WHERE c.organization_id = %(org)s AND u.occurred_at >= c.period_start
                AND u.occurred_at < c.period_end AND u.ingested_at >= c.closed_at))
    SELECT metric,
           coalesce(sum(quantity) FILTER (WHERE occurred_at >= %(start)s), 0),
           coalesce(sum(quantity) FILTER (WHERE occurred_at < %(start)s), 0)
    FROM arrived GROUP BY metric
"""


def live_quota(
    conn: psycopg.Connection,
    org_id: int,
    org: str,
    published: PublishedPeriod | None,
    now: datetime,
) -> LiveQuota:
    """Organization `org`'s quota at `now`, on top of its `published` period when that is the
    current one."""
    start, end, tier, quota = _current_period(conn, org_id, now)
    current = (
        published
        if published is not None and (published.period_start, published.period_end) == (start, end)
        else None
    )
    since = current.cut if current else NEVER
    used = {metric: current.used.get(metric, 0) if current else 0 for metric in QUOTA_METRICS}
    booked = {metric: current.booked.get(metric, 0) if current else 0 for metric in QUOTA_METRICS}
    # planned for its cut each time: a prepared statement's generic plan would read the whole
    # period by (organization_id, occurred_at) rather than what arrived since the cut
    for metric, own, late in conn.execute(
        LEDGER_SINCE, {"org": org_id, "since": since, "start": start, "end": end}, prepare=False
    ).fetchall():
        used[metric] += own + late
        booked[metric] += late
    reached_at: dict[str, datetime | None] = {}
    for metric in QUOTA_METRICS:
        reached_on = current.reached_on.get(metric) if current else None
        if used[metric] < quota[metric] or used[metric] <= 0:
            reached_at[metric] = None
        elif current and reached_on is not None and current.quota.get(metric) == quota[metric]:
            reached_at[metric] = datetime.combine(reached_on, time(), UTC)
        else:
            reached_at[metric] = now  # reached since the build: by now at the latest
    return LiveQuota(org, tier, start, end, now, used, quota, booked, reached_at)


def _current_period(
    conn: psycopg.Connection, org_id: int, now: datetime
) -> tuple[datetime, datetime, str, dict[str, int]]:
    """The period containing `now` and its plan, as the marts rate it."""
    history = [
        PlanVersion(
            effective_at,
            tier,
            anchor,
            quotas(tier, {"analyses": analyses, "fixes": fixes, "audits": audits}),
        )
        for effective_at, tier, anchor, analyses, fixes, audits in conn.execute(
            PLAN_HISTORY, (org_id,)
        ).fetchall()
    ] or [PlanVersion(ALWAYS_BEFORE, "FREE", None, quotas("FREE", {}))]
    [period] = rated_periods(history, now, now)
    closed = conn.execute(CLOSED_PERIODS, (org_id, period.start)).fetchall()
    for start, end in uncovered(period.start, period.end, closed):
        if start <= now < end:
            return start, end, period.tier, period.quotas
    # `now` inside a closed period: only a clock set back before a close can do that
    start, end = next((start, end) for start, end in closed if start <= now < end)
    return start, end, period.tier, period.quotas
