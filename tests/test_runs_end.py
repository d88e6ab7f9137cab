"""Runs end (docs/operations.md, "Faults tested"): `odavl-pipeline run` ends its Dagster run on
SIGINT and SIGTERM; Dagster's run monitoring marks the run of a killed command failed, which frees
its place in the run queue and alerts."""

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from odavl_pipeline import orchestration

from .processes import descendants, group_members, wait_until_gone
from .records import usage

pytestmark = pytest.mark.slow

DAY = "2026-11-03"
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
LARGE = 150_000
SIGNAL_SECONDS = 10  # the bound the command promises, a wait's timeout


def _write_large_landing(landing) -> None:
    landing.write(
        "usage_events", DAY, "large.ndjson", [json.dumps(usage(f"u{i}")) for i in range(LARGE)]
    )


def _start_run(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "odavl_pipeline.cli", "run", "--log-level", "INFO", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )


def _wait_until_writing(process: subprocess.Popen) -> list[str]:
    """Read the run's log until the large file is being written; the lines read."""
    lines = []
    for line in process.stderr:
        lines.append(line)
        if "large.ndjson: " in line and " lines" in line:
            return lines
    pytest.fail(f"the run ended before the large file was in progress: {''.join(lines)[-3000:]}")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_the_command_ends_its_dagster_run_on_a_signal(settings, landing, signum):
    _write_large_landing(landing)
    process = _start_run()
    read = _wait_until_writing(process)
    below = list(descendants(process.pid))
    assert below, "the run has no step process"

    process.send_signal(signum)
    try:
        _, rest = process.communicate(timeout=SIGNAL_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail(f"`run` did not end within {SIGNAL_SECONDS} s of {signum.name}")
    err = "".join(read) + rest

    assert process.returncode == 128 + signum, err[-3000:]
    assert wait_until_gone(below, seconds=SIGNAL_SECONDS) == []  # its step processes ended too
    ended = re.findall(rf"^dagster run ([0-9a-f-]{{36}}): FAILED \({signum.name}\)$", err, re.M)
    assert len(ended) == 1, err[-3000:]
    [run_id] = ended
    run = orchestration.instance(settings).get_run_by_id(run_id)
    assert run.is_finished and run.status.value == "FAILURE"


# --- run monitoring --------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MONITOR_SECONDS = 240  # bounds of the waits below: run monitoring polls every 30 s
QUEUED_RUN_SECONDS = 300


class Daemon:
    """`dagster-daemon run` on the repository's workspace, in a process group of its own."""

    def __init__(self, env: dict[str, str], log: Path):
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [str(BIN / "dagster-daemon"), "run", "-w", str(ROOT / "workspace.yaml")],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_for(self, text: str, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while text not in self.log.read_text(errors="replace"):
            assert self.process.poll() is None, self.log.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, self.log.read_text(errors="replace")[-3000:]
            time.sleep(0.5)

    def close(self) -> list[int]:
        members = group_members(self.process.pid)
        os.killpg(self.process.pid, signal.SIGTERM)
        if wait_until_gone(members, seconds=30):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        return wait_until_gone(members, seconds=10)


def _kill(process: subprocess.Popen) -> None:
    """SIGKILL the command and every process below it, as a crash would."""
    below = descendants(process.pid)
    for pid in below:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.kill()
    process.wait()
    assert wait_until_gone(below) == []


def _wait_for_status(instance, run_id: str, statuses: set[str], seconds: float):
    deadline = time.monotonic() + seconds
    while (run := instance.get_run_by_id(run_id)).status.value not in statuses:
        assert time.monotonic() < deadline, f"run {run_id} still {run.status.value}"
        time.sleep(1)
    return run


def _waiting_on_locks(conn) -> int:
    return conn.execute("SELECT count(*) FROM pg_locks WHERE NOT granted").fetchone()[0]


def test_run_monitoring_fails_killed_runs_frees_their_places_and_alerts(
    settings, landing, tmp_path, schedules_stopped
):
    import dagster as dg

    from odavl_pipeline.db.locks import source_lock
    from odavl_pipeline.db.server import connect

    from .test_monitoring import Webhook

    landing.write("usage_events", DAY, "a.ndjson", [usage("u1"), usage("u2")])
    instance = schedules_stopped
    webhook = Webhook()
    env = {**os.environ, "ODAVL_ALERT_WEBHOOK_URL": webhook.url}
    daemon = Daemon(env, tmp_path / "daemon.log")
    try:
        daemon.wait_for("run_failure_alert", MONITOR_SECONDS)  # the failure sensor ticks
        since = datetime.now(UTC)
        with connect(settings) as blocker:
            # the runs' usage_events steps wait for the source, as for a billing cut
            blocker.execute("SELECT pg_advisory_lock(hashtext(%s))", (source_lock("usage_events"),))
            runs = [_start_run(), _start_run()]  # they take the queue's two odavl/ingest places
            while _waiting_on_locks(blocker) < 2:
                assert all(run.poll() is None for run in runs)
                time.sleep(0.5)
            dead = [
                run.run_id
                for run in instance.get_runs(
                    dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED], created_after=since)
                )
            ]
            assert len(dead) == 2, dead
            # a run the daemon launches from the queue waits for a place
            queued_id = str(uuid.uuid4())
            tags = {RANGE_START: DAY, RANGE_END: DAY}
            subprocess.run(
                [str(BIN / "dagster"), "job", "launch", "-w", str(ROOT / "workspace.yaml"),
                 "-j", "pipeline", "--run-id", queued_id, "--tags", json.dumps(tags)],
                cwd=ROOT, env=env, check=True, capture_output=True,
            )  # fmt: skip
            assert instance.get_run_by_id(queued_id).status.value == "QUEUED"
            for run in runs:
                _kill(run)

        ended = [
            _wait_for_status(instance, run_id, {"FAILURE"}, MONITOR_SECONDS) for run_id in dead
        ]
        queued = _wait_for_status(instance, queued_id, {"SUCCESS", "FAILURE"}, QUEUED_RUN_SECONDS)
        assert queued.status.value == "SUCCESS"
        records = {
            record.dagster_run.run_id: record
            for record in instance.get_run_records(dg.RunsFilter(run_ids=[*dead, queued_id]))
        }
        # launched once both places were free
        assert records[queued_id].start_time >= max(records[run_id].end_time for run_id in dead)
        for run in ended:
            [failure] = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
            assert "`odavl-pipeline run` process that executed it is gone" in failure.message

        deadline = time.monotonic() + MONITOR_SECONDS  # the failure sensor alerts for each
        while not set(dead) <= {alert["run_id"] for _, _, alert in webhook.received}:
            assert time.monotonic() < deadline, webhook.received
            time.sleep(1)
    finally:
        left = daemon.close()
        webhook.close()
    assert left == [], "the daemon left processes running"
