"""An object-storage outage mid-run is not bad data (docs/operations.md, "Faults tested").

Against moto's S3 server on loopback, killed while `odavl-pipeline run` reads the bucket: the run
fails (exit 1, the step's error names the landing zone), no file is recorded as failed and the
marts are not built, so no period closes; with the bucket back, a rerun ends in the state of one
clean run, and its billing (November closed) is that clean run's.
"""

import json
import os
import subprocess
import sys
import time

import boto3
import pytest

from odavl_pipeline.db.server import connect

from .commands import cli
from .marts_helpers import every_mart
from .s3_server import S3Server, s3_environment, upload
from .state import fingerprint, sibling_database

pytestmark = [pytest.mark.slow, pytest.mark.s3, pytest.mark.clock("2026-12-05T12:00:00Z")]

BUCKET = "odavl-outage"
URL = f"s3://{BUCKET}/landing"
GENERATE = [
    "generate", "--seed", "11", "--days", "10", "--end", "2026-11-30", "--organizations", "2",
    "--usage-per-day", "30", "--errors-per-day", "4", "--attestations-per-day", "2",
    "--audits-per-day", "1", "--files-per-day", "4", "--quiet",
]  # fmt: skip
KILL_AFTER_FILES = 20  # of 160: the outage comes while most files are still to read
RUN_SECONDS = 600  # a bound on the failed run, not a speed claim


@pytest.fixture
def s3(monkeypatch):
    """moto's S3 of this test alone (it is stopped mid-run), the landing zone in its bucket."""
    server = S3Server()
    try:
        server.start()
        for key, value in s3_environment(server.endpoint).items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("ODAVL_LANDING_URL", URL)
        yield server
    finally:
        server.close()


def _fill_bucket(folder) -> None:
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    upload(folder, URL)


def _ingested_files(settings) -> int:
    with connect(settings) as conn:
        return conn.execute("SELECT count(*) FROM ingested_files").fetchone()[0]


def test_a_bucket_that_stops_answering_fails_the_run_and_no_file(
    settings, s3, tmp_path, database_url, server_url
):
    folder = tmp_path / "generated"
    reference = tmp_path / "reference.json"
    cli(*GENERATE, "--out", str(folder), "--reference-out", str(reference))
    cli("seed", "--reference", str(reference))  # its demo files go to the folder, not the bucket
    _fill_bucket(folder)

    run = subprocess.Popen(
        [sys.executable, "-m", "odavl_pipeline.cli", "run", "--log-level", "WARNING"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    deadline = time.monotonic() + RUN_SECONDS
    while _ingested_files(settings) < KILL_AFTER_FILES:
        assert run.poll() is None, "the run ended before the outage"
        assert time.monotonic() < deadline, "the run ingested nothing to speak of"
        time.sleep(0.2)
    s3.kill()
    out, err = run.communicate(timeout=RUN_SECONDS)

    assert run.returncode == 1, err[-3000:]
    assert "landing zone" in err and URL in err, err[-3000:]
    with connect(settings) as conn:
        statuses = dict(
            conn.execute(
                "SELECT status::text, count(*) FROM ingested_files GROUP BY status"
            ).fetchall()
        )
        reasons = conn.execute("SELECT DISTINCT reason FROM quarantine").fetchall()
    assert "failed" not in statuses, statuses  # the storage failed, not a file
    assert ("ingest_error",) not in reasons
    assert statuses["ingested"] < 160
    assert not settings.marts_path.exists()  # the marts wait for the data

    s3.start()  # back, and empty: moto keeps nothing
    _fill_bucket(folder)
    rerun = cli("run", "--json")
    assert sum(counts["files"] for counts in json.loads(rerun.stdout).values()) > 0
    with connect(settings) as conn:
        after = fingerprint(conn)
    billing = every_mart(settings.marts_path)["billing_periods"]
    assert any(row[-1] for row in billing)  # November closed, by the clock
    with sibling_database(settings, database_url, server_url, "clean") as clean:
        env = {
            "ODAVL_DATABASE_URL": clean.database_url.get_secret_value(),
            "ODAVL_HOME": str(tmp_path / "clean"),
        }
        cli("seed", "--reference", str(reference), env=env)
        cli("run", "--json", env=env)
        with connect(clean) as conn:
            assert after == fingerprint(conn)
        assert billing == every_mart(tmp_path / "clean" / "marts.duckdb")["billing_periods"]
