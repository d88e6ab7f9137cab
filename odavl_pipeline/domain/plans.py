"""Plans and monthly billing periods, anchored on a subscription's period start."""

from calendar import monthrange
from datetime import datetime

# Metrics with a monthly quota (CONTRACT.md section 5); api_calls is counted but not limited.
QUOTA_METRICS = ("analyses", "fixes", "audits")

PLAN_LIMITS = {
    "FREE": {"analyses": 100, "fixes": 50, "audits": 20, "projects": 3},
    "PRO": {"analyses": 500, "fixes": 200, "audits": 100, "projects": 10},
    "ENTERPRISE": {"analyses": 5_000, "fixes": 2_000, "audits": 1_000, "projects": 50},
}


def quotas(tier: str, overrides: dict[str, int | None]) -> dict[str, int]:
    """The monthly quota per metric: the subscription's override, else the tier's limit."""
    limits = PLAN_LIMITS[tier]
    return {metric: limits[metric] if overrides.get(metric) is None else overrides[metric]
            for metric in QUOTA_METRICS}


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


def periods_covering(anchor: datetime, first: datetime, last: datetime) -> list[tuple[datetime, datetime]]:
    """Every monthly period from the one containing `first` to the one containing `last`."""
    return [(add_months(anchor, index), add_months(anchor, index + 1))
            for index in range(period_index(anchor, first), period_index(anchor, last) + 1)]
