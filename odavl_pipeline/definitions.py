"""The Dagster code location: assembles each domain's definitions."""

import dagster as dg

from odavl_pipeline.defs.ingest.assets import ingest_assets, landing_specs
from odavl_pipeline.defs.ingest.checks import ingest_checks
from odavl_pipeline.defs.ingest.sensors import landing_zone_sensor
from odavl_pipeline.defs.resources import OdavlResource

ingest_job = dg.define_asset_job(
    "ingest", selection=dg.AssetSelection.groups("ingestion"),
    description="Ingest the landing zone into PostgreSQL for a day or a range of days.")

defs = dg.Definitions(
    assets=[*landing_specs, *ingest_assets],
    asset_checks=ingest_checks,
    jobs=[ingest_job],
    sensors=[landing_zone_sensor],
    resources={"odavl": OdavlResource()},
)
