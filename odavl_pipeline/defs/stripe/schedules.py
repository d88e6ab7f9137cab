"""Stripe, every hour: periods are reported soon after they close, before Stripe invoices them."""

import dagster as dg


@dg.schedule(cron_schedule="20 * * * *", job_name="stripe", execution_timezone="UTC",
             default_status=dg.DefaultScheduleStatus.RUNNING,
             description="Synchronizes Stripe subscriptions and reports the usage of the billing "
                         "periods closed since, every hour at :20 UTC.")
def hourly_stripe(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    return dg.RunRequest(run_key=context.scheduled_execution_time.isoformat())
