"""Monthly billing periods, anchored on a subscription's period start."""

from calendar import monthrange
from datetime import datetime


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
