"""Reconciliation checks: the billing marts recomputed in Postgres must agree to the unit, and
every row the marts leave out is reported."""

from collections.abc import Callable

import dagster as dg

from odavl_pipeline.defs.resources import OdavlResource
from odavl_pipeline.marts import reconcile
from odavl_pipeline.marts.bounds import EARLIEST, LATEST
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


def _left_out_check(mart: str, table: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=dg.AssetKey(mart), name="rows_left_out", blocking=False,
                    description=f"No row of {table} is left out of the marts for a timestamp "
                                f"they cannot hold: outside [{EARLIEST:%Y-%m-%d}, "
                                f"{LATEST:%Y-%m-%d}) UTC, or infinite.")
    def check(odavl: OdavlResource) -> dg.AssetCheckResult:
        with odavl.connect() as conn:
            left_out = reconcile.rows_left_out(conn, table)
        return dg.AssetCheckResult(
            passed=left_out.count == 0,
            description=f"{left_out.count} rows of {table} left out",
            metadata={"left_out": left_out.count,
                      "first_left_out": dg.JsonMetadataValue(left_out.first)})

    return check


# The mart that shows each table's rows, where the rows left out of it are reported.
LEFT_OUT_REPORTED_ON = {
    "usage_events": "usage_daily",
    "subscriptions": "billing_periods",
    "error_events": "error_trends",
    "error_signatures": "error_signatures",
    "fix_attestations": "fix_outcomes",
    "audit_results": "audit_scores",
}

mart_checks = [
    _check("usage_daily", "matches_postgres", "Usage per organization and metric equals the "
           "accepted usage events in Postgres.", reconcile.usage_daily_totals),
    _check("billing_periods", "matches_postgres", "Each period's used equals accepted usage in "
           "Postgres per organization, period and metric, late usage carried as the rule says.",
           reconcile.billing_periods_usage),
    _check("quota_status", "matches_postgres", "Used in each current period equals the usage "
           "that occurred in it, in Postgres.", reconcile.quota_status_usage),
    *(_left_out_check(mart, table) for table, mart in LEFT_OUT_REPORTED_ON.items()),
]
