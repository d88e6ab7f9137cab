"""A sensor that requests the partitions of new or changed landing files."""

import dagster as dg

from odavl_pipeline.defs.marts.assets import mart_specs
from odavl_pipeline.defs.resources import OdavlResource
from odavl_pipeline.ingest.changes import changes_since


@dg.sensor(job_name="pipeline", minimum_interval_seconds=60,
           default_status=dg.DefaultSensorStatus.STOPPED,
           description="Watches the landing zone; requests each day and source with new files, "
                       "and the marts after them.")
def landing_zone_sensor(context: dg.SensorEvaluationContext, odavl: OdavlResource) -> dg.SensorResult:
    since = int(context.cursor or 0)
    changes = changes_since(odavl.settings().landing_dir, since)
    requests = [
        dg.RunRequest(run_key=f"{source}:{day}:{changes.newest_mtime_ns}", partition_key=day,
                      asset_selection=[dg.AssetKey([source]), *(spec.key for spec in mart_specs)])
        for source, days in sorted(changes.partitions.items()) for day in sorted(days)
    ]
    return dg.SensorResult(run_requests=requests, cursor=str(changes.newest_mtime_ns))
