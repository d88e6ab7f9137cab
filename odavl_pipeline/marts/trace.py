"""Where a billed number comes from, read from the published marts: a billing period's `used`,
its days (what occurred, what was billed later or carried in), and one day's usage entries,
each with its origin: a landed file and its 1-based line, a record of an HTTP API request (its
`index` in the API's answer, 0-based, the key's prefix and when the request was received), or
a correction batch.

The statements are shared by the Billing page's drill-down (dashboards/dashlib/data.py, which
runs them behind its access check) and `odavl-pipeline trace`, so both say the same thing.
"""

from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import duckdb

from odavl_pipeline.errors import PipelineError
from odavl_pipeline.marts.store import facts_dir, open_marts

# the usage fact files of the UTC days ? to ?, relative to the facts folder
FACT_FILES_OF_DAYS = "SELECT path FROM _fact_files WHERE day BETWEEN ? AND ? ORDER BY day"

# the columns of DAY_EVENTS, in order
EVENT_COLUMNS = (
    "event_id",
    "occurred_at",
    "ingested_at",
    "quantity",
    "project",
    "landing_file",  # a landed file, relative to the landing root (null for the others)
    "line",  # its 1-based line; for a correction, the line of the file added to the batch
    "request",  # an HTTP API request's id (the name of its ledger file)
    "record",  # the record's `index` in the API's answer: 0 for the request's first
    "key_prefix",  # the prefix of the API key that sent it
    "received_at",  # when the API received the request
    "api_request",  # the four above in words: "<request>, record N, key P, <time> UTC"
    "batch",  # the correction batch that booked the entry
)

# one UTC day's usage entries of an organization and metric, earliest first, with their origin
# (parameters: the day's fact files, org, metric, how many at most). An API request's record
# is the line of its ledger file less one: the API numbers records from 0, files from 1.
DAY_EVENTS = """
    SELECT f.event_id, f.occurred_at, f.ingested_at, f.quantity, p.project,
           CASE WHEN l.request IS NULL THEN l.path END AS landing_file,
           CASE WHEN l.request IS NULL THEN f.line_no END AS line,
           l.request,
           CASE WHEN l.request IS NOT NULL THEN f.line_no - 1 END AS record,
           l.key_prefix, l.received_at,
           CASE WHEN l.request IS NOT NULL THEN
               l.request || ', record ' || (f.line_no - 1) || ', key ' || l.key_prefix || ', '
               || strftime(timezone('UTC', l.received_at), '%Y-%m-%d %H:%M:%S') || ' UTC'
           END AS api_request,
           f.batch_id AS batch
    FROM read_parquet(?) AS f
    LEFT JOIN landing_files AS l USING (file_id)
    LEFT JOIN projects AS p ON p.project_id = f.project_id
    WHERE f.org_id = (SELECT org_id FROM organizations WHERE org = ?) AND f.metric = ?
    ORDER BY f.occurred_at, f.event_id, f.ingested_at, f.quantity
    LIMIT ?
"""

# the usage of one organization and metric that occurred in [start, end), per UTC day
# (parameters: the period's fact files, org, metric, start, end)
_OCCURRED = """
    SELECT (occurred_at AT TIME ZONE 'UTC')::DATE AS day, sum(quantity) AS q, sum(events) AS e
    FROM read_parquet(?)
    WHERE org_id = (SELECT org_id FROM organizations WHERE org = ?) AND metric = ?
      AND occurred_at >= ? AND occurred_at < ?
    GROUP BY ALL
"""
_NOTHING_OCCURRED = "SELECT NULL::DATE AS day, 0::BIGINT AS q, 0::BIGINT AS e WHERE false"

# adjustments per UTC day of occurrence, of the period {} (parameters: org, metric, the period)
_ADJUSTED = """
    SELECT day, sum(quantity) AS q, sum(events) AS e
    FROM _late_usage
    WHERE org_id = (SELECT org_id FROM organizations WHERE org = ?) AND metric = ? AND {} = ?
    GROUP BY ALL
"""

# the days behind one billed number; `billed` sums to billing_periods.used
_BILLED_DAYS = """
    WITH occurred AS ({occurred}),
    late_out AS ({late_out}),
    late_in AS ({late_in})
    SELECT day, coalesce(o.q, 0)::BIGINT AS occurred, coalesce(o.e, 0)::BIGINT AS events,
           coalesce(lo.q, 0)::BIGINT AS billed_later, coalesce(li.q, 0)::BIGINT AS carried_in,
           (coalesce(o.q, 0) - coalesce(lo.q, 0) + coalesce(li.q, 0))::BIGINT AS billed
    FROM occurred AS o
    FULL JOIN late_out AS lo USING (day)
    FULL JOIN late_in AS li USING (day)
    ORDER BY day
"""

