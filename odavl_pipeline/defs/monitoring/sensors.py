"""Run-failure alerts: every failed run is reported to the log, and to ODAVL_ALERT_WEBHOOK_URL
when it is set."""

import dagster as dg

from odavl_pipeline.defs.monitoring.run_failure_webhook import post_run_failure
from odavl_pipeline.defs.resources import AlertsResource
from odavl_pipeline.settings import secret_value

PARTITION_TAGS = (
    "dagster/partition",
    "dagster/asset_partition_range_start",
    "dagster/asset_partition_range_end",
)


class AlertNotDelivered(RuntimeError):
    """The webhook refused the alert or could not be reached (the tick shows it in the UI)."""


def failure_report(context: dg.RunFailureSensorContext) -> dict:
    """What is reported about a failed run: job, run id, partitions, failed steps, first error."""
    run = context.dagster_run
    steps = [
        {"step": event.step_key, "error": _root_cause(event.step_failure_data.error)}
        for event in context.get_step_failure_events()
        if event.step_failure_data
    ]
    reason = steps[0]["error"] if steps else (context.failure_event.message or "").strip()
    partitions = {tag: run.tags[tag] for tag in PARTITION_TAGS if tag in run.tags}
    where = (
        f" for {partitions['dagster/partition']}"
        if "dagster/partition" in partitions
        else f" for {partitions['dagster/asset_partition_range_start']} .. "
        f"{partitions['dagster/asset_partition_range_end']}"
        if "dagster/asset_partition_range_start" in partitions
        else ""
    )
    first_line = reason.splitlines()[0] if reason else "no error message"
    return {
        "text": f"ODAVL pipeline: run {run.run_id} of job {run.job_name}{where} failed: {first_line}",
        "run_id": run.run_id,
        "job": run.job_name,
        "status": run.status.value,
        "partitions": partitions,
        "failed_steps": steps,
    }


def _root_cause(error) -> str:
    """The innermost error of a step failure (Dagster wraps the asset's own exception)."""
    while error is not None and error.cause is not None:
        error = error.cause
    return error.message.strip() if error is not None else ""


@dg.run_failure_sensor(
    name="run_failure_alert",
    default_status=dg.DefaultSensorStatus.RUNNING,
    # all: the runs of `odavl-pipeline run` are executed from the code, not from a code location,
    # and a sensor watching its own code location alone never sees them
    monitor_all_code_locations=True,
    description="Reports every failed run of this code location to the log, and to "
    "ODAVL_ALERT_WEBHOOK_URL (JSON with a `text` field) when it is set.",
)
def run_failure_alert(context: dg.RunFailureSensorContext, alerts: AlertsResource) -> None:
    report = failure_report(context)
    context.log.error(report["text"])
    url = secret_value(alerts.settings().alert_webhook_url)
    if not url:
        return
    delivery = post_run_failure(url, report)
    if not delivery.delivered:
        context.log.error(f"the alert webhook did not take the alert: {delivery.detail}")
        raise AlertNotDelivered(
            f"alert for run {report['run_id']} not delivered: {delivery.detail}"
        )
    context.log.info(
        f"alert for run {report['run_id']} delivered to the webhook ({delivery.detail})"
    )
