"""A sensor that registers the days of new or changed landing files and requests their ingestion."""

import dagster as dg

from odavl_pipeline.defs.ingest.partitions import (
    LANDED_DAYS,
    contiguous_ranges,
    partition_requests,
    range_tags,
    registration,
)
from odavl_pipeline.defs.jobs import pipeline_job
from odavl_pipeline.defs.resources import LandingZoneResource
from odavl_pipeline.ingest.changes import changes_since


@dg.sensor(
    job=pipeline_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Watches the landing zone; registers each day with new files as a partition "
    "and requests one run of the pipeline per range of such days.",
)
def landing_zone_sensor(
    context: dg.SensorEvaluationContext, landing_zone: LandingZoneResource
) -> dg.SensorResult:
    changes = changes_since(landing_zone.settings().landing, context.cursor)
    days = set().union(*changes.partitions.values())
    change = registration(context.instance.get_dynamic_partitions(LANDED_DAYS), days)
    requests = [
        dg.RunRequest(
            run_key=f"{key_range.start}..{key_range.end}:{changes.digest}",
            tags=range_tags(key_range),
        )
        # the daemon makes the change before it launches the runs: the keys are then in this order
        for key_range in contiguous_ranges(change.keys, days)
    ]
    return dg.SensorResult(
        run_requests=requests,
        cursor=changes.cursor,
        dynamic_partitions_requests=partition_requests(change),
    )
