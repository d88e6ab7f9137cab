"""Quota alerts: the sensor that delivers the alerts the marts build recorded."""

import dagster as dg

from odavl_pipeline.defs.resources import AlertsResource, DatabaseResource
from odavl_pipeline.settings import secret_value

NOT_SENT = "quota alerts are recorded (and listed on the dashboards' overview) but not sent"
# Dagster gives a sensor's evaluation 60 s (its gRPC call's timeout): the deliveries of one tick
# fit in 40, the rest go at the next tick
TICK_SECONDS = 40


@dg.sensor(
    name="quota_alert_delivery",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Delivers recorded quota alerts (each organization's thresholds; 80 %, 100 %, "
    "forecast by default) as signed JSON to ODAVL_ALERT_WEBHOOK_URL and the organizations' "
    "own endpoints, retrying with backoff, for at most 40 s a tick; every attempt is a row of "
    "quota_alert_attempts.",
)
def quota_alert_delivery(
    context: dg.SensorEvaluationContext, database: DatabaseResource, alerts: AlertsResource
) -> dg.SkipReason:
    from odavl_pipeline.alerts import deliver_due, enqueue

    settings = alerts.settings()
    url, secret = (
        secret_value(settings.alert_webhook_url),
        secret_value(settings.alert_webhook_secret),
    )
    if not secret:
        return dg.SkipReason(f"ODAVL_ALERT_WEBHOOK_SECRET is not set: {NOT_SENT}")
    with database.connect() as conn:
        enqueue(conn, default_url=bool(url))
        report = deliver_due(conn, url, secret, seconds=TICK_SECONDS)
    for error in report.errors:
        context.log.warning(f"quota alert not delivered: {error}")
    if not url:
        return dg.SkipReason(
            f"{report.summary()}; ODAVL_ALERT_WEBHOOK_URL is not set: {NOT_SENT} "
            f"(except to organizations' own endpoints)"
        )
    return dg.SkipReason(report.summary())
