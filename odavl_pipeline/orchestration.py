"""Runs through the Dagster instance (Postgres storage), as the CLI and the UI share it.

Dagster is imported where it is used: `run` starts the step server before it loads Dagster.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import os
import threading
import time
import uuid
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Protocol, Self

from odavl_pipeline.db.server import dagster_url
from odavl_pipeline.defs.execution import CELERY, FORKSERVER, executor_name, step_execution
from odavl_pipeline.settings import Settings

if TYPE_CHECKING:
    import dagster as dg

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
      # the pipeline and ingest jobs: two ingesting runs at a time (ranges included); they may
      # overlap (docs/ingestion.md), the limit spares PostgreSQL
      - key: odavl/ingest
        limit: 2
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
python_logs:
  # Each step process logs its start at DEBUG to a console logger of its own, which the run's
  # console level does not reach: INFO keeps it off the terminal (the event is still recorded).
  # It is also the level of context.log: its DEBUG messages are dropped.
  python_log_level: INFO
"""
INSTANCE_YAML_HEADER = INSTANCE_YAML.splitlines()[0]
# A range run records one materialization per asset and day of its range, each a write of its
# own unless batched: batched, a range of a hundred days runs in half the time.
EVENT_BATCH_SIZE = "1000"
# And one "materialization planned" event per asset and day before it starts, unless it plans the
# range at once. (Then a failed run does not mark its partitions failed: the run shows it.)
PLANNED_EVENTS_AS_RANGES = "true"
# A run started here has a tag of its own, a token: `execute_job` tells the run's id only once it
# has run, and meanwhile the watcher finds the run by this tag.
CLI_RUN_TAG = "odavl/cli_run"
WATCH_SECONDS = 0.5  # how often the watcher reads the run's new events


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
    return {
        "DAGSTER_HOME": str(home),
        "ODAVL_DAGSTER_URL": url.render_as_string(hide_password=False),
        "DAGSTER_EVENT_BATCH_SIZE": os.environ.get("DAGSTER_EVENT_BATCH_SIZE", EVENT_BATCH_SIZE),
        "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": os.environ.get(
            "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", PLANNED_EVENTS_AS_RANGES
        ),
    }


def instance(settings: Settings) -> dg.DagsterInstance:
    import dagster as dg

    os.environ.update(prepare_instance_environment(settings))
    return dg.DagsterInstance.get()


def pipeline_job() -> dg.JobDefinition:
    """The pipeline job, as each step's process rebuilds it (`dg.reconstructable` wants a function
    of a module)."""
    from odavl_pipeline.definitions import defs

    return defs.resolve_job_def("pipeline")


@dataclass
class StepReport:
    """A step of a run as its events tell: what it materialized and checked, how it ended."""

    run_id: str
    step: str
    started: float  # Unix time
    seconds: float = 0.0
    succeeded: bool = False
    assets: set[str] = field(default_factory=set)
    failed_checks: list[str] = field(default_factory=list)  # "<asset> <check>"
    error: str = ""


@dataclass
class RunStatus:
    """A run under way: for how long, its steps running, the latest message of their log."""

    seconds: float
    running: list[str]
    latest: str


class RunListener(Protocol):
    """Hears of a run's steps as they end, and of its status every WATCH_SECONDS."""

    def step_ended(self, step: StepReport) -> None: ...

    def status(self, status: RunStatus) -> None: ...


def run_pipeline(
    settings: Settings,
    days: list[date],
    log_level: str = "INFO",
    full_marts: bool = False,
    listener: RunListener | None = None,
) -> list[dg.JobExecutionResult]:
    """Register `days` as partitions and run the pipeline job (the sources at once, then the marts)
    over them, recorded in the instance like any other run: one run per range of partitions, so
    one unless older days were registered after newer ones. `listener` hears of each step as it
    ends, and of the run's status meanwhile."""
    import dagster as dg

    from odavl_pipeline.defs.ingest.partitions import day_ranges, range_tags

    dagster_instance = instance(settings)
    run_config = {
        "loggers": {"console": {"config": {"log_level": log_level}}},
        "ops": {"marts": {"config": {"full_rebuild": full_marts}}},
        "execution": _execution(),
    }
    results = []
    for key_range in day_ranges(dagster_instance, days):
        token = uuid.uuid4().hex
        with RunWatcher(dagster_instance, token, listener) if listener else nullcontext():
            result = dg.execute_job(
                dg.reconstructable(pipeline_job),
                instance=dagster_instance,
                run_config=run_config,
                tags={**range_tags(key_range), CLI_RUN_TAG: token},
            )
        results.append(result)
        if not result.success:
            break
    return results


