"""The daily billing aggregation: whatever has landed since the last run, then the marts, shortly
after midnight (UTC)."""

import dagster as dg

from odavl_pipeline.defs.ingest.partitions import day_ranges, range_tags
from odavl_pipeline.defs.resources import OdavlResource
from odavl_pipeline.ingest.pending import days_to_run

# the other builds compare what they rebuilt; this one finds a write that escaped them
CHECK_EVERYTHING = {"ops": {"marts": {"config": {"check_everything": True}}}}


@dg.schedule(
    cron_schedule="15 0 * * *",
    job_name="pipeline",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every day at 00:15 UTC: ingests the days with new landing files "
    "(yesterday's, and any late ones), rebuilds the marts and compares all of them with "
    "Postgres.",
)
def daily_billing(
    context: dg.ScheduleEvaluationContext, odavl: OdavlResource
) -> list[dg.RunRequest] | dg.SkipReason:
    settings = odavl.settings()
    with odavl.connect() as conn:
        days = days_to_run(conn, settings.landing)
    if not days:
        return dg.SkipReason(f"nothing has landed in {settings.landing}")
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
