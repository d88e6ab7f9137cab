"""Reconciliation checks, run by the marts step right after the build: the billing marts
recomputed in Postgres must agree to the unit, and every row the marts leave out is reported."""

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import dagster as dg

from odavl_pipeline.db.server import connect
from odavl_pipeline.marts import reconcile
from odavl_pipeline.marts.bounds import EARLIEST, LATEST
from odavl_pipeline.marts.store import open_marts
from odavl_pipeline.settings import Settings

CHECKS_AT_ONCE = 4  # PostgreSQL and DuckDB run them side by side; Python mostly waits

# mart -> (description, comparison of the mart with Postgres)
RECONCILED: dict[str, tuple[str, Callable[..., reconcile.Reconciliation]]] = {
    "usage_daily": (
        "Usage per organization and metric equals the accepted usage events in Postgres "
        "(after an incremental build: per day, on the days it read again).",
        reconcile.usage_daily_totals,
    ),
    "billing_periods": (
        "Each period's used equals accepted usage in Postgres per organization, "
        "period and metric, late usage carried as the rule says (after an incremental "
        "build: the periods it recomputed).",
        reconcile.billing_periods_usage,
    ),
    "quota_status": (
        "Used in each current period equals its billing_periods row (one number per period), "
        "which the billing_periods check compares with Postgres.",
        reconcile.quota_status_usage,
    ),
}

# The checks that read Postgres's usage for the days and periods an incremental build rebuilt
# only (reconcile.Rebuilt); the others compare every row, all of them cheap.
READ_BY_TIME = {"usage_daily", "billing_periods"}

# A closed period is what it closed with: checked on billing_periods beside matches_postgres.
CLOSED_AS_RECORDED = (
    "closed_as_recorded",
    "Every closed period's row equals what Postgres recorded when it closed "
    "(billing_close_usage), and no recorded close is missing.",
    reconcile.closed_periods_as_recorded,
)

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
    *(
        dg.AssetCheckSpec("matches_postgres", asset=mart, description=description)
        for mart, (description, _) in RECONCILED.items()
    ),
    dg.AssetCheckSpec(
        CLOSED_AS_RECORDED[0], asset="billing_periods", description=CLOSED_AS_RECORDED[1]
    ),
    *(
        dg.AssetCheckSpec(
            "rows_left_out",
            asset=mart,
            description=f"No row of {table} is left out of the marts for a timestamp "
            f"they cannot hold: outside [{EARLIEST:%Y-%m-%d}, "
            f"{LATEST:%Y-%m-%d}) UTC, or infinite.",
        )
        for table, mart in LEFT_OUT_REPORTED_ON.items()
    ),
]


def evaluate_mart_checks(
    settings: Settings, rebuilt: reconcile.Rebuilt | None = None
) -> list[dg.AssetCheckResult]:
    """Every reconciliation and left-out check, on the marts just published: of what an
    incremental build `rebuilt`, or of everything. They run at once, each on connections of
    its own."""
    checks = [
        *(
            partial(
                _matches_postgres,
                settings,
                mart,
                partial(compare, rebuilt=rebuilt) if mart in READ_BY_TIME else compare,
            )
            for mart, (_, compare) in RECONCILED.items()
        ),
        partial(
            _matches_postgres,
            settings,
            "billing_periods",
            CLOSED_AS_RECORDED[2],
            CLOSED_AS_RECORDED[0],
        ),
        *(
            partial(_rows_left_out, settings, table, mart)
            for table, mart in LEFT_OUT_REPORTED_ON.items()
        ),
    ]
    with ThreadPoolExecutor(max_workers=CHECKS_AT_ONCE) as pool:
        return list(pool.map(lambda check: check(), checks))


def _matches_postgres(
    settings: Settings,
    mart: str,
    compare: Callable[..., reconcile.Reconciliation],
    check_name: str = "matches_postgres",
) -> dg.AssetCheckResult:
    with connect(settings) as conn, open_marts(settings.marts_path) as marts:
        result = compare(marts, conn)
    return dg.AssetCheckResult(
        asset_key=dg.AssetKey(mart),
        check_name=check_name,
        passed=result.passed,
        description=f"{result.difference_count} of {result.compared} figures differ",
        metadata={
            "compared": result.compared,
            "differences": result.difference_count,
            # as text: a closed period's figures hold its end, a datetime
            "first_differences": dg.JsonMetadataValue(
                json.loads(json.dumps(result.differences, default=str))
            ),
        },
    )


def _rows_left_out(settings: Settings, table: str, mart: str) -> dg.AssetCheckResult:
    with connect(settings) as conn:
        left_out = reconcile.rows_left_out(conn, table)
    return dg.AssetCheckResult(
        asset_key=dg.AssetKey(mart),
        check_name="rows_left_out",
        passed=left_out.count == 0,
        description=f"{left_out.count} rows of {table} left out",
        metadata={
            "left_out": left_out.count,
            "first_left_out": dg.JsonMetadataValue(left_out.first),
        },
    )
