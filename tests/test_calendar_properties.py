"""Properties of the calendar (Hypothesis), over every instant the marts hold (1970 to 9999),
anchors on any day (the 28th to the 31st drawn often) at any time of day, and grace periods:
periods tile time, every usage instant is in exactly one period, a period closes at the first
build after its end plus the grace at which no usage file that may hold its usage waits, and
never before, a FREE organization's periods are calendar
months, and the forecast never overflows or goes negative. Pure functions, and the closing
rule's SQL run in DuckDB on tiny tables: no database, no clock.

Each property runs 300 examples (the closing rule 150); for a longer run set
ODAVL_FUZZ_EXAMPLES, e.g. `ODAVL_FUZZ_EXAMPLES=5000 .venv/bin/python -m pytest
tests/test_calendar_properties.py -q`.
"""

import os
from calendar import monthrange
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from odavl_pipeline.billing.catalogue import PLAN_LIMITS
from odavl_pipeline.billing.plans import (
    ALWAYS_BEFORE,
    PlanVersion,
    add_months,
    period_containing,
    periods_covering,
    quotas,
    rated_periods,
)
from odavl_pipeline.billing.quota import MAX_PROJECTED, forecast, quota_state
from odavl_pipeline.marts.bounds import EARLIEST, LATEST
from odavl_pipeline.marts.build import CLOSE_DUE_PERIODS, DUE_PERIODS, PAST_PERIODS

MICROSECOND = timedelta(microseconds=1)
BIGINT = st.one_of(st.integers(0, MAX_PROJECTED), st.sampled_from([0, 1, 2**62, MAX_PROJECTED]))
YEARS = st.integers(EARLIEST.year, LATEST.year - 1)
MONTHS = st.integers(1, 12)


def on_day(year: int, month: int, day: int, moment: time) -> datetime:
    """`day` of the month at `moment` (UTC), clamped to the month's last day."""
    last = monthrange(year, month)[1]
    return datetime.combine(date(year, month, min(day, last)), moment, UTC)


def shifted(moment: datetime, delta: timedelta) -> datetime:
    """`moment` moved by `delta`, but no further than the marts' bounds."""
    return moment + min(max(delta, EARLIEST - moment), LATEST - MICROSECOND - moment)


# the ends of months at any time of day: where periods anchored there are clamped
MONTH_ENDS = st.builds(on_day, YEARS, MONTHS, st.integers(28, 31), st.times())
ANY_INSTANT = st.datetimes(
    min_value=EARLIEST.replace(tzinfo=None),
    max_value=(LATEST - MICROSECOND).replace(tzinfo=None),
    timezones=st.just(UTC),
)
# a month's first instant, and a microsecond or a second either side
MONTH_EDGES = st.builds(
    lambda year, month, delta: shifted(datetime(year, month, 1, tzinfo=UTC), delta),
    YEARS,
    MONTHS,
    st.sampled_from([-timedelta(seconds=1), -MICROSECOND, timedelta(0), MICROSECOND]),
)
INSTANTS = st.one_of(ANY_INSTANT, MONTH_ENDS, MONTH_EDGES)
ANCHORS = st.one_of(MONTH_ENDS, ANY_INSTANT)
SPANS = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3 * 366))
GRACES = st.one_of(
    st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=7)),
    st.sampled_from([timedelta(0), MICROSECOND, timedelta(hours=1), timedelta(days=1)]),
)
FREE = quotas("FREE", {})

EXAMPLES = int(os.environ.get("ODAVL_FUZZ_EXAMPLES", "300"))
PROPERTY = settings(max_examples=EXAMPLES, deadline=None, database=None)


def is_calendar_month(start: datetime, end: datetime) -> bool:
    first = datetime(start.year, start.month, 1, tzinfo=UTC)
    return start == first and end == add_months(first, 1)


def assert_tiled(periods: list[tuple[datetime, datetime]], first: datetime, last: datetime):
    """From the period holding `first` to the one holding `last`, each begins where the one
    before ends: no gap, no overlap."""
    assert periods[0][0] <= first < periods[0][1]
    assert periods[-1][0] <= last < periods[-1][1]
    assert all(start < end for start, end in periods)
    assert all(end == following for (_, end), (following, _) in pairwise(periods))


# --- periods anchored on a subscription's start ----------------------------------------------


