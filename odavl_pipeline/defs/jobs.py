"""The jobs: the whole pipeline, ingestion alone, the marts alone, and Stripe."""

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
# A correction's commit or revert runs it, tagged with the batch (CORRECTION_TAG): the marts
# read the days it changed from `mart_changes`, like after any ingestion.
CORRECTION_TAG = "odavl/correction"
marts_job = dg.define_asset_job(
    "rebuild_marts",
    selection=dg.AssetSelection.groups("marts"),
    executor_def=dg.in_process_executor,
    description="Rebuild the marts from what changed in PostgreSQL since the last build "
    "(usage corrections run it, tagged `odavl/correction=<batch>`).",
)
stripe_job = dg.define_asset_job(
    "stripe",
    selection=dg.AssetSelection.groups("stripe"),
    description="Synchronize Stripe subscriptions, then report usage to Stripe: the increments of "
    "open periods, the true-up of periods closed since.",
)
