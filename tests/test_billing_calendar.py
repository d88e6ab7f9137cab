"""The billing rules at each instant of the calendar tier (tests/clocks.py): usage generated
relative to the instant, landed and ingested at the clock's time, the marts built in-process.

At each instant: the open period contains the build's cut; a period closes at the first build
after its end plus the grace, never before, with the usage that had arrived; usage that arrives
after its period closed is booked into the period open at its arrival; quota status and its
forecast follow the period's length; alerts are recorded at their thresholds; a subscription
anchored on the 31st bills from noon on each month's last day, Februaries included.
"""

from calendar import monthrange
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from fractions import Fraction
from itertools import accumulate

import pytest

from odavl_pipeline import clock
from odavl_pipeline.alerts import record_from_marts
from odavl_pipeline.db.server import connect
from odavl_pipeline.ingest.run import ingest_days
from odavl_pipeline.marts import reconcile
from odavl_pipeline.marts.build import DEFAULT_GRACE, refresh_marts
from odavl_pipeline.marts.store import open_marts

from .marts_helpers import anchor_subscription, rows
from .records import ORG, usage

pytestmark = pytest.mark.calendar

SECOND = timedelta(seconds=1)
MINUTE = timedelta(minutes=1)
MICROSECOND = timedelta(microseconds=1)
METRICS = {"insight_analysis": "analyses", "autopilot_job": "fixes", "guardian_test_run": "audits"}

Period = tuple[datetime, datetime]


# --- the calendar, computed here independently of odavl_pipeline.billing.plans -----------------


def calendar_month(moment: datetime) -> Period:
    """The calendar month containing `moment`: the periods of odavl-test-org, anchored on a 1st."""
    start = datetime(moment.year, moment.month, 1, tzinfo=UTC)
    return start, _month_after(start)


def _month_after(start: datetime) -> datetime:
    return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)


def noon_on_the_last_day(year: int, month: int) -> datetime:
    return datetime(year, month, monthrange(year, month)[1], 12, tzinfo=UTC)


def anchored_on_the_31st(moment: datetime) -> Period:
    """The period containing `moment` of a subscription anchored at noon on a 31st: each period
    starts at noon on a month's last day (the 31st, else the month's last)."""
    year, month = moment.year, moment.month
    if noon_on_the_last_day(year, month) > moment:
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    following = (year, month + 1) if month < 12 else (year + 1, 1)
    return noon_on_the_last_day(year, month), noon_on_the_last_day(*following)


def periods_from(period_of: Callable[[datetime], Period], first: datetime, last: datetime):
    """The periods from the one containing `first` to the one containing `last`."""
    periods = [period_of(first)]
    while periods[-1][1] <= last:
        periods.append(period_of(periods[-1][1]))
    return periods


# --- landing, ingesting, building ---------------------------------------------------------------


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def event(event_id: str, occurred_at: datetime, quantity: int = 1, kind="insight_analysis"):
    return usage(event_id, occurred_at=stamp(occurred_at), quantity=quantity, event_type=kind)


def arrive(settings, landing, name: str, *events: dict) -> None:
    """The events land and are ingested now: ingestion stamps their arrival with the clock."""
    today = clock.today()
    landing.write("usage_events", today.isoformat(), f"{name}.ndjson", list(events))
    with connect(settings) as conn:  # opened now: its odavl_now() reads the clock as it is set
        report = ingest_days(conn, settings.landing_dir, "usage_events", [today])
    assert report.counts.accepted == len(events)


def build(settings, period_of: Callable[[datetime], Period]) -> tuple[datetime, dict]:
    """Builds the marts now; returns the build's cut and odavl-test-org's analyses per period,
    {start: (end, used, closed)}, having checked the rules that hold at every build: the current
    period contains the cut, and a period is closed exactly when its end plus the grace is past."""
    as_of = refresh_marts(settings).as_of
    periods = {
        start: (end, used, closed)
        for start, end, used, closed in rows(
            settings,
            "SELECT period_start, period_end, used, closed FROM billing_periods "
            "WHERE org = ? AND metric = 'analyses'",
            [ORG],
        )
    }
    assert {start: closed for start, (end, _, closed) in periods.items()} == {
        start: end + DEFAULT_GRACE <= as_of for start, (end, _, _) in periods.items()
    }
    current = rows(
        settings, "SELECT DISTINCT period_start, period_end FROM quota_status WHERE org = ?", [ORG]
    )
    assert current == [period_of(as_of)]
    return as_of, periods


