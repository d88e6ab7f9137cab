"""The Dagster code location: assembles each domain's definitions.

Loaded lazily (`@dg.definitions`): Dagster calls `defs()` when it loads the module, and the
resources are configured from the environment of the process that calls it.
"""

import dagster as dg

from odavl_pipeline.defs.ingest.assets import ingest_assets, landing_specs
from odavl_pipeline.defs.ingest.sensors import landing_zone_sensor
from odavl_pipeline.defs.jobs import ingest_job, marts_job, pipeline_job, stripe_job
from odavl_pipeline.defs.marts.assets import marts
from odavl_pipeline.defs.marts.schedules import daily_billing
from odavl_pipeline.defs.marts.sensors import api_records_to_marts
from odavl_pipeline.defs.monitoring.quota_alerts import quota_alert_delivery
from odavl_pipeline.defs.monitoring.sensors import run_failure_alert
from odavl_pipeline.defs.resources import pipeline_resources
from odavl_pipeline.defs.stripe.assets import stripe_assets
from odavl_pipeline.defs.stripe.checks import stripe_checks
from odavl_pipeline.defs.stripe.schedules import hourly_stripe


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        assets=[*landing_specs, *ingest_assets, marts, *stripe_assets],
        asset_checks=stripe_checks,
        jobs=[pipeline_job, ingest_job, marts_job, stripe_job],
        schedules=[daily_billing, hourly_stripe],
        sensors=[
            landing_zone_sensor,
            api_records_to_marts,
            run_failure_alert,
            quota_alert_delivery,
        ],
        resources=pipeline_resources(),
    )
