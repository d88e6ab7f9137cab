"""The pipeline's steps spread over two Celery workers (deploy/celery/): Debian's redis-server as
the broker on loopback, two `dagster-celery worker start` processes, `odavl-pipeline run` with
ODAVL_EXECUTOR=celery. The steps run in the workers, on both, and the run ends in the state a
multiprocess run of the same landing zone ends in."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, date, datetime

import pytest
from dagster import DagsterEventType

from odavl_pipeline.db.server import connect
from odavl_pipeline.defs.execution import (
    BROKER_VARIABLE,
    DEFAULT_QUEUE,
    EXECUTOR_VARIABLE,
    MARTS_QUEUE,
)
from odavl_pipeline.defs.marts.assets import MART_ASSETS
from odavl_pipeline.ingest.landing import SOURCES
from odavl_pipeline.ingest.run import ingest_days
from odavl_pipeline.orchestration import instance, prepare_instance_environment
from odavl_pipeline.settings import Settings

from .celery_workers import ROOT, CeleryWorkers
from .commands import cli
from .conftest import TEMPLATE_DB, _admin, forget_landed_days
from .marts_helpers import every_mart
from .processes import wait_until_gone
from .records import error, usage
from .redis_server import RedisServer
from .state import fingerprint, sibling_database

pytestmark = [pytest.mark.slow, pytest.mark.celery]

STAGE = r"\s+\d+\.\d s"
GENERATE = [
    "generate", "--seed", "5", "--days", "3", "--end", "2026-11-20", "--organizations", "2",
    "--usage-per-day", "40", "--errors-per-day", "6", "--attestations-per-day", "3",
    "--audits-per-day", "1", "--files-per-day", "2", "--quiet",
]  # fmt: skip
# the marts that tell when they were built or ingested (the quota's "as of", the files' times)
BUILD_TIME_MARTS = {"quota_status", "landing_files"}


@pytest.fixture
def redis_server():
    server = RedisServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def celery_settings(settings, redis_server, monkeypatch) -> Settings:
    """`settings` with the Celery executor selected in the environment, and the instance of
    deploy/celery/ in DAGSTER_HOME (odavl-pipeline leaves a dagster.yaml of an operator alone)."""
    settings.dagster_home.mkdir(parents=True)
    shutil.copy(ROOT / "deploy" / "celery" / "dagster.yaml", settings.dagster_home / "dagster.yaml")
    for name, value in prepare_instance_environment(settings).items():  # undone after the test
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(EXECUTOR_VARIABLE, "celery")
    monkeypatch.setenv(BROKER_VARIABLE, redis_server.url)
    forget_landed_days(instance(settings))  # the storage is shared by this worker's tests
    return settings


@pytest.fixture
def workers(celery_settings, tmp_path):
    """Two workers: `ingest` takes the default queue, `marts` the default queue and the marts'
    (it runs beside the marts file). Both stopped, with every process below them, at the end."""
    started = CeleryWorkers(os.environ.copy(), tmp_path)
    try:
        started.start("ingest", DEFAULT_QUEUE)
        started.start("marts", DEFAULT_QUEUE, MARTS_QUEUE)
        started.wait_ready()
        yield started
    finally:
        left = started.close()
        assert not left, f"celery workers left processes running: {left}"


def _step_placements(settings: Settings, run_id: str) -> tuple[dict[str, str], dict[str, int]]:
    """From the run's event log: the Celery worker that took each step (dagster-celery's engine
    event "Executing steps … in celery worker") and the process each step started in."""
    from odavl_pipeline.orchestration import instance

    nodes, pids = {}, {}
    for entry in instance(settings).all_logs(run_id):
        event = entry.dagster_event
        if event is None or not event.step_key:
            continue
        if event.is_engine_event and "in celery worker" in (event.message or ""):
            nodes[event.step_key] = event.engine_event_data.metadata["Celery worker"].value
        elif event.is_step_start:
            pids[event.step_key] = event.pid
    return nodes, pids


def _multiprocess_state(settings, database_url, server_url, tmp_path, monkeypatch, reference):
    """The end state of `odavl-pipeline run` with the default executor, of the same landing zone,
    in a second ODAVL_HOME and database."""
    name = database_url.database + "_multiprocess"
    with _admin(server_url) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE_DB}"')
    home = tmp_path / "multiprocess"
    other = settings.replace(
        home=home,
        database_url=database_url.set(database=name).render_as_string(hide_password=False),
        marts_path=home / "marts.duckdb",
        dagster_home=home / "dagster",
    )
    try:
        with monkeypatch.context() as env:
            env.setenv("ODAVL_HOME", str(other.home))
            env.setenv("ODAVL_DATABASE_URL", other.database_url.get_secret_value())
            env.setenv("DAGSTER_HOME", str(other.dagster_home))
            env.delenv(EXECUTOR_VARIABLE)
            env.delenv(BROKER_VARIABLE)
            cli("seed", "--reference", str(reference))
            run = cli("run", "--json", "--log-level", "WARNING")
        with connect(other) as conn:
            return json.loads(run.stdout), fingerprint(conn), every_mart(other.marts_path)
    finally:
        with _admin(server_url) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def test_celery_workers_run_the_steps_on_both_workers_and_end_as_a_multiprocess_run(
    celery_settings, workers, database_url, server_url, tmp_path, monkeypatch
):
    settings = celery_settings
    reference = tmp_path / "reference.json"
    cli(*GENERATE, "--reference-out", str(reference))
    cli("seed", "--reference", str(reference))

    run = cli("run", "--log-level", "WARNING", check=False)
    logs = {worker.name: worker.log_text()[-2000:] for worker in workers.workers}
    assert run.returncode == 0, f"{run.stderr[-3000:]}\n{logs}"

    # the command line as with any executor: a line per step as it ends, the run, the counts
    for source in SOURCES:
        assert re.search(rf"^{source}\s+\d+ files\s.*{STAGE}$", run.stderr, re.MULTILINE), (
            run.stderr
        )
    assert re.search(
        rf"^marts\s+built {len(MART_ASSETS)} tables, checks passed{STAGE}$", run.stderr, re.M
    )
    runs = re.findall(r"^dagster run ([0-9a-f-]{36}): success$", run.stderr, re.MULTILINE)
    assert len(runs) == 1, run.stderr[-3000:]
    [run_id] = runs

    # every step ran in a worker: the worker that took it by the run's log, in that worker's
    # process (the solo pool runs the step in the Celery process itself), none in this test's
    nodes, pids = _step_placements(settings, run_id)
    steps = {*SOURCES, "marts"}
    assert set(nodes) == steps and set(pids) == steps, (nodes, pids)
    ingest, marts = workers.workers
    assert nodes["marts"] == marts.node  # the marts' queue: only the marts worker listens
    # the four ingest steps, sent at once, spread over both (each takes one step at a time)
    assert {nodes[source] for source in SOURCES} == {ingest.node, marts.node}, nodes
    for step, node in nodes.items():
        worker = ingest if node == ingest.node else marts
        assert pids[step] in worker.pids(), (step, pids[step], worker.pids())
    for worker in workers.workers:  # Celery's own log of the tasks it ran
        ran = sum(1 for node in nodes.values() if node == worker.node)
        assert worker.log_text().count("Task execute_plan[") >= ran, worker.log_text()[-3000:]

    with connect(settings) as conn:
        celery_state = fingerprint(conn)
    celery_marts = every_mart(settings.marts_path)
    counts, multiprocess_state, multiprocess_marts = _multiprocess_state(
        settings, database_url, server_url, tmp_path, monkeypatch, reference
    )
    assert sum(source["accepted"] for source in counts.values()) > 0
    assert celery_state == multiprocess_state
    for mart in set(MART_ASSETS) - BUILD_TIME_MARTS:
        assert celery_marts[mart] == multiprocess_marts[mart], mart

    # a step that fails in a worker fails the run, and the command says so with its exit code
    landing = settings.landing_dir / "usage_events" / "2026-11-21"
    landing.mkdir(parents=True)
    (landing / "late.ndjson").write_text(
        json.dumps(usage("late-1", occurred_at="2026-11-21T10:00:00Z")) + "\n"
    )
    settings.marts_path.unlink()
    settings.marts_path.mkdir()  # where the marts worker publishes the marts: it cannot
    failed = cli("run", "--log-level", "WARNING", check=False)
    assert failed.returncode == 1, failed.stderr[-3000:]
    assert re.search(r"^usage_events\s+1 files\s", failed.stderr, re.MULTILINE), failed.stderr
    assert re.search(r"^marts\s+FAILED after ", failed.stderr, re.MULTILINE), failed.stderr
    assert re.search(r"^dagster run [0-9a-f-]{36}: FAILED$", failed.stderr, re.MULTILINE)


LARGE = 150_000
LOST_STEP_SECONDS = 180  # bounds of the waits below, not speed claims
SIGNAL_SECONDS = 10  # the bound `run` promises after SIGINT or SIGTERM


def _worker_of(settings: Settings, since: datetime, step: str, seconds: float) -> str:
    """The Celery node that took `step` of the first run created after `since`, once its task
    runs."""
    from dagster import RunsFilter

    dagster_instance = instance(settings)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        runs = dagster_instance.get_runs(RunsFilter(created_after=since), limit=1)
        nodes, _ = _step_placements(settings, runs[0].run_id) if runs else ({}, {})
        if step in nodes:
            return nodes[step]
        time.sleep(0.5)
    raise AssertionError(f"no worker took {step} in {seconds} s")


def _start_large_run(landing) -> tuple[subprocess.Popen, datetime]:
    """`odavl-pipeline run` of a landing zone whose usage_events step takes a while; when."""
    lines = [json.dumps(usage(f"u{i}", quantity=1 + i % 5)) for i in range(LARGE)]
    landing.write("usage_events", "2026-11-03", "large.ndjson", lines)
    landing.write("error_events", "2026-11-03", "e.ndjson", [error(f"e{i}") for i in range(20)])
    since = datetime.now(UTC)
    run = subprocess.Popen(
        [sys.executable, "-m", "odavl_pipeline.cli", "run", "--log-level", "WARNING"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    return run, since


def test_a_step_whose_worker_is_killed_fails_its_run_and_a_rerun_ends_as_a_clean_run(
    celery_settings, workers, landing, database_url, server_url
):
    settings = celery_settings
    run, since = _start_large_run(landing)
    node = _worker_of(settings, since, "usage_events", LOST_STEP_SECONDS)
    [killed] = [worker for worker in workers.workers if worker.node == node]
    pids = killed.pids()
    os.killpg(killed.process.pid, signal.SIGKILL)  # mid-step: the launcher and the worker
    assert wait_until_gone(pids) == []

    try:
        _, err = run.communicate(timeout=LOST_STEP_SECONDS)
    except subprocess.TimeoutExpired:
        run.kill()
        run.communicate()
        pytest.fail(f"the run still waits for the killed worker after {LOST_STEP_SECONDS} s")
    assert run.returncode == 1, err[-3000:]
    [run_id] = re.findall(r"^dagster run ([0-9a-f-]{36}): FAILED$", err, re.MULTILINE)
    failure = instance(settings).all_logs(run_id, of_type=DagsterEventType.RUN_FAILURE)
    assert "WorkerLost" in str(failure[-1].dagster_event.event_specific_data.error)
    lost = str(failure[-1].dagster_event.event_specific_data.error)
    assert f"the Celery worker {node} that ran step usage_events" in lost
    with connect(settings) as conn:
        assert (
            conn.execute(
                "SELECT count(*) FROM ingested_files WHERE path LIKE '%large%'"
            ).fetchone()[0]
            == 0
        )  # the killed step's file rolled back whole

    workers.replace(killed)  # the operator restarts it
    workers.wait_ready()
    cli("run", "--log-level", "WARNING")
    with connect(settings) as conn:
        after = fingerprint(conn)
    with sibling_database(settings, database_url, server_url, "clean") as clean:
        with connect(clean) as conn:
            for source in SOURCES:
                ingest_days(conn, clean.landing_dir, source, [date(2026, 11, 3)])
            assert after == fingerprint(conn)


def test_the_command_ends_its_run_on_sigterm_while_a_worker_runs_a_step(
    celery_settings, workers, landing
):
    run, since = _start_large_run(landing)
    _worker_of(celery_settings, since, "usage_events", LOST_STEP_SECONDS)
    run.send_signal(signal.SIGTERM)
    try:
        _, err = run.communicate(timeout=SIGNAL_SECONDS)
    except subprocess.TimeoutExpired:
        run.kill()
        run.communicate()
        pytest.fail(f"`run` did not end within {SIGNAL_SECONDS} s of SIGTERM")
    assert run.returncode == 128 + signal.SIGTERM, err[-3000:]
    [run_id] = re.findall(r"^dagster run ([0-9a-f-]{36}): FAILED \(SIGTERM\)$", err, re.M)
    ended = instance(celery_settings).get_run_by_id(run_id)
    assert ended.status.value == "FAILURE"
    # ended by the command's watcher after its grace, or by the executor within it (the
    # SIGTERM reaches the executor as an interrupt): the run's log says which, as a failure
    failures = instance(celery_settings).all_logs(run_id, of_type=DagsterEventType.RUN_FAILURE)
    said = [failure.message for failure in failures]
    assert said and all(
        "odavl-pipeline run received SIGTERM and ended the run" in message
        or "Execution was interrupted" in message
        for message in said
    ), said
