"""Stripe, every hour: usage goes out as the period runs (the increments since the last report)
and a closed period's true-up soon after its close, before Stripe finalizes the invoice."""

import dagster as dg

from odavl_pipeline.defs.jobs import stripe_job


@dg.schedule(
    cron_schedule="20 * * * *",
    job=stripe_job,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Synchronizes Stripe subscriptions and reports usage every hour at :20 "
    "UTC: each period's increment since the last report, and the true-up of "
    "the periods closed since.",
)
def hourly_stripe(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    return dg.RunRequest(run_key=context.scheduled_execution_time.isoformat())
