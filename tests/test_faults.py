"""Crashes and concurrent runs end in the state of one clean run."""

import json
import os
import signal
import subprocess
import sys
from datetime import date

import pytest

from odavl_pipeline.db.server import connect
from odavl_pipeline.ingest.landing import SOURCES
from odavl_pipeline.ingest.run import ingest_days

from .processes import descendants, wait_until_gone
from .records import chain, error, usage
from .state import fingerprint, sibling_database

pytestmark = pytest.mark.slow

DAY = "2026-11-03"
LARGE = 150_000


def _write_large_landing(landing) -> None:
    lines = [json.dumps(usage(f"u{i}", quantity=1 + i % 7)) for i in range(LARGE)]
    lines[1000] = "{broken"
    lines[2000] = json.dumps(usage("u5", quantity=99))  # conflicts with line 6
    landing.write("usage_events", DAY, "large.ndjson", lines)
    landing.write("error_events", DAY, "e.ndjson", [error(f"e{i}") for i in range(50)])
    landing.write("fix_attestations", DAY, "a.ndjson", chain("fix", 5))


def _clean_run_state(settings, database_url, server_url) -> dict:
    """The fingerprint of one uninterrupted ingestion of the same landing zone, in a sibling DB."""
    with sibling_database(settings, database_url, server_url, "clean") as clean:
        with connect(clean) as conn:
            for source in SOURCES:
                ingest_days(conn, clean.landing_dir, source, [date.fromisoformat(DAY)])
            return fingerprint(conn)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "odavl_pipeline.cli", *args]


def test_a_run_killed_mid_file_and_rerun_ends_as_one_clean_run(
    settings, landing, database_url, server_url
):
    _write_large_landing(landing)
    process = subprocess.Popen(
        _cli("run", "--log-level", "INFO"),
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=os.environ.copy(),
    )
    for line in process.stderr:  # wait until the large file is being written in batches
        if "large.ndjson: " in line and " lines" in line:
            break
    else:
        pytest.fail(f"the run ended before the large file was in progress: rc={process.wait()}")
    # a crash of the command and of its run's processes (the step processes, and the server they
    # fork from), leaving the leaves: the parser processes and multiprocessing's trackers
    tree = descendants(process.pid)
    writers = {process.pid, *tree.values()} - {process.pid}
    leaves = [pid for pid in tree if pid not in writers]
    assert writers and leaves, f"the run has no step process with a parser to orphan: {tree}"
    for pid in writers:
        os.kill(pid, signal.SIGKILL)
    process.kill()
    process.wait()
    assert wait_until_gone([*writers, *leaves]) == []  # an orphaned parser exits by itself
    with connect(settings) as conn:
        assert conn.execute("SELECT count(*) FROM usage_events").fetchone()[0] == 0
        assert (
            conn.execute(
                "SELECT count(*) FROM ingested_files WHERE path LIKE '%large%'"
            ).fetchone()[0]
            == 0
        )

    rerun = subprocess.run(
        _cli("run", "--json"), capture_output=True, text=True, env=os.environ.copy()
    )
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    counts = json.loads(rerun.stdout)
    assert counts["usage_events"]["lines"] == LARGE
    assert counts["usage_events"]["rejected"] == 2
    with connect(settings) as conn:
        after = fingerprint(conn)
    assert after == _clean_run_state(settings, database_url, server_url)


def test_two_concurrent_runs_of_the_same_partition_end_as_one(
    settings, landing, database_url, server_url
):
    _write_large_landing(landing)
    runs = [
        subprocess.Popen(
            _cli("run", "--json", "--log-level", "WARNING"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=os.environ.copy(),
        )
        for _ in range(2)
    ]
    outputs = [run.communicate() for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err[-2000:] for _, err in outputs]
    per_run = [json.loads(out) for out, _ in outputs]
    # Each file was ingested by exactly one of the two runs.
    for source in ("usage_events", "error_events", "fix_attestations"):
        assert sum(counts[source]["files"] for counts in per_run) == 1
    with connect(settings) as conn:
        after = fingerprint(conn)
    assert after == _clean_run_state(settings, database_url, server_url)
    assert len(after["usage_events"]) == LARGE - 2
