"""The command line end to end: generate, seed, run through Dagster, rerun, rejects."""

import io
import json
import os
import re
import subprocess
import sys

import pytest

from odavl_pipeline.db.server import connect
from odavl_pipeline.defs.marts.assets import MART_ASSETS
from odavl_pipeline.generate import GenerateOptions, generate_landing
from odavl_pipeline.ingest.landing import SOURCES
from odavl_pipeline.marts import reconcile
from odavl_pipeline.marts.store import open_marts
from odavl_pipeline.output.data import demo_ending

from .commands import cli
from .records import usage
from .state import fingerprint

pytestmark = pytest.mark.slow


@pytest.fixture
def generated(settings):
    from datetime import date

    from odavl_pipeline.db.seed import seed_chain_heads

    options = GenerateOptions(
        end_day=date(2026, 11, 20),
        days=6,
        organizations=3,
        usage_per_day=60,
        errors_per_day=8,
        attestations_per_day=4,
        audits_per_day=1,
        duplicate_share=0.05,
        conflict_share=0.02,
        malformed_share=0.03,
        late_share=0.1,
        chain_heads=seed_chain_heads(),
    )
    reference = settings.home / "reference.json"  # beside the landing zone, as the CLI writes it
    summary = generate_landing(settings.landing_dir, options, reference_path=reference)
    cli("seed", "--reference", str(reference))
    return summary


def test_run_accounts_for_every_generated_line_and_a_rerun_changes_nothing(settings, generated):
    first = json.loads(cli("run", "--json", "--log-level", "WARNING").stdout)
    seeded = {"usage_events": 5, "error_events": 5, "fix_attestations": 3, "audit_results": 1}
    for source, written in generated.sources.items():
        counts = first[source]
        assert counts["files"] == written.files + 1  # plus the demo seed file
        assert counts["lines"] == written.lines + seeded[source]
        assert counts["lines"] == (
            counts["accepted"] + counts["duplicate"] + counts["pending"] + counts["rejected"]
        )
        assert counts["accepted"] + counts["pending"] == written.records + seeded[source]
        assert counts["duplicate"] == written.duplicates
        assert counts["rejected"] == written.expected_rejected
    with connect(settings) as conn:
        before = fingerprint(conn)
        pending = conn.execute(
            "SELECT count(*) FROM fix_attestations WHERE chain_status = 'pending'"
        ).fetchone()[0]
    assert pending == 0  # every chain delivered out of order was linked by the end

    quota = json.loads(cli("quota", "--json").stdout)  # the marts were built by the same run
    with connect(settings) as conn:
        every = conn.execute("SELECT slug FROM organizations").fetchall()  # FREE ones too
        with open_marts(settings.marts_path) as marts:
            assert reconcile.billing_periods_usage(marts, conn).passed
    assert sorted((row["org"], row["metric"]) for row in quota) == sorted(
        (slug, metric) for (slug,) in every for metric in ("analyses", "audits", "fixes")
    )

    second = json.loads(cli("run", "--json", "--log-level", "WARNING").stdout)
    assert all(
        counts
        == {"files": 0, "lines": 0, "accepted": 0, "duplicate": 0, "pending": 0, "rejected": 0}
        for counts in second.values()
    )
    with connect(settings) as conn:
        assert fingerprint(conn) == before


def test_rejects_json_lists_the_quarantine_with_editor_line_numbers(settings, landing):
    cli("seed")
    landing.write("usage_events", "2026-11-03", "a.ndjson", ["", "{oops", '{"event_id": "x"}'])
    cli("run", "--log-level", "WARNING")
    rows = json.loads(cli("rejects", "--json").stdout)
    assert rows == [
        {
            "source": "usage_events",
            "file": "usage_events/2026-11-03/a.ndjson",
            "line": 2,
            "reason": "invalid_json",
            "detail": rows[0]["detail"],
        },
        {
            "source": "usage_events",
            "file": "usage_events/2026-11-03/a.ndjson",
            "line": 3,
            "reason": "schema_violation",
            "detail": "org: required field is missing",
        },
    ]
    only = json.loads(cli("rejects", "--json", "--reason", "schema_violation").stdout)
    assert [row["line"] for row in only] == [3]
    assert "invalid_json" in cli("rejects").stdout