class RunWatcher(threading.Thread):
    """Reads the events of the run tagged with `token` while it runs, every WATCH_SECONDS, and
    tells `listener` of each step as it ends and of the run's status. A context manager: its exit
    reads the last events."""

    def __init__(self, dagster_instance: dg.DagsterInstance, token: str, listener: RunListener):
        super().__init__(name="run-watcher", daemon=True)
        self.instance = dagster_instance
        self.token = token
        self.listener = listener
        self.started = time.monotonic()
        self.stopping = threading.Event()
        self.run_id: str | None = None
        self.cursor: str | None = None
        self.running: dict[str, StepReport] = {}
        self.latest = ""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stopping.set()
        self.join()

    def run(self) -> None:
        while not self.stopping.wait(WATCH_SECONDS):
            self.read_events()
            self.listener.status(
                RunStatus(time.monotonic() - self.started, list(self.running), self.latest)
            )
        self.read_events()

    def read_events(self) -> None:
        import dagster as dg

        if self.run_id is None:
            runs = self.instance.get_runs(dg.RunsFilter(tags={CLI_RUN_TAG: self.token}), limit=1)
            if not runs:
                return
            self.run_id = runs[0].run_id
        connection = self.instance.get_records_for_run(self.run_id, cursor=self.cursor)
        self.cursor = connection.cursor
        for record in connection.records:
            self.read(record.event_log_entry)

    def read(self, entry: dg.EventLogEntry) -> None:
        """Follow the steps through one entry of the run's log."""
        event = entry.dagster_event
        if event is None:
            self.latest = entry.user_message
        elif event.is_step_start:
            self.running[event.step_key] = StepReport(self.run_id, event.step_key, entry.timestamp)
        elif event.step_key in self.running:
            self.read_step_event(self.running[event.step_key], event, entry.timestamp)

    def read_step_event(self, step: StepReport, event: dg.DagsterEvent, timestamp: float) -> None:
        import dagster as dg

        if event.is_step_materialization:
            step.assets.add(event.asset_key.to_user_string())
        elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.asset_check_evaluation_data
            if not evaluation.passed:
                step.failed_checks.append(
                    f"{evaluation.asset_key.to_user_string()} {evaluation.check_name}"
                )
        elif event.is_step_success or event.is_step_failure:
            del self.running[step.step]
            step.seconds = timestamp - step.started
            step.succeeded = event.is_step_success
            if event.is_step_failure and event.step_failure_data.error:
                step.error = _first_cause(event.step_failure_data.error).message.strip()
            self.listener.step_ended(step)


def _first_cause(error):
    """The error that caused it (a step failure's error info: Dagster wraps the error an op
    raised in its own)."""
    while error.cause:
        error = error.cause
    return error


_forkserver_environment: dict[str, str] | None = None


def start_step_server(settings: Settings) -> None:
    """Start the server the step processes fork from now, in the instance's environment, so that
    it loads the code while this process does the same (instead of after it)."""
    os.environ.update(prepare_instance_environment(settings))
    if _execution()["config"].get("start_method") == FORKSERVER:  # not with Celery's workers
        multiprocessing.set_forkserver_preload(FORKSERVER["forkserver"]["preload_modules"])
        multiprocessing.forkserver.ensure_running()


def _execution() -> dict:
    """The job's executor configuration. With Celery, that of defs/execution.py: the steps run in
    the workers, in their environment. Else the step processes: forked from a server with the code
    loaded, unless this process started that server in another environment (the steps would
    inherit it: tests run many); then spawned."""
    global _forkserver_environment
    if executor_name() == CELERY:
        return step_execution()["execution"]
    environment = {
        name: value
        for name, value in os.environ.items()
        if name.startswith(("ODAVL_", "DAGSTER_", "STRIPE_"))
    }
    if _forkserver_environment is None:
        _forkserver_environment = environment
    config = step_execution()["execution"]["config"]
    if environment != _forkserver_environment:
        config = {**config, "start_method": {"spawn": {}}}
    return {"config": config}
