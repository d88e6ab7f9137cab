"""Plan limits and monthly billing periods (CONTRACT.md section 5)."""

from calendar import monthrange
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class PlanLimits:
    analyses: int
    fixes: int
    audits: int
    projects: int


PLAN_LIMITS = {
    "FREE": PlanLimits(analyses=100, fixes=50, audits=20, projects=3),
    "PRO": PlanLimits(analyses=500, fixes=200, audits=100, projects=10),
    "ENTERPRISE": PlanLimits(analyses=5_000, fixes=2_000, audits=1_000, projects=50),
}


def add_months(anchor: datetime, months: int) -> datetime:
    """The same day and time `months` later, clamped to the month's last day."""
    month_index = anchor.month - 1 + months
    year, month = anchor.year + month_index // 12, month_index % 12 + 1
    return anchor.replace(year=year, month=month, day=min(anchor.day, monthrange(year, month)[1]))


def period_containing(anchor: datetime, moment: datetime) -> tuple[datetime, datetime]:
    """The monthly period [start, end) anchored on `anchor` that contains `moment`."""
    months = (moment.year - anchor.year) * 12 + (moment.month - anchor.month)
    start = add_months(anchor, months)
    if start > moment:
        months -= 1
    elif add_months(anchor, months + 1) <= moment:
        months += 1
    return add_months(anchor, months), add_months(anchor, months + 1)