def test_rejects_retry_accepts_records_once_their_org_exists(settings, landing):
    cli("seed")
    record = {
        "event_id": "n1",
        "org": "newco",
        "event_type": "api_call",
        "occurred_at": "2026-11-03T10:00:00Z",
    }
    landing.write("usage_events", "2026-11-03", "a.ndjson", [record])
    cli("run", "--log-level", "WARNING")
    assert "nothing" not in cli("rejects", "retry").stdout
    with connect(settings) as conn:
        conn.execute(
            "INSERT INTO organizations (name, slug, tier, status) "
            "VALUES ('NewCo', 'newco', 'FREE', 'ACTIVE')"
        )
    out = cli("rejects", "retry").stdout
    assert "usage_events: retried 1: 1 accepted" in out
    assert json.loads(cli("rejects", "--json").stdout) == []


def test_seed_twice_changes_nothing_and_stores_only_hashes(settings):
    with connect(settings) as conn:  # the test template is seeded: start from no users
        conn.execute("DELETE FROM api_keys")
        conn.execute("DELETE FROM organization_members")
        conn.execute("DELETE FROM users")
    first = cli("seed").stdout
    assert "API key 'Demo CLI key'" in first
    key = first.split("alice@odavl.com: ")[-1].split()[0]
    second = cli("seed").stdout
    assert "reference.json: nothing new" in second and "API key" not in second
    with connect(settings) as conn:
        stored = conn.execute("SELECT key_hash, key_prefix FROM api_keys").fetchall()
        passwords = [p for (p,) in conn.execute("SELECT hashed_password FROM users")]
    import hashlib

    assert stored == [(hashlib.sha256(key.encode()).hexdigest(), key[:8])]
    assert all(p.startswith("pbkdf2_sha256$") for p in passwords)


def test_run_refuses_an_unmigrated_database_with_a_clear_message(settings):
    cli("db", "downgrade", "base")
    result = cli("run", check=False)
    assert result.returncode == 1
    assert "run `odavl-pipeline db upgrade` first" in result.stderr


def test_db_url_prints_the_configured_url(settings):
    assert cli("db", "url").stdout.strip().startswith("postgresql+psycopg://")


