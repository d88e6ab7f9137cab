"""Quota status and its linear forecast to the end of the billing period."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

WARNING_PCT = 80
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
) -> QuotaForecast:
    """The quota status at `as_of`; `reached_at` is when the usage reached the quota, if it did.

    The projection is linear in elapsed time: used × period length / elapsed, rounded half up,
    in whole microseconds, so that any usage and quota a BIGINT holds can be projected.
    """
    length_us = (period_end - period_start) // _MICROSECOND
    elapsed_us = min(max((as_of - period_start) // _MICROSECOND, 0), length_us)
    projected = used if elapsed_us == 0 else (2 * used * length_us + elapsed_us) // (2 * elapsed_us)
    if quota > 0 and used >= quota and reached_at is not None:
        exhaustion = reached_at.astimezone(UTC).date()
    elif (
        quota > 0 and 0 < used < quota and elapsed_us > 0 and quota * elapsed_us < used * length_us
    ):
        # reached at elapsed × quota / used, which is before the period's end
        moment = period_start + timedelta(microseconds=elapsed_us * quota // used)
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
