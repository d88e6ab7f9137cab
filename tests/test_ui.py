"""`odavl-pipeline ui` for real: the Dagster webserver and daemon on loopback, on the instance the
command line uses. Its GraphQL API shows the asset graph from the landing sources through Postgres to
every mart, the checks and freshness policies, and a run started from the command line."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import date
from pathlib import Path

import pytest

from odavl_pipeline import clock, orchestration
from odavl_pipeline.defs.ingest.partitions import day_ranges
from odavl_pipeline.defs.marts.assets import MART_ASSETS
from odavl_pipeline.defs.monitoring.freshness import BILLING_MARTS
from odavl_pipeline.domain.records import SOURCES

from .processes import command_line, group_members, wait_until_gone
from .records import error, usage

pytestmark = pytest.mark.slow

DAY = "2026-11-03"
HISTORY = ("2019-03-01", "2019-03-02", "2019-11-30")
START_SECONDS = 90  # measured about 10 s
STOP_SECONDS = 15  # measured about 3 s
POLL_SECONDS = 45

ASSET_GRAPH = """{
  assetNodes {
    assetKey { path }
    groupName
    dependencyKeys { path }
    assetChecksOrError { ... on AssetChecks { checks { name } } }
    internalFreshnessPolicy { __typename ... on CronFreshnessPolicy { deadlineCron timezone } }
  }
}"""

RUN = """query ($ids: [String!]) {
  runsOrError(filter: {runIds: $ids}) {
    ... on Runs { results { runId jobName status tags { key value } } }
  }
}"""

LATEST = """query ($keys: [AssetKeyInput!]) {
  assetNodes(assetKeys: $keys) {
    assetKey { path }
    assetMaterializations(limit: 1) { runId }
    freshnessStatusInfo { freshnessStatus }
  }
}"""

PARTITIONS = """query ($keys: [AssetKeyInput!]) {
  assetNodes(assetKeys: $keys) {
    assetKey { path }
    partitionKeys
    partitionStats { numPartitions numMaterialized numFailed }
    assetPartitionStatuses { ... on DefaultPartitionStatuses { materializedPartitions } }
  }
}"""

DAEMONS = "{ instance { daemonHealth { allDaemonStatuses { daemonType required healthy } } } }"

SCHEDULES = """{
  repositoriesOrError {
    ... on RepositoryConnection { nodes { schedules { name scheduleState { status } } } }
  }
}"""

NUX = "{ shouldShowNux }"  # the "Join the Dagster community" dialog over the first page


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Ui:
    def __init__(self, port: int, log: Path):
        self.base = f"http://127.0.0.1:{port}"
        self.log = log

    def wait_until_up(self, process: subprocess.Popen) -> None:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            assert process.poll() is None, self.log.read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"{self.base}/server_info", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        raise AssertionError(
            f"the UI did not answer in {START_SECONDS} s:\n" + self.log.read_text()[-3000:]
        )

    def query(self, text: str, **variables) -> dict:
        request = urllib.request.Request(
            f"{self.base}/graphql",
            data=json.dumps({"query": text, "variables": variables}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())
        assert "errors" not in answer, answer["errors"]
        return answer["data"]

    def poll(self, text: str, until, **variables) -> dict:
        deadline = time.monotonic() + POLL_SECONDS
        while True:
            data = self.query(text, **variables)
            if until(data) or time.monotonic() > deadline:
                return data
            time.sleep(1)


def _ctrl_c(process: subprocess.Popen) -> list[str]:
    """Ctrl-C to the UI's process group; the command lines of what still runs after it."""
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(STOP_SECONDS)
    except subprocess.TimeoutExpired:
        pass
    left = wait_until_gone(group_members(process.pid), seconds=STOP_SECONDS)
    return [command_line(pid) for pid in left]


