"""The Dagster code location: assembles each domain's definitions."""

import dagster as dg

from odavl_pipeline.defs.ingest.assets import ingest_assets, landing_specs
from odavl_pipeline.defs.ingest.sensors import landing_zone_sensor
from odavl_pipeline.defs.marts.assets import marts
from odavl_pipeline.defs.marts.schedules import daily_billing
from odavl_pipeline.defs.monitoring.quota_alerts import quota_alert_delivery
from odavl_pipeline.defs.monitoring.sensors import run_failure_alert
from odavl_pipeline.defs.resources import OdavlResource
from odavl_pipeline.defs.stripe.assets import stripe_assets, stripe_job
from odavl_pipeline.defs.stripe.checks import stripe_checks
from odavl_pipeline.defs.stripe.schedules import hourly_stripe
from odavl_pipeline.defs.execution import STEP_PROCESSES

# Runs that ingest carry this tag; the run queue lets one of them run at a time (dagster.yaml).
INGEST_TAGS = {"odavl/ingest": "true"}

pipeline_job = dg.define_asset_job(
    "pipeline",
    selection=dg.AssetSelection.groups("ingestion", "marts"),
    tags=INGEST_TAGS,
    executor_def=dg.multiprocess_executor,
    config=STEP_PROCESSES,
    description="Ingest the landing zone for a range of landed days, then rebuild the marts.",
)
ingest_job = dg.define_asset_job(
    "ingest",
    selection=dg.AssetSelection.groups("ingestion"),
    tags=INGEST_TAGS,
    executor_def=dg.multiprocess_executor,
    config=STEP_PROCESSES,
    description="Ingest the landing zone into PostgreSQL for a range of landed days.",
)

defs = dg.Definitions(
    assets=[*landing_specs, *ingest_assets, marts, *stripe_assets],
    asset_checks=stripe_checks,
    jobs=[pipeline_job, ingest_job, stripe_job],
    schedules=[daily_billing, hourly_stripe],
    sensors=[landing_zone_sensor, run_failure_alert, quota_alert_delivery],
    resources={"odavl": OdavlResource()},
)
