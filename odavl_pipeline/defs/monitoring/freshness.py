"""Freshness expectations: the billing marts are rebuilt at least daily.

The schedule `daily_billing` runs at 00:15 UTC; the marts must have been rebuilt in the 24 hours
before 02:00 UTC each day, so a missed or failed daily run turns them stale in the UI at 02:00
(the freshness daemon, part of `dagster-daemon`, evaluates the policies).
"""

import dagster as dg

from odavl_pipeline.marts.freshness import BILLING_MARTS, DEADLINE_CRON, WINDOW

DAILY_BY_2AM_UTC = dg.FreshnessPolicy.cron(
    deadline_cron=DEADLINE_CRON, lower_bound_delta=WINDOW, timezone="UTC"
)


def freshness_policy(mart: str) -> dg.FreshnessPolicy | None:
    """The freshness policy of a mart (None for the marts without an expectation)."""
    return DAILY_BY_2AM_UTC if mart in BILLING_MARTS else None
