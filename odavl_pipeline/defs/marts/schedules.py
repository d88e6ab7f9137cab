"""The daily billing aggregation: yesterday's partition (UTC), shortly after midnight."""

from datetime import timedelta

import dagster as dg


@dg.schedule(cron_schedule="15 0 * * *", job_name="pipeline", execution_timezone="UTC",
             default_status=dg.DefaultScheduleStatus.RUNNING,
             description="Ingests yesterday's landing files and rebuilds the marts, every day "
                         "at 00:15 UTC.")
def daily_billing(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    day = (context.scheduled_execution_time - timedelta(days=1)).date().isoformat()
    return dg.RunRequest(run_key=day, partition_key=day)
