"""Reconciliation checks, run by the marts step right after the build: the billing marts
recomputed in Postgres must agree to the unit, and every row the marts leave out is reported."""

from collections.abc import Callable

import dagster as dg
import duckdb
import psycopg

from odavl_pipeline.marts import reconcile
from odavl_pipeline.marts.bounds import EARLIEST, LATEST

# mart -> (description, comparison of the mart with Postgres)
RECONCILED: dict[str, tuple[str, Callable[..., reconcile.Reconciliation]]] = {
    "usage_daily": ("Usage per organization and metric equals the accepted usage events in "
                    "Postgres.", reconcile.usage_daily_totals),
    "billing_periods": ("Each period's used equals accepted usage in Postgres per organization, "
                        "period and metric, late usage carried as the rule says.",
                        reconcile.billing_periods_usage),
    "quota_status": ("Used in each current period equals the usage that occurred in it, in "
                     "Postgres.", reconcile.quota_status_usage),
}

# The mart that shows each table's rows, where the rows left out of it are reported.
LEFT_OUT_REPORTED_ON = {
    "usage_events": "usage_daily",
    "subscriptions": "billing_periods",
    "error_events": "error_trends",
    "error_signatures": "error_signatures",
    "fix_attestations": "fix_outcomes",
    "audit_results": "audit_scores",
}

mart_check_specs = [
    *(dg.AssetCheckSpec("matches_postgres", asset=mart, description=description)
      for mart, (description, _) in RECONCILED.items()),
    *(dg.AssetCheckSpec("rows_left_out", asset=mart,
                        description=f"No row of {table} is left out of the marts for a timestamp "
                                    f"they cannot hold: outside [{EARLIEST:%Y-%m-%d}, "
                                    f"{LATEST:%Y-%m-%d}) UTC, or infinite.")
      for table, mart in LEFT_OUT_REPORTED_ON.items()),
]


def evaluate_mart_checks(marts: duckdb.DuckDBPyConnection,
                         conn: psycopg.Connection) -> list[dg.AssetCheckResult]:
    """Every reconciliation and left-out check, on the marts just published."""
    results = []
    for mart, (_, compare) in RECONCILED.items():
        result = compare(marts, conn)
        results.append(dg.AssetCheckResult(
            asset_key=dg.AssetKey(mart), check_name="matches_postgres", passed=result.passed,
            description=f"{result.difference_count} of {result.compared} figures differ",
            metadata={"compared": result.compared, "differences": result.difference_count,
                      "first_differences": dg.JsonMetadataValue(result.differences)}))
    for table, mart in LEFT_OUT_REPORTED_ON.items():
        left_out = reconcile.rows_left_out(conn, table)
        results.append(dg.AssetCheckResult(
            asset_key=dg.AssetKey(mart), check_name="rows_left_out", passed=left_out.count == 0,
            description=f"{left_out.count} rows of {table} left out",
            metadata={"left_out": left_out.count,
                      "first_left_out": dg.JsonMetadataValue(left_out.first)}))
    return results
