"""The daily billing aggregation: whatever has landed since the last run, then the marts, shortly
after midnight (UTC)."""

import dagster as dg

from odavl_pipeline.defs.ingest.partitions import day_ranges, range_tags
from odavl_pipeline.defs.jobs import pipeline_job
from odavl_pipeline.defs.resources import DatabaseResource, LandingZoneResource
from odavl_pipeline.ingest.pending import days_to_run

# the other builds compare what they rebuilt; this one finds a write that escaped them
CHECK_EVERYTHING = {"ops": {"marts": {"config": {"check_everything": True}}}}


@dg.schedule(
    cron_schedule="15 0 * * *",
    job=pipeline_job,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every day at 00:15 UTC: ingests the days with new landing files "
    "(yesterday's, and any late ones), rebuilds the marts and compares all of them with "
    "Postgres.",
)
def daily_billing(
    context: dg.ScheduleEvaluationContext,
    database: DatabaseResource,
    landing_zone: LandingZoneResource,
) -> list[dg.RunRequest] | dg.SkipReason:
    landing = landing_zone.settings().landing
    with database.connect() as conn:
        days = days_to_run(conn, landing)
    if not days:
        return dg.SkipReason(f"nothing has landed in {landing}")
    # a schedule cannot ask the daemon to add partitions (a sensor can): it registers them itself
    tick = context.scheduled_execution_time.date().isoformat()
    return [
        dg.RunRequest(
            run_key=f"{tick}:{key_range.start}..{key_range.end}",
            tags=range_tags(key_range),
            run_config=CHECK_EVERYTHING,
        )
        for key_range in day_ranges(context.instance, days)
    ]
