"""The DuckDB marts, built together and published at once, downstream of the ingest assets.

They have no partitions of their own: each build reads the change marks the ingestion left in
Postgres (`mart_changes`) and rebuilds what they name, whichever days a run ingested.
"""

from typing import Any

import dagster as dg
from pydantic import Field

from odavl_pipeline.defs.execution import CELERY_QUEUE_TAG, MARTS_QUEUE
from odavl_pipeline.defs.marts.checks import evaluate_mart_checks, mart_check_specs
from odavl_pipeline.defs.monitoring.freshness import freshness_policy
from odavl_pipeline.defs.resources import (
    DatabaseResource,
    LandingZoneResource,
    MartsResource,
    settings_of,
)
from odavl_pipeline.domain.records import SOURCES
from odavl_pipeline.orchestration import CLOSES_HELD_BY, LATE_CARRIED

USAGE, ERRORS, FIXES, AUDITS = (dg.AssetKey([source]) for source in SOURCES)
LATE_SHOWN = 50  # lines of late usage a build's metadata (and so `run`) names at most

# each mart asset: the ingest assets it reads, and its description
MART_ASSETS = {
    "usage_daily": ([USAGE], "Usage per organization, UTC day and metric (quantity and events)."),
    "quota_status": (
        [USAGE],
        "Each organization's current billing period against its quota: used as the period "
        "is billed (adjustments included), with the forecast to the period's end.",
    ),
    "billing_periods": (
        [USAGE],
        "Every monthly billing period: used (adjustments included), quota, overage, closed.",
    ),
    "billing_adjustments": (
        [USAGE],
        "What was booked into a period from outside it: late usage (it arrived after its own "
        "period closed) and corrections of closed periods, counted in the period open at "
        "their arrival.",
    ),
    "organizations": ([], "Organizations with their tier and status (from the console's data)."),
    "projects": ([], "Projects of each organization (from the console's data)."),
    "memberships": ([], "Who is a member of which organization, with their role."),
    "error_trends": ([ERRORS], "Error events per project, UTC day, detector and severity."),
    "error_signature_days": (
        [ERRORS],
        "Each error signature per project and UTC day it occurred on, with its events.",
    ),
    "error_signatures": ([ERRORS], "Error signatures with count, first and last seen, status."),
    "fix_outcomes": (
        [FIXES],
        "Autopilot fixes per project, day, outcome and chain status (verified or pending), "
        "with size and risk.",
    ),
    "pending_attestations": (
        [FIXES],
        "Each pending attestation with the parent hash it waits for, and whether that parent "
        "has arrived.",
    ),
    "attestation_chains": (
        [FIXES],
        "Each project's attestation chain: verified length, head, pending and rejected links.",
    ),
    "audit_scores": ([AUDITS], "Guardian scores per project, day, URL and device."),
    "audit_issues": ([AUDITS], "Guardian issues per project, day, suite and severity."),
    "latest_audit_issues": (
        [AUDITS],
        "The issues of each project's latest audit, with recommendations.",
    ),
    "quarantine_summary": (
        [USAGE, ERRORS, FIXES, AUDITS],
        "Rejected records by source, reason and organization.",
    ),
    "landing_files": (
        [USAGE, ERRORS, FIXES, AUDITS],
        "Every landing file ingested: the provenance of each usage fact.",
    ),
}

mart_specs = [
    dg.AssetSpec(
        name,
        deps=deps,
        description=description,
        group_name="marts",
        kinds={"duckdb"},
        freshness_policy=freshness_policy(name),
    )
    for name, (deps, description) in MART_ASSETS.items()
]


class MartsConfig(dg.Config):
    full_rebuild: bool = Field(
        default=False,
        description="Rebuild every mart from all of history instead of the days "
        "that changed since the last build.",
    )
    check_everything: bool = Field(
        default=False,
        description="Compare every mart row with Postgres, not only what this build rebuilt "
        "(a full build and the daily run do).",
    )


# With the Celery executor the marts step goes to a queue of its own, for the workers beside the
# marts file (defs/execution.py); other executors ignore the tag.
@dg.multi_asset(
    name="marts",
    specs=mart_specs,
    check_specs=mart_check_specs,
    can_subset=False,
    op_tags={CELERY_QUEUE_TAG: MARTS_QUEUE},
)
def marts(
    context: dg.AssetExecutionContext,
    config: MartsConfig,
    database: DatabaseResource,
    marts: MartsResource,
    landing_zone: LandingZoneResource,
):
    """Brings every mart up to date with Postgres: the changed days, their billing periods, quota;
    then reconciles them with Postgres."""
    # imported here: pandas, Arrow and ADBC weigh half a second on every load of the code
    from odavl_pipeline.alerts import record_from_marts
    from odavl_pipeline.marts.build import refresh_marts

    settings = settings_of(database, marts, landing_zone)
    report = refresh_marts(
        settings, full=config.full_rebuild, grace=settings.billing_grace, progress=context.log.info
    )
    # quota alerts of the published quota_status, each recorded once (the sensor
    # `quota_alert_delivery` sends them)
    new_alerts = record_from_marts(settings)
    if new_alerts:
        context.log.info(f"{len(new_alerts)} new quota alert(s)")
    held = [str(held) for held in report.held_files] if report.closes_waiting else []
    if held:
        context.log.warning(
            f"{report.closes_waiting} billing period(s) past their end wait to close until these "
            f"usage file(s) are ingested as they are: {', '.join(held)}"
        )
    late = [str(carried) for carried in report.late_carried[:LATE_SHOWN]]
    if len(report.late_carried) > LATE_SHOWN:
        late.append(f"and {len(report.late_carried) - LATE_SHOWN:,} more")
    shared: dict[str, Any] = {  # Dagster's metadata values
        "build_id": report.build_id,
        "full_build": report.full,
        "as_of": report.as_of.isoformat(),
        "usage_events_read": report.usage_events_read,
        "billing_periods_recomputed": report.periods_recomputed,
        "closes_waiting": report.closes_waiting,
        CLOSES_HELD_BY: dg.JsonMetadataValue(held),
        LATE_CARRIED: dg.JsonMetadataValue(late),
        "days_recomputed": dg.JsonMetadataValue(report.days),
        "seconds": dg.FloatMetadataValue(round(report.seconds, 2)),
        "path": dg.MetadataValue.path(str(settings.marts_path)),
    }
    for spec in mart_specs:
        name = spec.key.path[-1]
        extra = {"quota_alerts_recorded": len(new_alerts)} if name == "quota_status" else {}
        yield dg.MaterializeResult(
            asset_key=spec.key, metadata={**shared, **extra, "dagster/row_count": report.rows[name]}
        )
    yield from evaluate_mart_checks(settings, None if config.check_everything else report.rebuilt)