PERIODS = """
    SELECT period_start, period_end, closed, used, quota
    FROM billing_periods
    WHERE org = ? AND metric = ?
    ORDER BY period_start
"""


def billed_days_statement(
    globs: list[str], org: str, period_start: datetime, period_end: datetime, metric: str
) -> tuple[str, list]:
    """The statement of the days behind one billed number and its parameters: per UTC day of
    occurrence, the usage that occurred in the period, the part billed in a later period (it
    arrived, or was corrected, after the period closed), the late usage of earlier periods
    carried into this one, and what is billed here. `globs`: the period's fact files."""
    occurred, parameters = _NOTHING_OCCURRED, []
    if globs:
        occurred, parameters = _OCCURRED, [globs, org, metric, period_start, period_end]
    sql = _BILLED_DAYS.format(
        occurred=occurred,
        late_out=_ADJUSTED.format("occurred_period_start"),
        late_in=_ADJUSTED.format("period_start"),
    )
    return sql, [*parameters, org, metric, period_start, org, metric, period_start]


def day_events_statement(globs: list[str], org: str, metric: str, limit: int) -> tuple[str, list]:
    """The statement of one day's usage entries (EVENT_COLUMNS) and its parameters; `globs`:
    the day's fact files, at least one."""
    return DAY_EVENTS, [globs, org, metric, limit]


def last_day(period_end: datetime) -> date:
    """The UTC day of a period's last instant (a naive instant is taken as UTC)."""
    moment = period_end - timedelta(microseconds=1)
    return (moment.astimezone(UTC) if moment.tzinfo else moment).date()


# --- a billed number traced, for the command line -------------------------------------------


class TraceRefused(PipelineError):
    """What was asked for is not in the marts; the message says what is."""


@dataclass(frozen=True)
class BilledPeriod:
    org: str
    metric: str
    period_start: datetime
    period_end: datetime
    closed: bool
    used: int
    quota: int


@dataclass(frozen=True)
class BilledDay:
    day: date
    occurred: int
    events: int
    billed_later: int
    carried_in: int
    billed: int


@dataclass(frozen=True)
class UsageEntry:
    """A usage fact (a landed or sent event, or a correction's signed entry) and its origin."""

    event_id: str
    occurred_at: datetime
    ingested_at: datetime
    quantity: int
    project: str | None
    landing_file: str | None
    line: int | None
    request: str | None
    record: int | None
    key_prefix: str | None
    received_at: datetime | None
    api_request: str | None
    batch: int | None

    @property
    def came_from(self) -> str:
        """The origin in words: `file:line`, the API request and record, or the batch."""
        if self.batch is not None:
            return f"correction batch {self.batch}"
        if self.request is not None:
            return f"API request {self.api_request}"
        if self.landing_file is not None:
            return f"{self.landing_file}:{self.line}"
        return "-"  # a row whose ledger file is not in the marts

    def origin(self) -> dict | None:
        """The origin as JSON: `{"kind": "file", "file", "line"}`, `{"kind": "api",
        "request", "index", "key_prefix", "received_at"}` or `{"kind": "correction", "batch",
        "line"}`."""
        if self.batch is not None:
            return {"kind": "correction", "batch": self.batch, "line": self.line}
        if self.request is not None:
            return {
                "kind": "api",
                "request": self.request,
                "index": self.record,
                "key_prefix": self.key_prefix,
                "received_at": _iso(self.received_at),
            }
        if self.landing_file is not None:
            return {"kind": "file", "file": self.landing_file, "line": self.line}
        return None


@dataclass
class Trace:
    """A billed number, the days it sums, and one day's entries when asked for."""

    period: BilledPeriod
    days: list[BilledDay]
    day: date | None = None
    events: list[UsageEntry] = field(default_factory=list)
    more_events: bool = False  # the day has more entries than were asked for

    def as_json(self) -> dict:
        return {
            **{name: _iso(value) for name, value in asdict(self.period).items()},
            "days": [{name: _iso(value) for name, value in asdict(d).items()} for d in self.days],
            "day": _iso(self.day),
            "events": [
                {
                    "event_id": entry.event_id,
                    "occurred_at": _iso(entry.occurred_at),
                    "ingested_at": _iso(entry.ingested_at),
                    "quantity": entry.quantity,
                    "project": entry.project,
                    "from": entry.origin(),
                }
                for entry in self.events
            ]
            if self.day
            else None,
            "more_events": self.more_events,
        }


