"""The jobs that ingest: the whole pipeline, and ingestion alone."""

import dagster as dg

from odavl_pipeline.defs.execution import step_execution, step_executor

# Runs that ingest carry this tag; the run queue lets two of them run at a time (dagster.yaml).
INGEST_TAGS = {"odavl/ingest": "true"}

pipeline_job = dg.define_asset_job(
    "pipeline",
    selection=dg.AssetSelection.groups("ingestion", "marts"),
    tags=INGEST_TAGS,
    executor_def=step_executor(),
    config=step_execution(),
    description="Ingest the landing zone for a range of landed days, then rebuild the marts.",
)
ingest_job = dg.define_asset_job(
    "ingest",
    selection=dg.AssetSelection.groups("ingestion"),
    tags=INGEST_TAGS,
    executor_def=step_executor(),
    config=step_execution(),
    description="Ingest the landing zone into PostgreSQL for a range of landed days.",
)