def billed(events: list[tuple[datetime, int]], periods: list[Period]) -> dict:
    """What each period bills: the quantities that occurred in it."""
    return {
        start: (end, sum(quantity for moment, quantity in events if start <= moment < end))
        for start, end in periods
    }


def check_reconciled(settings, conn) -> None:
    with open_marts(settings.marts_path) as marts:
        for compare in (
            reconcile.billing_periods_usage,
            reconcile.closed_periods_as_recorded,
            reconcile.quota_status_usage,
        ):
            assert compare(marts, conn).passed, compare.__name__


# --- quota status and its forecast ------------------------------------------------------------

QUOTA = 10  # of each metric: odavl-test-org's subscription overrides its plan's limits


def expected_status(used: int, quota: int) -> str:
    if used >= quota:
        return "exceeded"
    return "warning" if used * 100 >= 80 * quota else "ok"


def expected_forecast(used, quota, start, end, as_of, reached_at) -> tuple[int, date | None]:
    """The linear forecast at `as_of`: used × period / elapsed, rounded half up, in whole
    microseconds; and the day the quota is (or, at this rate, would be) reached."""
    length = (end - start) // MICROSECOND
    elapsed = min((as_of - start) // MICROSECOND, length)
    projected = int(Fraction(used * length, elapsed) + Fraction(1, 2))
    if used >= quota:
        return projected, reached_at.date()
    if used and used * length > quota * elapsed:
        return projected, (start + MICROSECOND * (elapsed * quota // used)).date()
    return projected, None


def expected_thresholds(status: str, exhaustion: date | None, end: datetime) -> set[str]:
    """The alerts of a quota: 80 and 100 by its status; forecast when it is ok but forecast to
    run out on a day before its period ends."""
    if status == "exceeded":
        return {"80", "100"}
    if status == "warning":
        return {"80"}
    if exhaustion is not None and datetime.combine(exhaustion, time(), UTC) < end:
        return {"forecast"}
    return set()


def check_quota_status(settings, usages: list[tuple], as_of: datetime) -> set[tuple[str, str]]:
    """Checks odavl-test-org's quota_status against `usages` (id, occurred_at, quantity, event
    type); returns the alerts its figures call for, as (metric, threshold)."""
    start, end = calendar_month(as_of)
    found = {
        metric: values
        for metric, *values in rows(
            settings,
            "SELECT metric, used, quota, status, projected, projected_exhaustion, as_of "
            "FROM quota_status WHERE org = ?",
            [ORG],
        )
    }
    alerts = set()
    for metric in METRICS.values():
        in_period = sorted(
            (moment, quantity)
            for _, moment, quantity, kind in usages
            if METRICS[kind] == metric and start <= moment < end
        )
        totals = list(accumulate(quantity for _, quantity in in_period))
        used = totals[-1] if totals else 0
        reached_at = next(
            (
                moment
                for (moment, _), total in zip(in_period, totals, strict=True)
                if total >= QUOTA
            ),
            None,
        )
        status = expected_status(used, QUOTA)
        projected, exhaustion = expected_forecast(used, QUOTA, start, end, as_of, reached_at)
        assert found[metric] == [used, QUOTA, status, projected, exhaustion, as_of], metric
        alerts |= {
            (metric, threshold) for threshold in expected_thresholds(status, exhaustion, end)
        }
    return alerts


# --- the open period, its close and late usage --------------------------------------------------


def test_the_open_period_its_quota_status_its_close_and_late_usage(
    calendar_now, clock_at, settings, landing, conn
):
    anchor_subscription(
        conn,
        ORG,
        "2026-01-01T00:00:00Z",
        "2026-02-01T00:00:00Z",
        analyses_limit=QUOTA,
        fixes_limit=QUOTA,
        audits_limit=QUOTA,
    )
    now = calendar_now.replace(microsecond=0)
    start, end = calendar_month(now)
    earlier, later = max(start, now - 20 * MINUTE), max(start, now - 10 * SECOND)
    on_time = [
        ("previous", start - MINUTE, 1, "insight_analysis"),  # in the period before
        ("a", earlier, 8, "insight_analysis"),  # 80 %
        ("f1", earlier, 4, "autopilot_job"),
        ("f2", later, 6, "autopilot_job"),  # reaches 100 %
        ("g", later, 1, "guardian_test_run"),  # 10 %: at risk early in a period
    ]
    arrive(settings, landing, "on-time", *(event(*occurred) for occurred in on_time))
    as_of, periods = build(settings, calendar_month)
    analyses = [
        (moment, quantity) for _, moment, quantity, kind in on_time if kind == "insight_analysis"
    ]
    expected = billed(analyses, periods_from(calendar_month, start - MINUTE, as_of))
    assert {begin: figures[:2] for begin, figures in periods.items()} == expected
    alerts = check_quota_status(settings, on_time, as_of)
    assert len(record_from_marts(settings)) == len(alerts)
    assert set(conn.execute("SELECT metric, threshold FROM quota_alerts").fetchall()) == alerts
    assert record_from_marts(settings) == []  # each alert once

    # a minute before the grace ends (past midnight, or a year's end): still open, and usage
    # arriving now counts in it
    clock_at(end + DEFAULT_GRACE - MINUTE)
    arrive(settings, landing, "in-grace", event("in-grace", end - SECOND))
    _, periods = build(settings, calendar_month)
    assert periods[start] == (end, 9, False)

    # the first build after the grace closes it, with what had arrived
    clock_at(end + DEFAULT_GRACE)
    _, periods = build(settings, calendar_month)
    assert periods[start] == (end, 9, True)

    # usage arriving after the close is booked into the period open at its arrival
    arrive(settings, landing, "late", event("late", end - 2 * SECOND, quantity=5))
    as_of, periods = build(settings, calendar_month)
    assert as_of >= end + DEFAULT_GRACE
    assert periods[start] == (end, 9, True)  # the closed period never changes
    assert periods[end] == (_month_after(end), 5, False)
    assert rows(
        settings,
        "SELECT period_start, metric, kind, quantity, events, from_period_start, batch "
        "FROM billing_adjustments WHERE org = ?",
        [ORG],
    ) == [(end, "analyses", "late", 5, 1, start, None)]
    # one number: quota_status counts what the open period will be billed for, late usage too
    assert rows(
        settings,
        "SELECT period_start, used FROM quota_status WHERE org = ? AND metric = 'analyses'",
        [ORG],
    ) == [(end, 5)]
    check_reconciled(settings, conn)


# --- a subscription anchored on the 31st --------------------------------------------------------


def test_a_subscription_anchored_on_the_31st_bills_from_each_month_s_last_day(
    calendar_now, settings, landing, conn
):
    anchor_subscription(conn, ORG, "2026-01-31T12:00:00Z", "2026-02-28T12:00:00Z")
    now = calendar_now.replace(microsecond=0)
    year = now.year if noon_on_the_last_day(now.year, 2) <= now else now.year - 1
    february = noon_on_the_last_day(year, 2)  # the latest February's period start
    usages = [(february - SECOND, 1), (february, 2), (now, 4)]
    arrive(
        settings,
        landing,
        "usage",
        *(event(f"u{index}", *occurred) for index, occurred in enumerate(usages)),
    )
    as_of, periods = build(settings, anchored_on_the_31st)

    expected = periods_from(anchored_on_the_31st, february - SECOND, as_of)
    assert {begin: figures[:2] for begin, figures in periods.items()} == billed(usages, expected)
    # the periods of February: from January 31st to February's last day, then to March 31st
    january, march = datetime(year, 1, 31, 12, tzinfo=UTC), datetime(year, 3, 31, 12, tzinfo=UTC)
    assert periods[january][:2] == (february, 1)
    assert periods[february][0] == march
    check_reconciled(settings, conn)
