"""Runs through the Dagster instance (Postgres storage), as the CLI and the UI share it.

Dagster is imported where it is used: `run` starts the step server before it loads Dagster.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import os
import select
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Protocol, Self

from odavl_pipeline.db.server import dagster_url
from odavl_pipeline.defs.execution import FORKSERVER, executor_name, step_execution
from odavl_pipeline.settings import (
    CELERY,
    Settings,
    dagster_variables,
    export,
    pipeline_environment,
)

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
# Dagster's default launcher, extended to tell run monitoring whether the process of a run of
# `odavl-pipeline run` lives (odavl_pipeline/defs/run_launcher.py)
run_launcher:
  module: odavl_pipeline.defs.run_launcher
  class: OdavlRunLauncher
# the daemon marks a run whose process is gone failed within a poll or two: it leaves the run
# queue's limits and the failure sensor alerts
run_monitoring:
  enabled: true
  start_timeout_seconds: 180
  cancel_timeout_seconds: 180
  max_resume_run_attempts: 0
  poll_interval_seconds: 30
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
# no "Join the Dagster community" dialog over the UI's first page
nux:
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
# the marts' metadata naming the usage files that keep billing periods from closing
CLOSES_HELD_BY = "closes_held_by"
# ... and the late usage it counted in open billing periods
LATE_CARRIED = "late_usage_carried"
# After SIGINT or SIGTERM, Dagster's executor stops the run's steps and ends the run; a run whose
# steps do not stop within this time (Celery's workers finish a step under way) is ended here.
INTERRUPT_GRACE_SECONDS = 5.0


class RunInterrupted(Exception):
    """`run_pipeline` ended its run on SIGINT or SIGTERM: the signal and the runs."""

    def __init__(self, signum: int, results: list):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.results = results


def cli_run_presence(token: str) -> str:
    """The presence (defs/presence.py) `run_pipeline` holds while it executes the run tagged
    `token`: run monitoring marks the run failed once nobody holds it (defs/run_launcher.py)."""
    return f"cli-run:{token}"


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
        **dagster_variables(
            {
                "DAGSTER_EVENT_BATCH_SIZE": EVENT_BATCH_SIZE,
                "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": PLANNED_EVENTS_AS_RANGES,
            }
        ),
    }


def instance(settings: Settings) -> dg.DagsterInstance:
    import dagster as dg

    export(prepare_instance_environment(settings))
    return dg.DagsterInstance.get()


def serve_ui(host: str, port: int) -> None:
    """The Dagster UI on the instance of the environment (`prepare_instance_environment`) until
    Ctrl-C or SIGTERM: the webserver and the daemon (schedules, sensors, run queue), each a
    process of its own, sharing one code server.

    Dagster 1.13 calls `dagster dev` superseded by `dg dev`, which, given a module, calls the
    function called here: `dg` itself is a package of its own that adds nothing this needs."""
    from dagster._cli.dev import dev_command_impl
    from dagster_shared.cli import WorkspaceOpts

    # Ctrl-C stops it even when a shell started it ignoring Ctrl-C (as for a background job)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        dev_command_impl(
            code_server_log_level="warning",
            log_level="info",
            log_format="colored",
            port=str(port),
            host=host,
            use_legacy_code_server_behavior=False,
            shutdown_pipe=None,
            verbose=False,
            workspace_opts=WorkspaceOpts(module_name=["odavl_pipeline.definitions"]),
        )
    except KeyboardInterrupt:  # before the servers started: none to stop
        pass


def pipeline_job() -> dg.JobDefinition:
    """The pipeline job, as each step's process rebuilds it (`dg.reconstructable` wants a function
    of a module)."""
    from odavl_pipeline.definitions import defs

    return defs().resolve_job_def("pipeline")


def marts_job() -> dg.JobDefinition:
    """The marts job, as `dg.reconstructable` wants it (see `pipeline_job`)."""
    from odavl_pipeline.definitions import defs

    return defs().resolve_job_def("rebuild_marts")


def rebuild_marts(settings: Settings, tags: dict[str, str]) -> dg.JobExecutionResult:
    """Run the marts job in this process, recorded in the instance with `tags`: the marts take in
    what changed in PostgreSQL (a correction's commit or revert tags its batch)."""
    import dagster as dg

    return dg.execute_job(
        dg.reconstructable(marts_job),
        instance=instance(settings),
        run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        tags=tags,
        raise_on_error=False,
    )


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
    closes_held_by: list[str] = field(default_factory=list)  # files, as the marts tell
    late_carried: list[str] = field(default_factory=list)  # late usage in open periods, as told


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
    over them, recorded in the instance like any other run: one run per range of partitions (the
    partitions are in calendar order), so one unless days not to run lie between. `listener` hears of each step as it
    ends, and of the run's status meanwhile. SIGINT or SIGTERM ends the run under way within
    INTERRUPT_GRACE_SECONDS, then raises RunInterrupted."""
    import dagster as dg

    from odavl_pipeline.defs.ingest.partitions import day_ranges, range_tags
    from odavl_pipeline.defs.presence import held

    dagster_instance = instance(settings)
    run_config = {
        "loggers": {"console": {"config": {"log_level": log_level}}},
        "ops": {"marts": {"config": {"full_rebuild": full_marts}}},
        "execution": _execution(),
    }
    results = []
    with _signals_as_interrupts() as signals:
        for key_range in day_ranges(dagster_instance, days):
            token = uuid.uuid4().hex
            with (
                held(dagster_instance, cli_run_presence(token)),
                RunWatcher(dagster_instance, token, listener, signals) as watcher,
            ):
                result = dg.execute_job(
                    dg.reconstructable(pipeline_job),
                    instance=dagster_instance,
                    run_config=run_config,
                    tags={**range_tags(key_range), CLI_RUN_TAG: token},
                )
            results.append(result)
            if watcher.signum is not None:
                raise RunInterrupted(watcher.signum, results)
            if not result.success:
                break
    return results


@contextmanager
def _signals_as_interrupts() -> Iterator[socket.socket | None]:
    """Within the block, SIGTERM interrupts as SIGINT does (Dagster's executor handles both while
    a run executes), and each signal also sends its number as a byte to the socket yielded, for
    the watcher. Out of the main thread, where signals cannot be handled, it changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield None
        return
    reader, writer = socket.socketpair()
    writer.setblocking(False)
    wakeup = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    sigterm = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield reader
    finally:
        signal.set_wakeup_fd(wakeup)
        signal.signal(signal.SIGTERM, sigterm)
        reader.close()
        writer.close()


class RunWatcher(threading.Thread):
    """Watches the run tagged with `token` while it runs. Every WATCH_SECONDS it reads the run's
    events and tells `listener` (if any) of each step as it ends and of the run's status. When a
    byte arrives on `signals` (a signal's number), it gives the run INTERRUPT_GRACE_SECONDS to end,
    then ends it: the run is reported failed and this process exits with 128 + the signal. A
    context manager: its exit reads the last events."""

    def __init__(
        self,
        dagster_instance: dg.DagsterInstance,
        token: str,
        listener: RunListener | None,
        signals: socket.socket | None = None,
    ):
        super().__init__(name="run-watcher", daemon=True)
        self.instance = dagster_instance
        self.token = token
        self.listener = listener
        self.signals = signals
        self.signum: int | None = None
        self.deadline = 0.0  # after a signal: when the run must have ended
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
        while not self.stopping.is_set():
            self.wait_for_signal(WATCH_SECONDS)
            if self.signum is not None and time.monotonic() > self.deadline:
                self.end_run()
            if self.listener:
                self.read_events()
                self.listener.status(
                    RunStatus(time.monotonic() - self.started, list(self.running), self.latest)
                )
        if self.listener:
            self.read_events()

    def wait_for_signal(self, seconds: float) -> None:
        """Sleep `seconds`, or less when a signal's byte arrives: note the first signal."""
        if self.signals is None:
            self.stopping.wait(seconds)
            return
        readable, _, _ = select.select([self.signals], [], [], seconds)
        received = self.signals.recv(64) if readable else b""
        interrupts = [number for number in received if number in (signal.SIGINT, signal.SIGTERM)]
        if interrupts and self.signum is None:
            self.signum = interrupts[0]
            self.deadline = time.monotonic() + INTERRUPT_GRACE_SECONDS

    def end_run(self) -> None:
        """The run did not end within the grace: report it failed and exit, as the signal asks."""
        assert self.signum is not None  # called once a signal has come
        name = signal.Signals(self.signum).name
        run_id = self.find_run()
        run = self.instance.get_run_by_id(run_id) if run_id is not None else None
        if run is not None and not run.is_finished:
            self.instance.report_run_failed(
                run,
                f"odavl-pipeline run received {name} and ended the run: its steps did not stop "
                f"within {INTERRUPT_GRACE_SECONDS:.0f} s",
            )
        if run is not None:
            print(f"dagster run {run.run_id}: FAILED ({name})", file=sys.stderr, flush=True)
        os._exit(128 + self.signum)

    def find_run(self) -> str | None:
        """The run's id once it has been created (then kept), else None."""
        import dagster as dg

        if self.run_id is None:
            runs = self.instance.get_runs(dg.RunsFilter(tags={CLI_RUN_TAG: self.token}), limit=1)
            self.run_id = runs[0].run_id if runs else None
        return self.run_id

    def read_events(self) -> None:
        run_id = self.find_run()
        if run_id is None:
            return
        connection = self.instance.get_records_for_run(run_id, cursor=self.cursor)
        self.cursor = connection.cursor
        for record in connection.records:
            self.read(run_id, record.event_log_entry)

    def read(self, run_id: str, entry: dg.EventLogEntry) -> None:
        """Follow the steps through one entry of the run's log."""
        event = entry.dagster_event
        if event is None:
            self.latest = entry.user_message
        elif event.step_key is None:  # the run's own events
            return
        elif event.is_step_start:
            self.running[event.step_key] = StepReport(run_id, event.step_key, entry.timestamp)
        elif event.step_key in self.running:
            self.read_step_event(self.running[event.step_key], event, entry.timestamp)

    def read_step_event(self, step: StepReport, event: dg.DagsterEvent, timestamp: float) -> None:
        import dagster as dg

        if event.is_step_materialization:
            materialization = event.step_materialization_data.materialization
            step.assets.add(materialization.asset_key.to_user_string())
            if CLOSES_HELD_BY in materialization.metadata:
                step.closes_held_by = _texts(materialization.metadata[CLOSES_HELD_BY].value)
            if LATE_CARRIED in materialization.metadata:
                step.late_carried = _texts(materialization.metadata[LATE_CARRIED].value)
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
            if self.listener:
                self.listener.step_ended(step)


def _texts(value: object) -> list[str]:
    """A metadata value the assets write as a list of texts, read back."""
    return [str(item) for item in value] if isinstance(value, list) else []


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
    export(prepare_instance_environment(settings))
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
    environment = pipeline_environment()
    if _forkserver_environment is None:
        _forkserver_environment = environment
    config = step_execution()["execution"]["config"]
    if environment != _forkserver_environment:
        config = {**config, "start_method": {"spawn": {}}}
    return {"config": config}
