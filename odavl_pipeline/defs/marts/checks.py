"""Reconciliation checks: the billing marts recomputed in Postgres must agree to the unit."""

from collections.abc import Callable

import dagster as dg

from odavl_pipeline.defs.resources import OdavlResource
from odavl_pipeline.marts import reconcile
from odavl_pipeline.marts.store import open_marts


def _check(mart: str, name: str, description: str,
           compare: Callable[..., reconcile.Reconciliation]) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=dg.AssetKey(mart), name=name, description=description, blocking=False)
    def check(odavl: OdavlResource) -> dg.AssetCheckResult:
        settings = odavl.settings()
        with odavl.connect() as conn, open_marts(settings.marts_path) as marts:
            result = compare(marts, conn)
        return dg.AssetCheckResult(
            passed=result.passed,
            description=f"{result.difference_count} of {result.compared} figures differ",
            metadata={"compared": result.compared, "differences": result.difference_count,
                      "first_differences": dg.JsonMetadataValue(result.differences)})

    return check


mart_checks = [
    _check("usage_daily", "matches_postgres", "Usage per organization and metric equals the "
           "accepted usage events in Postgres.", reconcile.usage_daily_totals),
    _check("billing_periods", "matches_postgres", "Each period's used equals accepted usage in "
           "Postgres per organization, period and metric, late usage carried as the rule says.",
           reconcile.billing_periods_usage),
    _check("quota_status", "matches_postgres", "Used in each current period equals the usage "
           "that occurred in it, in Postgres.", reconcile.quota_status_usage),
]