def trace_billed_number(
    marts_path: Path,
    org: str,
    metric: str,
    period_start: date | datetime | None = None,
    day: date | None = None,
    limit: int = 1_000,
) -> Trace:
    """The billed number of `org`'s `metric` in one period, as the marts hold it, with its days
    and, given `day`, that day's first `limit` usage entries with their origin.

    The period is the one starting at `period_start` (an instant, or a UTC day on which one
    period starts); without it, the one holding `day`'s last instant, or else the latest."""
    with open_marts(marts_path) as con:
        periods = _periods(con, org, metric)
        period = choose_period(periods, org, period_start, day)
        root = facts_dir(marts_path)
        globs = _globs(con, root, period.period_start.date(), last_day(period.period_end))
        sql, parameters = billed_days_statement(
            globs, org, period.period_start, period.period_end, metric
        )
        days = [BilledDay(*row) for row in con.execute(sql, parameters).fetchall()]
        trace = Trace(period, days)
        if day is None:
            return trace
        _require_day_of(period, days, day)
        trace.day = day
        day_globs = _globs(con, root, day, day)
        if day_globs:
            sql, parameters = day_events_statement(day_globs, org, metric, limit + 1)
            entries = [UsageEntry(*row) for row in con.execute(sql, parameters).fetchall()]
            trace.events, trace.more_events = entries[:limit], len(entries) > limit
        return trace


def choose_period(
    periods: list[BilledPeriod],
    org: str,
    period_start: date | datetime | None,
    day: date | None,
) -> BilledPeriod:
    """The period asked for among `periods` (oldest first), or a refusal naming what exists."""
    if not periods:
        raise TraceRefused(
            f"{org} has no billing periods in the marts: every organization gets them at the "
            "next `odavl-pipeline run`"
        )
    if isinstance(period_start, datetime):
        found = [p for p in periods if p.period_start == period_start]
    elif isinstance(period_start, date):
        found = [p for p in periods if p.period_start.astimezone(UTC).date() == period_start]
    elif day is not None:
        end_of_day = datetime.combine(day, time(), UTC) + timedelta(days=1, microseconds=-1)
        found = [p for p in periods if p.period_start <= end_of_day < p.period_end]
        if not found:
            raise TraceRefused(
                f"no billing period of {org} holds {day}: they run from "
                f"{_instant(periods[0].period_start)} to {_instant(periods[-1].period_end)}"
            )
    else:
        return periods[-1]
    if len(found) > 1:
        raise TraceRefused(
            f"{len(found)} billing periods of {org} start on {period_start}, at "
            + ", ".join(_instant(p.period_start) for p in found)
            + ": give --period-start that instant"
        )
    if not found:
        assert period_start is not None  # without one, the day's branch refused above
        starts = [_instant(p.period_start) for p in reversed(periods)]
        shown = ", ".join(starts[:6]) + (", …" if len(starts) > 6 else "")
        raise TraceRefused(
            f"no billing period of {org} starts {_when(period_start)}; the latest start: {shown}"
        )
    return found[0]


def _require_day_of(period: BilledPeriod, days: list[BilledDay], day: date) -> None:
    """Refuse a day that is neither in the period nor one whose usage it carries in."""
    inside = period.period_start.astimezone(UTC).date() <= day <= last_day(period.period_end)
    if not inside and day not in {d.day for d in days}:
        raise TraceRefused(
            f"{day} is not a day of the period from {_instant(period.period_start)}: none of "
            "its usage is billed there (without --period-start, --day picks its own period)"
        )


def _periods(con: duckdb.DuckDBPyConnection, org: str, metric: str) -> list[BilledPeriod]:
    counted = con.execute("SELECT count(*) FROM organizations WHERE org = ?", [org]).fetchone()
    assert counted is not None  # an aggregate without GROUP BY returns exactly one row
    if not counted[0]:
        raise TraceRefused(
            f"no organization {org!r} in the marts: unknown, or the marts were built before it "
            "existed (`odavl-pipeline run` builds them)"
        )
    return [
        BilledPeriod(org, metric, *row) for row in con.execute(PERIODS, [org, metric]).fetchall()
    ]


def _globs(con: duckdb.DuckDBPyConnection, root: Path, first: date, last: date) -> list[str]:
    """Absolute globs of the usage fact files of the UTC days first..last."""
    return [
        str(root / path) for (path,) in con.execute(FACT_FILES_OF_DAYS, [first, last]).fetchall()
    ]


def _instant(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _when(period_start: date | datetime) -> str:
    if isinstance(period_start, datetime):
        return f"at {period_start.astimezone(UTC).isoformat()}"
    return f"on {period_start}"


def _iso(value):
    return value.isoformat() if isinstance(value, (date, datetime)) else value