def test_a_reader_that_stops_early_gets_no_traceback(tmp_path):
    """`odavl-pipeline quota | head`: the command ends quietly as the pipe closes (here before
    the first line, so that it is sure to write into a closed pipe)."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "odavl_pipeline.cli",
            "generate",
            "--out",
            str(tmp_path / "out"),
            "--reference-out",
            str(tmp_path / "reference.json"),
            "--days",
            "1",
            "--organizations",
            "1",
            "--quiet",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    process.stdout.close()
    stderr = process.stderr.read()
    assert process.wait(timeout=60) == 141 and stderr == ""


def test_quota_explains_what_to_do_before_the_first_run(settings):
    result = cli("quota", check=False)
    assert result.returncode == 1
    assert "run `odavl-pipeline run` first" in result.stderr


def test_rejects_lists_the_newest_first_with_headers_a_total_and_filters(settings, landing):
    cli("seed")
    landing.write("usage_events", "2026-11-02", "old.ndjson", ["{oops"] * 3)
    landing.write("error_events", "2026-11-03", "new.ndjson", ['{"event_id": "e"}', "[1]"])
    cli("run", "--log-level", "WARNING")

    lines = cli("rejects", "--limit", "2").stdout.splitlines()
    assert (
        lines[0] == "2 of 5 quarantined records, newest day first (--limit N shows more, "
        "--json all of them)"
    )
    assert lines[2].split() == ["SOURCE", "REASON", "FILE:LINE", "DETAIL"]
    assert [line.split()[:3] for line in lines[3:5]] == [
        ["error_events", "schema_violation", "error_events/2026-11-03/new.ndjson:1"],
        ["error_events", "schema_violation", "error_events/2026-11-03/new.ndjson:2"],
    ]
    totals = lines[lines.index("by source and reason:") + 1 :]
    assert [line.split() for line in totals] == [
        ["SOURCE", "REASON", "RECORDS"],
        ["error_events", "schema_violation", "2"],
        ["usage_events", "invalid_json", "3"],
        ["total", "5"],
    ]

    for filters, expected in (
        (["--source", "usage_events"], 3),
        (["--day", "2026-11-03"], 2),
        (["--file", "old.nd"], 3),
        (["--reason", "invalid_json"], 3),
        (["--source", "usage_events", "--day", "2026-11-03"], 0),
    ):
        rows = json.loads(cli("rejects", "--json", *filters).stdout)
        assert len(rows) == expected, filters
        assert set(rows[0]) == {"source", "file", "line", "reason", "detail"} if rows else True
    assert (
        cli("rejects", "--day", "2026-11-01").stdout.strip()
        == "no quarantined record matches these filters"
    )
    refused = cli("rejects", "--source", "nope", check=False)
    assert refused.returncode == 1 and "unknown source 'nope': the sources are" in refused.stderr


STAGE = r"\s+\d+\.\d s"  # a stage line ends with its step's seconds


def test_run_prints_a_line_per_stage_then_the_counts_and_json_keeps_its_shape(
    settings, dagster_instance, generated
):
    result = cli("run")
    stderr, stdout = result.stderr.splitlines(), result.stdout.splitlines()
    assert len(stderr) + len(stdout) <= 15, result.stderr + result.stdout
    assert "\r" not in result.stderr and "\x1b" not in result.stderr  # no animation in a pipe
    assert "STEP_WORKER_STARTED" not in result.stderr and " - DEBUG - " not in result.stderr
    assert stderr[0].startswith("ingesting 6 landed days, 2026-11-15 .. 2026-11-20 from ")
    stages = stderr[1:6]
    for row in stdout[1:5]:  # each source's stage line says what its row of the table says
        source, files, _, accepted, _, _, rejected = row.replace(",", "").split()
        [line] = [line for line in stages if line.startswith(f"{source} ")]
        assert re.fullmatch(
            rf"{source}\s+{int(files):,} files\s+{int(accepted):,} rows accepted"
            rf"\s+{int(rejected):,} rejected{STAGE}",
            line,
        )
    assert re.fullmatch(
        rf"marts\s+built {len(MART_ASSETS)} tables, checks passed{STAGE}", stages[4]
    )
    assert re.fullmatch(r"dagster run [0-9a-f-]{36}: success", stderr[6])
    assert stdout[0].split() == [
        "source",
        "files",
        "lines",
        "accepted",
        "duplicate",
        "pending",
        "rejected",
    ]
    assert stdout[-1].startswith("next: `odavl-pipeline quota`")

    rerun = cli("run", "--json")
    counts = json.loads(rerun.stdout)
    assert list(counts) == list(SOURCES)
    assert all(
        list(source) == ["files", "lines", "accepted", "duplicate", "pending", "rejected"]
        for source in counts.values()
    )
    assert re.search(rf"^marts\s+built {len(MART_ASSETS)} tables", rerun.stderr, re.MULTILINE)


def test_run_with_log_level_info_prints_dagster_s_full_log(settings, landing):
    landing.write("usage_events", "2026-11-03", "a.ndjson", [usage("u1"), usage("u2")])
    stderr = cli("run", "--log-level", "INFO").stderr
    assert "usage_events/2026-11-03/a.ndjson: 2 lines" in stderr  # each file's progress
    assert re.search(r" - dagster - INFO - pipeline - .* - marts - marts published in", stderr)
    assert re.search(
        rf"^usage_events\s+1 files\s+2 rows accepted\s+0 rejected{STAGE}$", stderr, re.MULTILINE
    )
    assert "STEP_WORKER_STARTED" not in stderr


def test_run_shows_a_failed_step_with_its_error_and_dagster_s_log_of_it(
    settings, landing, monkeypatch
):
    landing.write("usage_events", "2026-11-03", "a.ndjson", [usage("u1")])
    monkeypatch.setenv("ODAVL_MARTS_PATH", "/proc/no-such-folder/marts.duckdb")
    result = cli("run", check=False)
    assert result.returncode == 1
    assert re.search(
        r"^marts\s+FAILED after \d+\.\d s: FileNotFoundError: .*no-such-folder",
        result.stderr,
        re.MULTILINE,
    )
    # Dagster's own log of the failure (the run's, written by this process before it ends)
    assert " - dagster - ERROR - pipeline - " in result.stderr, result.stderr
    assert "RUN_FAILURE" in result.stderr, result.stderr
    assert re.search(r"^dagster run [0-9a-f-]{36}: FAILED$", result.stderr, re.MULTILINE)


def demo() -> list[str]:
    """`odavl-pipeline demo` on two days of one more organization, standard error within."""
    result = subprocess.run(
        [sys.executable, "-m", "odavl_pipeline.cli", "demo", "--days", "2", "--organizations", "1"],
        check=False,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=os.environ.copy(),
    )
    assert result.returncode == 0, result.stdout[-3000:]
    return result.stdout.splitlines()


def test_demo_ends_with_how_to_open_the_dashboards_and_stays_short(settings, dagster_instance):
    with connect(settings) as conn:  # the test template is seeded: start from no users
        conn.execute("DELETE FROM api_keys")
        conn.execute("DELETE FROM organization_members")
        conn.execute("DELETE FROM users")
    first = demo()
    output = "\n".join(first)
    assert len(first) <= 35, output
    assert " - dagster - " not in output  # no Dagster log line, no progress line
    assert not [line for line in first if re.match(r"\w+ \d{4}-\d\d-\d\d: .* lines in", line)]
    stages = [line.split()[0] for line in first if re.search(STAGE + "$", line)]
    assert sorted(stages[:4]) == sorted(SOURCES) and stages[4:] == ["marts"], output
    assert [line for line in first if line.startswith("  password for alice@odavl.com: ")]
    ending = demo_ending(password_shown=True, key_shown=True)
    assert output.endswith(ending.strip()) and "printed above" in ending  # how to open, as whom
    assert "users set-password alice@odavl.com" in first[-2]

    second = demo()  # the user and the key exist: nothing is printed above, and it says so
    output = "\n".join(second)
    assert len(second) <= 35 and "password for" not in output and "API key '" not in output
    ending = demo_ending(password_shown=False, key_shown=False)
    assert output.endswith(ending.strip()) and "printed above" not in ending
    assert "users set-password alice@odavl.com" in second[-2]


def test_stage_lines_animate_a_status_line_only_on_a_terminal(settings, monkeypatch):
    from odavl_pipeline.orchestration import RunStatus, StepReport
    from odavl_pipeline.output.stages import StageLines

    marts = StepReport(
        "run",
        "marts",
        started=0.0,
        seconds=1.94,
        succeeded=True,
        assets={"usage_daily", "quota_status"},
    )
    for terminal in (True, False):
        stream = io.StringIO()
        stream.isatty = lambda terminal=terminal: terminal
        monkeypatch.setattr(sys, "stderr", stream)
        with StageLines(settings) as stages:
            stages.status(RunStatus(3.2, ["marts"], "usage: 41,765 events read"))
            stages.step_ended(marts)
        shown = stream.getvalue()
        assert shown.endswith(
            "marts             built 2 tables, checks passed  1.9 s\n"
            + ("\x1b[K" if terminal else "")
        )
        assert ("3 s | running marts | usage: 41,765 events read\r" in shown) == terminal
        assert ("\r" in shown) == terminal
