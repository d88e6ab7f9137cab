"""Reconciliation of what was reported to Stripe with the billing periods' usage."""

import dagster as dg

from odavl_pipeline.defs.resources import DatabaseResource, MartsResource
from odavl_pipeline.defs.stripe.assets import stripe_usage_reports
from odavl_pipeline.marts.store import MartsNotBuilt
from odavl_pipeline.stripe_billing.usage_reports import read_billing_periods, reconcile

SHOWN_VIOLATIONS = 20


@dg.asset_check(
    asset=stripe_usage_reports,
    name="reported_equals_closed_usage",
    blocking=False,
    description="The increments sent add up to each closed period's usage (and never "
    "exceed an open period's), per organization, metric and period, for "
    "organizations with a Stripe customer.",
)
def reported_equals_closed_usage(
    database: DatabaseResource, marts: MartsResource
) -> dg.AssetCheckResult:
    try:
        periods = read_billing_periods(marts.settings().marts_path)
    except MartsNotBuilt as error:
        return dg.AssetCheckResult(passed=False, description=str(error))
    with database.connect() as conn:
        result = reconcile(conn, periods)
    shown = result.violations[:SHOWN_VIOLATIONS]
    return dg.AssetCheckResult(
        passed=result.passed,
        description="\n".join(shown)
        or "every closed period is reported exactly as used, no open period beyond it",
        metadata={"checked": result.checked, "violations": len(result.violations)},
    )


stripe_checks = [reported_equals_closed_usage]
