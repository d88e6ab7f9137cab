"""How the jobs' steps run, shared by the definitions and the command line's orchestration.

Chosen here, and only here, from the settings (odavl_pipeline/settings.py):

- `ODAVL_EXECUTOR`: `multiprocess` (the default) runs each step of a run in a process of its own
  on the machine of the run; `celery` sends each step to a Celery queue, for the workers
  listening to it (dagster-celery's executor: `pip install -e '.[celery]'`).
- `ODAVL_CELERY_BROKER_URL` (required with `celery`): the broker, e.g. `redis://host:6379/0`.
- `ODAVL_CELERY_BACKEND_URL` (optional): where the workers put the steps' results; unset, they
  come back as messages through the broker (Celery's `rpc://`).

The run's configuration names these variables, never their values (a broker URL may hold a
password): every process that resolves it, the run's and the workers', reads them from its own
environment. Nothing here imports Dagster: the command line reads it before it loads Dagster.
"""

from odavl_pipeline.settings import (
    BACKEND_VARIABLE,
    BROKER_VARIABLE,
    CELERY,
    EXECUTOR_VARIABLE,
    Settings,
)

# Each step of a run in a process of its own, forked from one that has the code loaded: the four
# sources ingest at once, the marts after them. Loaded beforehand too: the instance's storage (a
# step would spend 0.6 s on it) and the marts' builder (the code location imports it only when
# it builds).
FORKSERVER = {
    "forkserver": {
        "preload_modules": [
            "dagster_postgres",
            "odavl_pipeline.definitions",
            "odavl_pipeline.marts.build",
        ]
    }
}
STEP_PROCESSES = {"execution": {"config": {"max_concurrent": 4, "start_method": FORKSERVER}}}

# With Celery, a step goes to the queue its op tag names (dagster-celery's tag), else to the
# default queue. The four ingest steps need PostgreSQL and the landing zone, so any worker takes
# them; the marts step writes the DuckDB file, so it has a queue of its own, which only workers
# on the machine (or volume) of the marts file listen to.
CELERY_QUEUE_TAG = "dagster-celery/queue"  # dagster_celery.tags.DAGSTER_CELERY_QUEUE_TAG
DEFAULT_QUEUE = "dagster"  # dagster-celery's default queue
MARTS_QUEUE = "marts"
# Settings of the Celery app, the same in the run (which sends) and in the workers (which start
# with the same block: deploy/celery/celery.yaml). Each worker runs one step at a time, in its
# own process (`solo`): a step starts a parser process, which a pool's (daemonic) child could
# not, and a worker that runs one step takes no other before it is done. Each worker imports
# CELERY_WORKER_MODULE, which holds its presence: a run fails the step of a worker that is gone.
CELERY_WORKER_MODULE = "odavl_pipeline.defs.celery_steps"
CELERY_SETTINGS = {
    "worker_pool": "solo",
    "worker_concurrency": 1,
    "worker_prefetch_multiplier": 1,
    "broker_connection_retry_on_startup": True,
    "imports": [CELERY_WORKER_MODULE],
}


def executor_name(settings: Settings | None = None) -> str:
    """`multiprocess` or `celery` (ODAVL_EXECUTOR), of `settings` or of the environment."""
    settings = settings or Settings.from_env()
    if settings.executor == CELERY and not settings.celery_broker_url:
        raise ValueError(
            f"{EXECUTOR_VARIABLE}=celery needs {BROKER_VARIABLE} (redis://host:port/db)"
        )
    return settings.executor


def celery_execution(settings: Settings | None = None) -> dict:
    """The run configuration of dagster-celery's executor: the variables, not their values."""
    settings = settings or Settings.from_env()
    config: dict = {"broker": {"env": BROKER_VARIABLE}}
    if settings.celery_backend_url:
        config["backend"] = {"env": BACKEND_VARIABLE}
    config["config_source"] = dict(CELERY_SETTINGS)
    return {"execution": {"config": config}}


def step_execution(settings: Settings | None = None) -> dict:
    """The jobs' run configuration of their executor."""
    settings = settings or Settings.from_env()
    if executor_name(settings) == CELERY:
        return celery_execution(settings)
    return STEP_PROCESSES


def step_executor(settings: Settings | None = None):
    """The jobs' executor definition (Dagster's multiprocess executor, or dagster-celery's, its
    steps watched: defs/celery_steps.py)."""
    if executor_name(settings) == CELERY:
        try:
            from odavl_pipeline.defs.celery_steps import watched_celery_executor
        except ImportError:
            raise ImportError(
                f"{EXECUTOR_VARIABLE}=celery needs dagster-celery: pip install -e '.[celery]'"
            ) from None
        return watched_celery_executor
    import dagster as dg

    return dg.multiprocess_executor
