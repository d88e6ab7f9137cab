"""Quota status and its linear forecast to the end of the billing period."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from odavl_pipeline.billing.catalogue import WARNING_PCT

_MICROSECOND = timedelta(microseconds=1)
# What the mart's BIGINT holds: a forecast made in a period's first microseconds is clamped there.
MAX_PROJECTED = 2**63 - 1


@dataclass(frozen=True)
class QuotaForecast:
    pct_used: float | None  # percent of the quota; None when the quota is 0
    status: str  # ok below 80 %, warning from 80 %, exceeded from 100 %
    projected: int  # used at the end of the period at the rate so far
    projected_exhaustion: date | None  # UTC day the quota is (or would be) reached


def quota_status(used: int, quota: int) -> str:
    """`ok`, `warning` or `exceeded`, compared in integers so 80 % and 100 % are exact."""
    if used >= quota:
        return "exceeded" if used > 0 or quota > 0 else "ok"
    return "warning" if used * 100 >= WARNING_PCT * quota else "ok"


def forecast(
    used: int,
    quota: int,
    period_start: datetime,
    period_end: datetime,
    as_of: datetime,
    reached_at: datetime | None = None,
    booked: int = 0,
) -> QuotaForecast:
    """The quota status at `as_of` of a period billed for `used`, of which `booked` was booked
    into it from outside (adjustments: late usage, corrections) and the rest occurred in it;
    `reached_at` is when `used` reached the quota, if it did.

    The projection is the booked part plus the period's own usage extrapolated linearly in
    elapsed time (own × period length / elapsed, rounded half up, in whole microseconds), so
    that any usage and quota a BIGINT holds can be projected.
    """
    own = used - booked
    length_us = (period_end - period_start) // _MICROSECOND
    elapsed_us = min(max((as_of - period_start) // _MICROSECOND, 0), length_us)
    rate_projected = (
        own if elapsed_us == 0 else (2 * own * length_us + elapsed_us) // (2 * elapsed_us)
    )
    projected = booked + rate_projected
    left = quota - booked  # what the period's own usage may still take
    if quota > 0 and used >= quota and reached_at is not None:
        exhaustion = reached_at.astimezone(UTC).date()
    elif (
        quota > 0
        and used < quota
        and own > 0
        and elapsed_us > 0
        and left * elapsed_us < own * length_us
    ):
        # the own usage reaches what is left at elapsed × left / own, before the period's end
        moment = period_start + timedelta(microseconds=elapsed_us * left // own)
        exhaustion = moment.astimezone(UTC).date()
    else:
        exhaustion = None
    return QuotaForecast(
        pct_used=100.0 * used / quota if quota > 0 else None,
        status=quota_status(used, quota),
        projected=min(projected, MAX_PROJECTED),
        projected_exhaustion=exhaustion,
    )


AT_RISK = "at risk"


def quota_state(status: str, projected_exhaustion: date | None, period_end: datetime) -> str:
    """The state a quota shows, the dashboards' and the alerts' alike: the mart's `status` (ok,
    warning, exceeded), except that an ok quota whose forecast reaches it (a UTC day) before the
    period ends is "at risk"."""
    if (
        status == "ok"
        and projected_exhaustion is not None
        and datetime.combine(projected_exhaustion, time(), UTC) < period_end
    ):
        return AT_RISK
    return status
