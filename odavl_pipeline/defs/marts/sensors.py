"""The sensor that takes records sent to the HTTP API into the marts within minutes: they reach
no landing folder, so neither the landing-zone sensor nor the daily schedule sees them."""

import dagster as dg

from odavl_pipeline.defs.jobs import marts_job
from odavl_pipeline.defs.resources import DatabaseResource, MartsResource
from odavl_pipeline.ingest.api_backlog import api_backlog, build_skip_reason, marts_cut

SENSOR_NAME = "api_records_to_marts"
EVALUATION_SECONDS = 60  # a request waits about this long at most before its build is requested
SENSOR_NAME_TAG = "dagster/sensor_name"  # the daemon tags each run a sensor requested with it
NOT_FINISHED = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


@dg.sensor(
    name=SENSOR_NAME,
    job=marts_job,
    minimum_interval_seconds=EVALUATION_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Every minute: when records sent to the HTTP API are not in the published marts "
    "(received at or after their cut), requests one run of rebuild_marts; skips when there are "
    "none, when a build was requested for the same ones, or while that build is queued or "
    "running.",
)
def api_records_to_marts(
    context: dg.SensorEvaluationContext, database: DatabaseResource, marts: MartsResource
) -> dg.SensorResult | dg.SkipReason:
    cut = marts_cut(marts.settings().marts_path)
    with database.connect() as conn:
        backlog = api_backlog(conn, cut)
    building = (
        context.instance.get_runs(
            dg.RunsFilter(
                job_name=marts_job.name,
                statuses=NOT_FINISHED,
                tags={SENSOR_NAME_TAG: SENSOR_NAME},
            ),
            limit=1,
        )
        if backlog.requests
        else []
    )
    reason = build_skip_reason(backlog, context.cursor, building[0].run_id if building else None)
    if reason:
        return dg.SkipReason(reason)
    context.log.info(
        f"{backlog.requests:,} API request(s) ({backlog.records:,} record(s)) not in the marts: "
        "requesting a build"
    )
    # the same requests after the same cut, the same run key: the daemon launches one run
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=f"api-records:{backlog.key}")], cursor=backlog.key
    )