@PROPERTY
@given(anchor=ANCHORS, first=INSTANTS, span=SPANS)
def test_anchored_periods_tile_time_each_a_month_on_the_anchors_day_and_time(anchor, first, span):
    last = shifted(first, span)
    periods = periods_covering(anchor, first, last)
    assert_tiled(periods, first, last)
    for (start, _), (following, _) in pairwise(periods):
        assert (following.year * 12 + following.month) - (start.year * 12 + start.month) == 1
    for start, end in periods:
        assert timedelta(days=28) <= end - start <= timedelta(days=31)
        assert start.day == min(anchor.day, monthrange(start.year, start.month)[1])
        assert (start.time(), start.utcoffset()) == (anchor.time(), timedelta(0))
        assert (start, end) == period_containing(anchor, start)


@st.composite
def plan_histories(draw, around: datetime) -> list[PlanVersion]:
    """FREE (or a subscription) since always, then up to four changes within two years of
    `around`: subscriptions anchored anywhere (month ends often), cancellations to FREE."""
    tiers = st.sampled_from(sorted(PLAN_LIMITS))
    first_anchor = draw(st.none() | ANCHORS)
    first_tier = "FREE" if first_anchor is None else draw(tiers)
    history = [PlanVersion(ALWAYS_BEFORE, first_tier, first_anchor, quotas(first_tier, {}))]
    changes = draw(
        st.lists(
            st.tuples(
                st.timedeltas(min_value=-timedelta(days=730), max_value=timedelta(days=730)),
                st.none() | ANCHORS,
                tiers,
            ),
            max_size=4,
        )
    )
    for offset, anchor, tier in sorted(changes, key=lambda change: change[0]):
        tier = "FREE" if anchor is None else tier
        history.append(PlanVersion(shifted(around, offset), tier, anchor, quotas(tier, {})))
    return history


@PROPERTY
@given(data=st.data(), around=INSTANTS)
def test_every_usage_instant_falls_in_exactly_one_rated_period(data, around):
    history = data.draw(plan_histories(around), label="history")
    usage = data.draw(
        st.lists(
            st.timedeltas(min_value=-timedelta(days=800), max_value=timedelta(days=800)).map(
                lambda offset: shifted(around, offset)
            ),
            min_size=1,
            max_size=20,
        ),
        label="usage",
    )
    periods = rated_periods(history, min(usage), max(usage))
    assert_tiled([(p.start, p.end) for p in periods], min(usage), max(usage))
    for moment in usage:
        assert len([p for p in periods if p.start <= moment < p.end]) == 1


# --- FREE's calendar months ------------------------------------------------------------------


@PROPERTY
@given(first=INSTANTS, span=SPANS)
def test_an_organization_without_a_subscription_is_billed_by_utc_calendar_months(first, span):
    last = shifted(first, span)
    periods = rated_periods([PlanVersion(ALWAYS_BEFORE, "FREE", None, FREE)], first, last)
    assert_tiled([(p.start, p.end) for p in periods], first, last)
    assert all(is_calendar_month(p.start, p.end) for p in periods)
    assert all((p.tier, p.quotas) == ("FREE", FREE) for p in periods)


@PROPERTY
@given(anchor=ANCHORS, canceled=INSTANTS, span=SPANS)
def test_after_a_cancellation_the_periods_are_utc_calendar_months(anchor, canceled, span):
    history = [
        PlanVersion(ALWAYS_BEFORE, "PRO", anchor, quotas("PRO", {})),
        PlanVersion(canceled, "FREE", None, FREE),
    ]
    last = shifted(canceled, span)
    periods = [p for p in rated_periods(history, canceled, last) if p.start >= canceled]
    assert periods[0].start == canceled  # the month it falls in is cut there
    assert periods[0].end == add_months(datetime(canceled.year, canceled.month, 1, tzinfo=UTC), 1)
    assert all(is_calendar_month(p.start, p.end) for p in periods[1:])
    assert all((p.tier, p.quotas) == ("FREE", FREE) for p in periods)


# --- closing: the marts' rule, run in DuckDB -------------------------------------------------


@pytest.fixture(scope="module")
def duck() -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB, on UTC as the builder's."""
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        yield con


