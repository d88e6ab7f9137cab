"""The freshness rule of the contract's marts, in one place: Dagster's freshness policy
(defs/monitoring/freshness.py) and `doctor` both apply it.

The daily build (schedule `daily_billing`, 00:15 UTC) must have rebuilt them in the 24 hours
before 02:00 UTC each day; from 02:00 on, a missed or failed daily run makes them stale.
"""

from datetime import UTC, datetime, timedelta

BILLING_MARTS = ("usage_daily", "quota_status", "billing_periods")  # the contract's marts
DEADLINE_HOUR_UTC = 2
WINDOW = timedelta(hours=24)
DEADLINE_CRON = f"0 {DEADLINE_HOUR_UTC} * * *"


def is_stale(built_at: datetime, now: datetime) -> bool:
    """Whether marts built at `built_at` were not rebuilt in the window before the latest
    deadline at `now`."""
    deadline = now.astimezone(UTC).replace(
        hour=DEADLINE_HOUR_UTC, minute=0, second=0, microsecond=0
    )
    if deadline > now:
        deadline -= timedelta(days=1)
    return built_at < deadline - WINDOW
