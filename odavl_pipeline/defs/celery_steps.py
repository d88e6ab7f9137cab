"""Steps on Celery workers that end, whatever happens to the worker running them.

dagster-celery's executor sends each step as a task and waits for its result. A worker killed
mid-step (SIGKILL, OOM, its machine gone) never sends one, and the run waited for ever. Here:

- a worker holds the presence of each task it runs (defs/presence.py, keyed by the task's id)
  from before the task starts until after its result is stored: this module is among the Celery
  settings' `imports` (defs/execution.py, deploy/celery/celery.yaml), so every worker imports it;
- the run's executor is dagster-celery's, but each step's result is watched: once the step's
  task has started on a worker (dagster-celery's engine event, written by the task, names the
  worker) and its presence is free at two probes PROBE_SECONDS apart with no result stored, the
  result is ready with WorkerLost. The step fails, the run fails (and alerts), and the task is
  revoked, so that no worker runs it later.

The presence belongs to the task, not to the worker's process: a worker killed at any moment
of a step, even before the step's first event, and restarted under the same name at once, still
leaves its step lost.
"""

import threading
import time
from contextlib import ExitStack

import dagster as dg
from celery.signals import task_postrun, task_prerun
from dagster._core.execution.retries import RetryMode  # as dagster-celery reads its config
from dagster_celery import celery_executor
from dagster_celery.executor import CeleryExecutor

from odavl_pipeline.defs.presence import held, is_held

PROBE_SECONDS = 5.0  # how often a waiting step's worker is looked for
CELERY_WORKER = "Celery worker"  # the engine event's entry naming the worker (dagster-celery)

_running: dict[str, ExitStack] = {}  # in a worker: the presences of its tasks under way
_instance: list[dg.DagsterInstance] = []  # in a worker: its Dagster instance, once opened
_opening = threading.Lock()


class WorkerLost(Exception):
    """The Celery worker that ran a step is gone: the step will never report."""


def task_presence(task_id: str) -> str:
    """The presence of the Celery task `task_id` while a worker runs it."""
    return f"celery-task:{task_id}"


def _worker_instance() -> dg.DagsterInstance:
    with _opening:
        if not _instance:
            _instance.append(dg.DagsterInstance.get())
        return _instance[0]


@task_prerun.connect
def _hold_task_presence(task_id: str, **kwargs) -> None:
    """In a worker, before a task runs: hold its presence until it has ended."""
    stack = ExitStack()
    stack.enter_context(held(_worker_instance(), task_presence(task_id)))
    _running[task_id] = stack


@task_postrun.connect
def _free_task_presence(task_id: str, **kwargs) -> None:
    """In a worker, once a task's result is stored: its presence is no longer needed."""
    stack = _running.pop(task_id, None)
    if stack is not None:
        stack.close()


class WatchedStep:
    """A step's Celery result (`celery.result.AsyncResult`, as dagster-celery's loop uses it),
    ready with WorkerLost once the worker that took the step is gone."""

    def __init__(self, result, instance: dg.DagsterInstance, run_id: str, step_key: str):
        self.result = result
        self.instance = instance
        self.run_id = run_id
        self.step_key = step_key
        self.next_probe = 0.0
        self.cursor: str | None = None  # how far the run's log was read
        self.node: str | None = None  # the worker that took the step, once its task started
        self.gone_once = False  # the task's presence was free at the last probe
        self.lost: str | None = None

    def ready(self) -> bool:
        return self.result.ready() or self.worker_lost()

    def get(self):
        if self.lost is not None and not self.result.ready():
            raise WorkerLost(self.lost)
        return self.result.get()

    def revoke(self) -> None:
        self.result.revoke()

    def worker_lost(self) -> bool:
        """Probe the step's task every PROBE_SECONDS; lost after two probes find it started,
        not running and without a result."""
        if self.lost is not None or time.monotonic() < self.next_probe:
            return self.lost is not None
        self.next_probe = time.monotonic() + PROBE_SECONDS
        gone = (
            self.started()
            and not is_held(self.instance, task_presence(self.result.id))
            and not self.result.ready()
        )
        if gone and self.gone_once:
            self.lost = (
                f"the Celery worker {self.node} that ran step {self.step_key} is gone "
                f"(task {self.result.id}): the step did not end"
            )
            self.result.revoke()
        self.gone_once = gone
        return self.lost is not None

    def started(self) -> bool:
        """Whether the step's task has started on a worker, from the run's log read on from the
        last probe: dagster-celery's task writes an engine event naming its worker."""
        if self.node is None:
            connection = self.instance.get_records_for_run(self.run_id, cursor=self.cursor)
            self.cursor = connection.cursor
            for record in connection.records:
                event = record.event_log_entry.dagster_event
                if (
                    event is not None
                    and event.step_key == self.step_key
                    and event.is_engine_event
                    and CELERY_WORKER in event.engine_event_data.metadata
                ):
                    self.node = str(event.engine_event_data.metadata[CELERY_WORKER].value)
        return self.node is not None


class WatchedCeleryExecutor(CeleryExecutor):
    """dagster-celery's executor, each step's result watched (WatchedStep)."""

    def execute(self, plan_context, execution_plan):
        from dagster_celery.core_execution_loop import core_celery_execution_loop
        from dagster_celery.executor import _submit_task  # how dagster-celery sends a step

        def submit(app, context, step, queue, priority, known_state):
            result = _submit_task(app, context, step, queue, priority, known_state)
            return WatchedStep(result, context.instance, context.run_id, step.key)

        return core_celery_execution_loop(plan_context, execution_plan, step_execution_fn=submit)


def _watched_celery_executor(init_context: dg.InitExecutorContext) -> WatchedCeleryExecutor:
    config = init_context.executor_config
    return WatchedCeleryExecutor(
        broker=config.get("broker"),
        backend=config.get("backend"),
        config_source=config.get("config_source"),
        include=config.get("include"),
        retries=RetryMode.from_config(config["retries"]),  # type: ignore[arg-type]  # a dict
    )


# dagster-celery's executor (name, configuration, requirements), its steps watched
watched_celery_executor = dg.ExecutorDefinition(
    name=celery_executor.name,
    config_schema=celery_executor.config_schema,  # type: ignore[arg-type]  # taken as it is
    requirements=celery_executor.get_requirements,
    executor_creation_fn=_watched_celery_executor,
    description="dagster-celery's executor; a step whose worker is gone fails.",
)
