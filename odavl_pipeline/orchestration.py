"""Runs through the Dagster instance (Postgres storage), as the CLI and the UI share it."""

import os
from datetime import date

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from odavl_pipeline.db.server import dagster_url
from odavl_pipeline.settings import Settings

INSTANCE_YAML = """\
# Written by odavl-pipeline: run, event-log and schedule storage in PostgreSQL.
# The URL comes from the environment (set by odavl-pipeline), never from this file.
storage:
  postgres:
    postgres_url:
      env: ODAVL_DAGSTER_URL
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
concurrency:
  runs:
    max_concurrent_runs: 4
    tag_concurrency_limits:
      # the pipeline and ingest jobs: one ingesting run at a time (ranges included)
      - key: odavl/ingest
        limit: 1
      # any run of one partition, also one started from the asset graph
      - key: dagster/partition
        value:
          applyLimitPerUniqueValue: true
        limit: 1
retention:
  schedule:
    purge_after_days: 90
  sensor:
    purge_after_days:
      skipped: 7
      failure: 30
      success: -1
freshness:
  enabled: true
telemetry:
  enabled: false
"""
INSTANCE_YAML_HEADER = INSTANCE_YAML.splitlines()[0]
# A range run records one materialization per asset and day of its range, each a write of its
# own unless batched: batched, a range of a hundred days runs in half the time.
EVENT_BATCH_SIZE = "1000"


def prepare_instance_environment(settings: Settings) -> dict[str, str]:
    """Create $DAGSTER_HOME with its dagster.yaml; return the variables a Dagster process needs."""
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    # ours is kept up to date; one written by an operator (other first line) is left alone
    current = config.read_text() if config.exists() else None
    if current is None or (current.startswith(INSTANCE_YAML_HEADER) and current != INSTANCE_YAML):
        staged = home / f".dagster.yaml.{os.getpid()}"
        staged.write_text(INSTANCE_YAML)
        os.replace(staged, config)  # another process reading it sees the old file or the new one
    # dagster-postgres speaks psycopg2; SQLAlchemy 2.1 would default to psycopg 3.
    url = dagster_url(settings).set(drivername="postgresql+psycopg2")
    batch_size = os.environ.get("DAGSTER_EVENT_BATCH_SIZE", EVENT_BATCH_SIZE)
    return {"DAGSTER_HOME": str(home),
            "ODAVL_DAGSTER_URL": url.render_as_string(hide_password=False),
            "DAGSTER_EVENT_BATCH_SIZE": batch_size}


def instance(settings: Settings) -> dg.DagsterInstance:
    os.environ.update(prepare_instance_environment(settings))
    return dg.DagsterInstance.get()


def materialize_range(settings: Settings, first: date, last: date, log_level: str = "INFO",
                      full_marts: bool = False) -> dg.ExecuteInProcessResult:
    """One run of the pipeline job (ingestion, then the marts) over [first, last], recorded in
    the instance like any other."""
    from odavl_pipeline.definitions import defs

    job = defs.resolve_job_def("pipeline")
    tags = {ASSET_PARTITION_RANGE_START_TAG: first.isoformat(),
            ASSET_PARTITION_RANGE_END_TAG: last.isoformat()}
    run_config = {"loggers": {"console": {"config": {"log_level": log_level}}},
                  "ops": {"marts": {"config": {"full_rebuild": full_marts}}}}
    return job.execute_in_process(run_config=run_config, instance=instance(settings), tags=tags,
                                  raise_on_error=False)