def _kill(process: subprocess.Popen) -> None:
    """Whatever of the UI's group still runs, at once."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    process.wait()


def test_the_instance_shows_no_welcome_dialog_and_sends_no_telemetry(settings):
    instance = orchestration.instance(settings)
    assert (instance.nux_enabled, instance.telemetry_enabled) == (False, False)


def test_the_ui_shows_the_lineage_and_the_run_the_command_line_started(
    settings, landing, tmp_path, schedules_stopped, dagster_instance
):
    """A backfill from 2019 to today, one run, after the latest days were registered; the UI's
    partitions are exactly the landed days, in calendar order."""
    today = clock.today().isoformat()
    landed = [*HISTORY, DAY, today]
    day_ranges(dagster_instance, [date.fromisoformat(DAY), clock.today()])  # an earlier run's
    for day in landed:
        landing.write(
            "usage_events",
            day,
            "a.ndjson",
            [usage(f"u-{day}", quantity=2, occurred_at=f"{day}T00:00:00Z")],
        )
    landing.write("error_events", DAY, "a.ndjson", [error("e1")])
    env = {**os.environ, "FRESHNESS_DAEMON_INTERVAL_SECONDS": "2"}  # Dagster's knob; 30 s otherwise
    port = _free_port()
    log = tmp_path / "ui.log"
    with open(log, "w") as out:
        # started as a shell starts a background job, Ctrl-C ignored: `ui` must still stop on it
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "odavl_pipeline.cli",
                "ui",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        )
    ui = Ui(port, log)
    try:
        ui.wait_until_up(process)

        assert ui.query(NUX) == {"shouldShowNux": False}
        [repository] = ui.query(SCHEDULES)["repositoriesOrError"]["nodes"]
        assert {(s["name"], s["scheduleState"]["status"]) for s in repository["schedules"]} == {
            ("daily_billing", "STOPPED"),  # as the test set them: no run but the test's
            ("hourly_stripe", "STOPPED"),
        }
        nodes = {"/".join(n["assetKey"]["path"]): n for n in ui.query(ASSET_GRAPH)["assetNodes"]}
        deps = {
            key: {"/".join(d["path"]) for d in node["dependencyKeys"]}
            for key, node in nodes.items()
        }
        for source in SOURCES:  # landing file -> Postgres table
            assert nodes[f"landing/{source}"]["groupName"] == "landing"
            assert nodes[source]["groupName"] == "ingestion"
            assert deps[source] == {f"landing/{source}"}
            assert {c["name"] for c in nodes[source]["assetChecksOrError"]["checks"]} >= {
                "lines_balance",
                "references_resolve",
            }
        for mart, (upstream, _) in MART_ASSETS.items():  # Postgres table -> mart
            assert nodes[mart]["groupName"] == "marts"
            assert deps[mart] == {key.path[-1] for key in upstream}
        for mart in BILLING_MARTS:
            assert {c["name"] for c in nodes[mart]["assetChecksOrError"]["checks"]} >= {
                "matches_postgres"
            }
            assert nodes[mart]["internalFreshnessPolicy"] == {
                "__typename": "CronFreshnessPolicy",
                "deadlineCron": "0 2 * * *",
                "timezone": "UTC",
            }
        assert nodes["error_trends"]["internalFreshnessPolicy"] is None
        every_mart_reached = {mart for mart in MART_ASSETS if deps[mart] & set(SOURCES)}
        assert every_mart_reached == set(MART_ASSETS) - {"organizations", "projects", "memberships"}

        # the daemon of `ui` heartbeats into the same instance
        daemons = ui.poll(
            DAEMONS,
            lambda d: all(
                s["healthy"]
                for s in d["instance"]["daemonHealth"]["allDaemonStatuses"]
                if s["required"]
            ),
        )
        statuses = daemons["instance"]["daemonHealth"]["allDaemonStatuses"]
        assert {s["daemonType"] for s in statuses} >= {
            "SCHEDULER",
            "SENSOR",
            "QUEUED_RUN_COORDINATOR",
            "BACKFILL",
            "FRESHNESS_DAEMON",
        }
        assert all(s["healthy"] for s in statuses if s["required"]), statuses

        # a run from the command line, on the same instance, shows in the UI's run history
        run = subprocess.run(
            [sys.executable, "-m", "odavl_pipeline.cli", "run", "--log-level", "WARNING"],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert run.returncode == 0, run.stderr[-3000:]
        [run_id] = re.findall(r"dagster run ([0-9a-f-]{36}): success", run.stderr)  # one run
        [shown] = ui.query(RUN, ids=[run_id])["runsOrError"]["results"]
        assert (shown["jobName"], shown["status"]) == ("pipeline", "SUCCESS")
        assert {"key": "odavl/ingest", "value": "true"} in shown["tags"]
        assert {"key": "dagster/asset_partition_range_start", "value": HISTORY[0]} in shown["tags"]
        assert {"key": "dagster/asset_partition_range_end", "value": today} in shown["tags"]

        sources = [{"path": [source]} for source in SOURCES]
        landing_files = {"usage_events": landed, "error_events": [DAY]}  # what was written
        landing_keys = [{"path": ["landing", source]} for source in SOURCES]
        for node in ui.query(PARTITIONS, keys=[*sources, *landing_keys])["assetNodes"]:
            assert node["partitionKeys"] == landed, node["assetKey"]  # no empty calendar
            *landing, source = node["assetKey"]["path"]
            # an ingested day is filled; a landing day, where files of the source were read
            filled = landing_files.get(source, []) if landing else landed
            assert node["partitionStats"] == {
                "numPartitions": len(landed),
                "numMaterialized": len(filled),
                "numFailed": 0,
            }, node["assetKey"]
            statuses = node["assetPartitionStatuses"]["materializedPartitions"]
            assert sorted(statuses) == filled

        keys = [{"path": ["usage_events"]}, *({"path": [mart]} for mart in BILLING_MARTS)]
        latest = ui.poll(
            LATEST,
            lambda d: all(
                (n["freshnessStatusInfo"] or {}).get("freshnessStatus") == "HEALTHY"
                for n in d["assetNodes"]
                if n["assetKey"]["path"][0] in BILLING_MARTS
            ),
            keys=keys,
        )
        for node in latest["assetNodes"]:
            assert node["assetMaterializations"] == [{"runId": run_id}]
            if node["assetKey"]["path"][0] in BILLING_MARTS:  # fresh, by the freshness daemon
                assert node["freshnessStatusInfo"] == {"freshnessStatus": "HEALTHY"}
        # Ctrl-C stops the webserver, the daemon and the code servers, within seconds
        assert _ctrl_c(process) == []
        output = log.read_text()
        assert "Dagster UI on http://127.0.0.1:" in output
        assert "superseded" not in output and "Traceback" not in output, output[-3000:]
    finally:
        _kill(process)
