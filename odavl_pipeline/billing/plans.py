"""Plans and monthly billing periods, anchored on a subscription's period start."""

from calendar import monthrange
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from odavl_pipeline.billing.catalogue import PLAN_LIMITS, QUOTA_METRICS


def quotas(tier: str, overrides: dict[str, int | None]) -> dict[str, int]:
    """The monthly quota per metric: the subscription's override, else the tier's limit."""
    limits = PLAN_LIMITS[tier]
    return {
        metric: limits[metric] if (override := overrides.get(metric)) is None else override
        for metric in QUOTA_METRICS
    }


def add_months(anchor: datetime, months: int) -> datetime:
    """The same day and time `months` later, clamped to the month's last day."""
    month_index = anchor.month - 1 + months
    year, month = anchor.year + month_index // 12, month_index % 12 + 1
    return anchor.replace(year=year, month=month, day=min(anchor.day, monthrange(year, month)[1]))


def period_index(anchor: datetime, moment: datetime) -> int:
    """Which monthly period after (or before, negative) the anchor's contains `moment`."""
    months = (moment.year - anchor.year) * 12 + (moment.month - anchor.month)
    if add_months(anchor, months) > moment:
        months -= 1
    elif add_months(anchor, months + 1) <= moment:
        months += 1
    return months


def period_containing(anchor: datetime, moment: datetime) -> tuple[datetime, datetime]:
    """The monthly period [start, end) anchored on `anchor` that contains `moment`."""
    index = period_index(anchor, moment)
    return add_months(anchor, index), add_months(anchor, index + 1)


def periods_covering(
    anchor: datetime, first: datetime, last: datetime
) -> list[tuple[datetime, datetime]]:
    """Every monthly period from the one containing `first` to the one containing `last`."""
    return [
        (add_months(anchor, index), add_months(anchor, index + 1))
        for index in range(period_index(anchor, first), period_index(anchor, last) + 1)
    ]


def uncovered(
    start: datetime, end: datetime, closed: list[tuple[datetime, datetime]]
) -> Iterator[tuple[datetime, datetime]]:
    """The parts of [start, end) that no closed period (sorted) covers: a closed period stays as
    it closed, even when the plan history now draws the periods differently."""
    for closed_start, closed_end in closed:
        if closed_end <= start or closed_start >= end:
            continue
        if closed_start > start:
            yield start, closed_start
        start = max(start, closed_end)
    if start < end:
        yield start, end


# --- plan history ---------------------------------------------------------------------------

CALENDAR_MONTHS = datetime(1970, 1, 1, tzinfo=UTC)  # the anchor of FREE's calendar-month periods
TIER_RANK = {"FREE": 0, "PRO": 1, "ENTERPRISE": 2}


@dataclass(frozen=True)
class PlanVersion:
    """An organization's plan from `effective_at` until its next version."""

    effective_at: datetime
    tier: str
    anchor: datetime | None  # None: calendar months, the periods of FREE without a subscription
    quotas: dict[str, int]


@dataclass(frozen=True)
class RatedPeriod:
    """A billing period and the plan it is rated with."""

    start: datetime
    end: datetime
    tier: str
    quotas: dict[str, int]


def rated_periods(
    versions: list[PlanVersion], first: datetime, last: datetime
) -> list[RatedPeriod]:
    """The billing periods from the one containing `first` to the one containing `last`, under
    `versions` (in order of effect; the first one applies since always).

    - Versions whose anchors share a monthly series (or that all have none) form one series of
      periods; a version on another series (a new anchor, a cancellation to FREE's calendar
      months, a first subscription) cuts the period it falls in and starts its own.
    - Within a series, a period's quota per metric is the largest of the versions in force
      during it, and its tier the highest: an upgrade applies at once, a downgrade from the
      next period. A trial is rated as its plan (its version carries the plan's tier).
    """
    periods = []
    for start, end, members in _series(versions):
        anchor = members[0][0].anchor or CALENDAR_MONTHS
        low, high = max(first, start), min(last, end - _MICROSECOND)
        if low > high:
            continue
        for period_start, period_end in periods_covering(anchor, low, high):
            period_start, period_end = max(period_start, start), min(period_end, end)
            in_force = [
                version
                for version, until in members
                if version_start(version, start) < period_end and until > period_start
            ]
            periods.append(
                RatedPeriod(
                    period_start,
                    period_end,
                    max((version.tier for version in in_force), key=TIER_RANK.__getitem__),
                    {
                        metric: max(version.quotas[metric] for version in in_force)
                        for metric in QUOTA_METRICS
                    },
                )
            )
    return periods


def version_start(version: PlanVersion, series_start: datetime) -> datetime:
    return max(version.effective_at, series_start)


def _series(versions: list[PlanVersion]) -> list[tuple[datetime, datetime, list]]:
    """[(start, end, [(version, in force until)…])…]: runs of versions on one monthly series,
    the first from always, the last until forever; versions in force for no time are left out."""
    lasting = [
        (version, following.effective_at if following else ALWAYS_AFTER)
        for version, following in zip(versions, [*versions[1:], None], strict=True)
    ]
    lasting = [
        (version, until)
        for index, (version, until) in enumerate(lasting)
        if index == 0 or until > version.effective_at
    ]
    runs: list[tuple[datetime, datetime, list]] = []
    for version, until in lasting:
        if runs and _same_series(runs[-1][2][0][0].anchor, version.anchor):
            start, _, members = runs[-1]
            runs[-1] = (start, until, [*members, (version, until)])
        else:
            start = ALWAYS_BEFORE if not runs else version.effective_at
            runs.append((start, until, [(version, until)]))
    return runs


def _same_series(anchor: datetime | None, other: datetime | None) -> bool:
    if anchor is None or other is None:
        return anchor is other
    return on_series(anchor, other)


def on_series(anchor: datetime, moment: datetime) -> bool:
    """Whether `moment` starts a period of `anchor`'s monthly series (as Stripe moves a
    subscription to its next period). The plan-history trigger's `odavl_on_series` (migration
    0006) is the same rule in SQL; tests/test_plan_series.py ties the two."""
    return add_months(anchor, period_index(anchor, moment)) == moment


ALWAYS_BEFORE = CALENDAR_MONTHS
ALWAYS_AFTER = datetime(9999, 12, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
