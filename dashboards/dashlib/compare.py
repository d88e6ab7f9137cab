"""Usage over time as the dashboards compare it: UTC days summed by grain (a day, an ISO week
from Monday, a calendar month), and billing periods side by side by day of period (day 1 of this
period beside day 1 of the last, whatever their dates and lengths). Plain pandas, no Streamlit
and no SQL: the periods come as the marts hold them (`odavl_pipeline/billing/plans.py` draws
them), never derived here.

A UTC day belongs to the period in which it begins, so consecutive periods share no day and
leave none out: with a period boundary at midnight UTC (calendar months, most anchors) the days
are exactly the period's; a boundary within a day (an anchor at 13:45) counts that whole day in
the period that starts there, since a day's usage is not split by hour in `usage_daily`.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pandas as pd

from odavl_pipeline.marts.trace import last_day

GRAINS = ("day", "week", "month")
GRAIN_NAMES = {"day": "Day", "week": "Week (ISO, from Monday)", "month": "Month"}


def _days(values) -> pd.Series:
    """`values` as naive midnight timestamps (UTC days), whatever form they came in."""
    stamps = pd.to_datetime(pd.Series(values))
    if stamps.dt.tz is not None:
        stamps = stamps.dt.tz_convert(UTC).dt.tz_localize(None)
    return stamps.dt.normalize().astype("datetime64[ns]")


def bucket_start(days, grain: str) -> pd.Series:
    """The first day of the `grain` bucket holding each of `days`: the day itself, the Monday
    of its ISO week, or the first of its month."""
    stamps = _days(days)
    if grain == "day":
        return stamps
    if grain == "week":
        return stamps - pd.to_timedelta(stamps.dt.day_of_week, unit="D")
    if grain == "month":
        return stamps.dt.to_period("M").dt.start_time.astype("datetime64[ns]")
    raise ValueError(f"unknown grain {grain!r}: one of {', '.join(GRAINS)}")


def bucket_end(starts: pd.Series, grain: str) -> pd.Series:
    """The last day of each bucket beginning on `starts`."""
    if grain == "day":
        return starts
    if grain == "week":
        return starts + pd.Timedelta(days=6)
    return (starts + pd.offsets.MonthEnd(0)).astype("datetime64[ns]")


def by_grain(
    usage: pd.DataFrame, grain: str, value: str = "quantity", series: str = "metric"
) -> pd.DataFrame:
    """`usage` (one row per UTC `day` and `series`) summed per `grain` bucket: `day` is the
    bucket's first day, `until` its last, `value` the sum of the days of `usage` in it."""
    if usage.empty:
        days = pd.Series(dtype="datetime64[ns]")
        return pd.DataFrame({"day": days, "until": days, series: [], value: []})
    summed = (
        usage.assign(day=bucket_start(usage["day"].to_numpy(), grain).to_numpy())
        .groupby(["day", series], as_index=False, sort=True)[value]
        .sum()
    )
    return summed.assign(until=bucket_end(summed["day"], grain))[["day", "until", series, value]]


@dataclass(frozen=True)
class Period:
    """A billing period [start, end) as the marts hold it (`billing_periods`, `quota_status`)."""

    start: datetime
    end: datetime

    @property
    def first_day(self) -> date:
        """The first UTC day that begins in the period."""
        start = pd.Timestamp(self.start)
        start = start.tz_convert(UTC) if start.tzinfo else start
        day = start.date()
        return day if start == pd.Timestamp(day, tz=start.tz) else day + timedelta(days=1)

    @property
    def last_day(self) -> date:
        """The last UTC day that begins in the period: the day of its last instant."""
        return last_day(pd.Timestamp(self.end).to_pydatetime())

    @property
    def length(self) -> int:
        """How many UTC days begin in the period."""
        return max((self.last_day - self.first_day).days + 1, 0)

    def days(self, through: date | None = None) -> pd.DatetimeIndex:
        """The UTC days of the period, up to `through` when given (an open period has no days
        after today yet)."""
        last = self.last_day if through is None else min(self.last_day, through)
        return pd.date_range(self.first_day, last, freq="D")


def align(
    usage: pd.DataFrame,
    periods: dict[str, tuple[Period, date | None]],
    metrics: Sequence[str],
    value: str = "quantity",
) -> pd.DataFrame:
    """Each period's use of each metric per day of period: `periods` maps a name to the period
    and the last day to show of it (None: all of it). One row per period, metric and day of the
    period up to that day, in order: `day_of_period` (1 for its first day), `day`, `value` (0
    on a day without use) and `cumulative` (the use from the period's first day to this one).
    `usage` holds one row per UTC `day` and `metric`; its days outside every period are left
    out."""
    if usage.empty:
        daily = pd.Series(dtype="int64")
    else:
        daily = (
            usage.assign(day=_days(usage["day"].to_numpy()).to_numpy())
            .groupby(["metric", "day"])[value]
            .sum()
        )
    frames = []
    for name, (period, through) in periods.items():
        days = period.days(through)
        grid = pd.MultiIndex.from_product([list(metrics), days], names=["metric", "day"])
        rows = daily.reindex(grid, fill_value=0).rename(value).reset_index()
        rows[value] = rows[value].astype("int64")
        rows.insert(0, "period", name)
        rows["day_of_period"] = (rows["day"] - pd.Timestamp(period.first_day)).dt.days + 1
        rows["cumulative"] = rows.groupby("metric")[value].cumsum()
        frames.append(rows)
    columns = ["period", "metric", "day_of_period", "day", value, "cumulative"]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]


def used(
    aligned: pd.DataFrame,
    period: str,
    metric: str,
    through_day: int | None = None,
    value: str = "quantity",
) -> int:
    """The use of `metric` in `period` of an `align` frame, over its days of period up to
    `through_day` (all it shows by default)."""
    rows = aligned[(aligned["period"] == period) & (aligned["metric"] == metric)]
    if through_day is not None:
        rows = rows[rows["day_of_period"] <= through_day]
    return int(rows[value].sum())