def closed_at_by_builds(
    con: duckdb.DuckDBPyConnection,
    periods: list[tuple[datetime, datetime]],
    grace: timedelta,
    builds: list[datetime],
    held: list[tuple[date, int]],
) -> dict[datetime, datetime]:
    """Run the builder's closing statements (`PAST_PERIODS`, `DUE_PERIODS`,
    `CLOSE_DUE_PERIODS`) at each build instant in turn, on one organization's periods, with the
    usage files `held` (their day, and the first build at which they are ingested) holding
    closes: {period start: when it closed}."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE periods "
        "(org_id INTEGER, period_start TIMESTAMPTZ, period_end TIMESTAMPTZ)"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE closes (org_id INTEGER, period_start TIMESTAMPTZ, "
        "period_end TIMESTAMPTZ, closed_at TIMESTAMPTZ, tier VARCHAR)"
    )
    con.executemany("INSERT INTO periods VALUES (1, ?, ?)", periods)
    for number, as_of in enumerate(builds):
        con.execute("CREATE OR REPLACE TEMP TABLE held_days (day DATE)")
        waiting = [(day,) for day, ingested_at in held if ingested_at > number]
        if waiting:
            con.executemany("INSERT INTO held_days VALUES (?)", waiting)
        con.execute(PAST_PERIODS, {"grace_us": grace // MICROSECOND, "as_of": as_of})
        con.execute(DUE_PERIODS)
        con.execute(CLOSE_DUE_PERIODS, {"as_of": as_of})
    closes = con.execute("SELECT period_start, closed_at FROM closes").fetchall()
    assert len(closes) == len({start for start, _ in closes})  # each closed once
    return {start.astimezone(UTC): closed_at.astimezone(UTC) for start, closed_at in closes}


@settings(max_examples=EXAMPLES // 2, deadline=None, database=None)
@given(data=st.data(), anchor=ANCHORS, first=INSTANTS, grace=GRACES)
def test_a_period_closes_at_the_first_build_after_its_end_plus_the_grace_with_no_file_waiting(
    duck, data, anchor, first, grace
):
    first = min(first, LATEST - timedelta(days=200))  # the builds stay before 9999
    periods = periods_covering(anchor, first, first + timedelta(days=62))
    # builds around each period's end plus the grace (exactly at it, a microsecond either
    # side), and anywhere from before the first period to after the last one
    near_a_close = st.tuples(
        st.sampled_from(periods),
        st.sampled_from([-MICROSECOND, timedelta(0), MICROSECOND])
        | st.timedeltas(min_value=-timedelta(days=3), max_value=timedelta(days=3)),
    ).map(lambda drawn: drawn[0][1] + grace + drawn[1])
    anywhere = st.timedeltas(min_value=-timedelta(days=40), max_value=timedelta(days=120)).map(
        lambda offset: first + offset
    )
    builds = sorted(set(data.draw(st.lists(near_a_close | anywhere, max_size=12), label="builds")))
    # usage files landed for days around the periods, each ingested at some build (or never)
    held = data.draw(
        st.lists(
            st.tuples(
                st.timedeltas(min_value=-timedelta(days=5), max_value=timedelta(days=70)).map(
                    lambda offset: (first + offset).date()
                ),
                st.integers(0, len(builds)),
            ),
            max_size=3,
        ),
        label="held files (day, ingested at build)",
    )

    closed_at = closed_at_by_builds(duck, periods, grace, builds, held)

    for start, end in periods:
        # a file of day D may hold usage of every period that starts by the day after D
        may_hold = [at for day, at in held if day >= start.date() - timedelta(days=1)]
        due = [
            build
            for number, build in enumerate(builds)
            if build >= end + grace and all(at <= number for at in may_hold)
        ]
        assert closed_at.get(start) == (due[0] if due else None)


# --- the forecast ----------------------------------------------------------------------------


@PROPERTY
@given(
    used=BIGINT,
    quota=BIGINT,
    anchor=ANCHORS,
    as_of=INSTANTS,
    reached=st.none() | st.floats(0, 1),
    booked_share=st.sampled_from([0.0, 1.0]) | st.floats(0, 1),
)
def test_the_forecast_never_overflows_or_goes_negative_at_any_instant_of_any_period(
    used, quota, anchor, as_of, reached, booked_share
):
    start, end = period_containing(anchor, as_of)
    reached_at = None if reached is None else start + (as_of - start) * reached
    booked = min(used, int(used * booked_share))  # what adjustments booked of the use
    result = forecast(used, quota, start, end, as_of, reached_at, booked)

    assert used <= result.projected <= MAX_PROJECTED  # what a BIGINT holds, never below the use
    assert result.pct_used is None if quota == 0 else result.pct_used >= 0
    if result.projected_exhaustion is not None:
        assert start.date() <= result.projected_exhaustion <= end.date()
    assert quota_state(result.status, result.projected_exhaustion, end) in {
        "ok",
        "warning",
        "exceeded",
        "at risk",
    }
