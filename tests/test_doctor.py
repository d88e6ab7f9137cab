"""`odavl-pipeline doctor` on a healthy setup, and on each problem it claims to detect."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import duckdb
import pytest
from psycopg import sql

from odavl_pipeline import clock, doctor
from odavl_pipeline.db import migrate
from odavl_pipeline.marts.build import refresh_marts

from .conftest import _admin
from .processes import descendants
from .records import usage

DAY = "2026-11-03"


@pytest.fixture
def healthy(settings, landing, monkeypatch):
    """A migrated, seeded database, landed files and freshly built marts; the environment as the
    command line sees it (the Dagster variables are restored after the test)."""
    landing.write("usage_events", DAY, "a.ndjson", [usage("u1")])
    refresh_marts(settings)
    _end_runs_left_stuck(settings)
    monkeypatch.setenv("DAGSTER_HOME", str(settings.dagster_home))
    monkeypatch.setenv("ODAVL_DAGSTER_URL", "set by odavl-pipeline")
    monkeypatch.delenv("ODAVL_ALERT_WEBHOOK_URL", raising=False)
    for name in ("STRIPE_API_KEY", "STRIPE_API_BASE", "STRIPE_WEBHOOK_SECRET"):
        monkeypatch.delenv(name, raising=False)
    return settings


def _end_runs_left_stuck(settings) -> None:
    """The runs that earlier tests killed (their instance is shared) are marked failed, as the
    daemon's run monitoring would: no run here is stuck."""
    import dagster as dg

    from odavl_pipeline import orchestration

    instance = orchestration.instance(settings)
    for run in instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
        if instance.run_launcher.check_run_worker_health(run).status.value == "FAILED":
            instance.report_run_failed(run, "left by an earlier test")


def findings(**changes: str | None) -> dict[str, doctor.Finding]:
    env = {**os.environ, **{k: v for k, v in changes.items() if v is not None}}
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
    return {finding.check: finding for finding in doctor.run_checks(env)}


def statuses(found: dict[str, doctor.Finding]) -> dict[str, str]:
    return {check: finding.status for check, finding in found.items()}


def doctor_cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "odavl_pipeline.cli", "doctor", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )


@pytest.mark.stripe
def test_a_healthy_setup_with_stripe_passes_every_check(healthy, stripe_settings):
    result = doctor_cli("--json")
    assert result.returncode == 0, result.stdout + result.stderr
    found = {f["check"]: f for f in json.loads(result.stdout)}
    # the runs of earlier tests (the instance is shared) may have failed in the last day
    assert found.pop("runs")["status"] in {"ok", "warning"}
    assert {check: f["status"] for check, f in found.items()} == {
        "configuration": "ok",
        "database": "ok",
        "migrations": "ok",
        "dagster": "warning",  # no daemon runs in this test: said, but not a problem
        "closes": "ok",
        "landing": "ok",
        "marts": "ok",
        "stripe": "ok",
        "stripe events": "ok",
        "api": "ok",
    }
    assert "no dagster-daemon heartbeat" in found["dagster"]["summary"]
    assert "1 files over 1 days (2026-11-03 .. 2026-11-03)" in found["landing"]["summary"]
    assert (
        found["stripe"]["summary"]
        == f"key accepted by {stripe_settings.stripe_api_base}; webhook secret set"
    )
    text = doctor_cli().stdout
    assert "PROBLEM" not in text and "-> start `odavl-pipeline ui`" in text
    secrets = (
        stripe_settings.stripe_api_key.get_secret_value(),
        stripe_settings.stripe_webhook_secret.get_secret_value(),
    )
    assert not any(secret in result.stdout + text for secret in secrets)


def test_an_unreachable_database_is_a_problem_and_skips_what_needs_it(healthy):
    url = "postgresql+psycopg://odavl:hunter2@127.0.0.1:1/odavl"
    result = doctor_cli(ODAVL_DATABASE_URL=url)
    assert result.returncode == 1
    assert (
        "PROBLEM  database       cannot connect to postgresql+psycopg://odavl:***@127.0.0.1:1/odavl"
        in result.stdout
    )
    assert "-> check that the server is running and reachable" in result.stdout
    assert "hunter2" not in result.stdout + result.stderr
    found = findings(ODAVL_DATABASE_URL=url)
    assert (found["migrations"].status, found["dagster"].status) == ("skipped", "skipped")
    assert found["api"].status == "skipped"
    assert found["marts"].status == "ok"  # the files are still checked


def test_a_database_not_migrated_or_behind(healthy):
    url = healthy.database_url.get_secret_value()
    migrate.downgrade(url, "base")
    found = findings()["migrations"]
    assert (found.status, found.summary, found.fix) == (
        "problem",
        "the database is not migrated (no revision)",
        "run `odavl-pipeline db upgrade`",
    )
    migrate.upgrade(url, "0001")
    found = findings()["migrations"]
    assert found.status == "problem" and found.summary.startswith(
        "the database is at revision 0001"
    )
    migrate.upgrade(url)
    assert findings()["migrations"].status == "ok"


def test_landing_zone_missing_not_a_folder_or_with_misplaced_files(healthy, tmp_path):
    missing = findings(ODAVL_LANDING_DIR=str(tmp_path / "nowhere"))["landing"]
    assert missing.status == "problem" and "does not exist" in missing.summary
    assert missing.fix.startswith(f"create it (`mkdir -p {tmp_path / 'nowhere'}`)")
    (tmp_path / "a-file").write_text("")
    assert findings(ODAVL_LANDING_DIR=str(tmp_path / "a-file"))["landing"].status == "problem"
    typo = healthy.landing_dir / "usage-events" / "2026-11-03"  # a producer's typo
    typo.mkdir(parents=True)
    (typo / "a.ndjson").write_text("{}\n")
    (healthy.landing_dir / "usage_events" / "2026-13-45").mkdir(parents=True)
    (healthy.landing_dir / "usage_events" / "2026-13-45" / "b.ndjson").write_text("{}\n")
    (healthy.landing_dir / "usage_events" / ".c.ndjson.tmp").write_text("")  # in progress: waits
    stray = findings()["landing"]
    assert stray.status == "warning" and "2 misplaced file(s)" in stray.summary
    assert "usage-events/2026-11-03/a.ndjson (not in a source folder" in stray.summary
    assert "usage_events/2026-13-45/b.ndjson (not in a day folder" in stray.summary


def test_marts_missing_stale_or_unreadable(healthy, tmp_path):
    absent = findings(ODAVL_MARTS_PATH=str(tmp_path / "none.duckdb"))["marts"]
    assert (absent.status, absent.fix) == ("problem", "run `odavl-pipeline run` to build them now")

    with duckdb.connect(str(healthy.marts_path)) as marts:  # as if the last build were 3 days old
        marts.execute("UPDATE _meta SET built_at = ?", [clock.now() - timedelta(days=3)])
    stale = findings()["marts"]
    assert stale.status == "problem" and stale.summary.startswith("stale: ")
    assert "daily_billing (00:15 UTC) has not rebuilt them" in stale.fix
    refresh_marts(healthy)
    assert findings()["marts"].status == "ok"

    garbage = tmp_path / "garbage.duckdb"
    garbage.write_bytes(b"not a database" * 1000)
    unreadable = findings(ODAVL_MARTS_PATH=str(garbage))["marts"]
    assert unreadable.status == "problem" and "cannot be read" in unreadable.summary


@pytest.mark.clock("2026-11-20T12:00:00Z")
def test_api_records_not_in_the_marts_ten_minutes_after_they_came_are_a_warning(
    healthy, clock_at, tmp_path
):
    from odavl_pipeline.api import keys, records
    from odavl_pipeline.db.server import connect

    with connect(healthy) as conn:  # the seeds hold one active key
        key, _ = keys.create(conn, "alice@odavl.com", "a day", ["usage:write"], expires_days=1)
        alice = keys.holder(conn, key)
        _, revoked = keys.create(conn, "alice@odavl.com", "revoked", ["usage:write"])
        keys.revoke(conn, revoked["prefix"])
        sent = [usage("api-1", quantity=2, occurred_at="2026-11-20T11:55:00Z")]
        for _ in range(2):  # the second request brings nothing new: a duplicate
            records.take_records(conn, alice, "usage_events", sent, b"[]", "application/json")
    found = findings()["api"]
    assert (found.status, found.summary) == (
        "ok",
        "1 API request(s) of the last 10 min wait for the next marts build; "
        "keys: 2 active, 0 expired, 1 revoked",
    )

    with connect(healthy) as conn:
        [received] = conn.execute("SELECT min(received_at) FROM api_requests").fetchone()
    with duckdb.connect(str(healthy.marts_path), read_only=True) as marts:
        [cut] = marts.execute("SELECT max(as_of) FROM quota_status").fetchone()

    clock_at("2026-11-20T12:15:00Z")  # no build took it in: the sensor should have built
    found = findings()["api"]
    assert found.status == "warning"
    assert found.summary.startswith(
        f"1 API request(s) (1 record(s)) received from {received.astimezone(UTC):%Y-%m-%d %H:%M} "
        f"UTC on are not in the marts 10 min later (the marts took usage in up to "
        f"{cut.astimezone(UTC):%Y-%m-%d %H:%M} UTC)"
    )
    assert "the sensor api_records_to_marts" in found.fix
    without_marts = findings(ODAVL_MARTS_PATH=str(tmp_path / "none.duckdb"))["api"]
    assert without_marts.status == "warning" and "(no marts to read)" in without_marts.summary

    refresh_marts(healthy)
    assert findings()["api"].summary.startswith("no API request waits for the marts")
    clock_at("2026-11-21T12:30:00Z")
    assert findings()["api"].summary.endswith("keys: 1 active, 1 expired, 1 revoked")


def test_the_staleness_rule_is_the_freshness_policy():
    now = datetime(2026, 11, 5, 3, 0, tzinfo=UTC)  # the latest deadline: 2026-11-05 02:00
    assert not doctor.is_stale(datetime(2026, 11, 4, 2, 0, tzinfo=UTC), now)
    assert doctor.is_stale(datetime(2026, 11, 4, 1, 59, tzinfo=UTC), now)
    early = datetime(2026, 11, 5, 1, 0, tzinfo=UTC)  # before today's deadline: yesterday's counts
    assert not doctor.is_stale(datetime(2026, 11, 3, 2, 0, tzinfo=UTC), early)


@pytest.mark.stripe
def test_stripe_half_configured_or_unreachable(healthy, stripe_settings):
    key, secret, base = (
        stripe_settings.stripe_api_key.get_secret_value(),
        stripe_settings.stripe_webhook_secret.get_secret_value(),
        stripe_settings.stripe_api_base,
    )
    cases = {
        "STRIPE_API_KEY set, STRIPE_WEBHOOK_SECRET not": dict(STRIPE_WEBHOOK_SECRET=None),
        "STRIPE_WEBHOOK_SECRET set, STRIPE_API_KEY not": dict(
            STRIPE_API_KEY=None, STRIPE_API_BASE=None
        ),
        "STRIPE_API_BASE set, STRIPE_API_KEY not": dict(
            STRIPE_API_KEY=None, STRIPE_WEBHOOK_SECRET=None
        ),
        "not a secret or restricted key": dict(STRIPE_API_KEY="pk_test_123"),
        "not a list of signing secrets": dict(STRIPE_WEBHOOK_SECRET="secret"),
        "http://127.0.0.1:1 cannot be reached": dict(STRIPE_API_BASE="http://127.0.0.1:1"),
    }
    for expected, changes in cases.items():
        found = findings(**changes)["stripe"]
        assert found.status == "problem" and expected in found.summary, (expected, found)
        assert found.fix
        assert key not in found.summary + found.fix and secret not in found.summary + found.fix
    assert findings()["stripe"].summary == f"key accepted by {base}; webhook secret set"
    assert (
        findings(STRIPE_API_KEY=None, STRIPE_API_BASE=None, STRIPE_WEBHOOK_SECRET=None)[
            "stripe"
        ].status
        == "ok"
    )


def test_configuration_problems_stop_the_other_checks(healthy):
    result = doctor_cli(ODAVL_BILLING_GRACE_MINUTES="soon")
    assert result.returncode == 1
    assert (
        "PROBLEM  configuration  ODAVL_BILLING_GRACE_MINUTES must be a number of minutes"
        in result.stdout
    )
    found = findings(ODAVL_BILLING_GRACE_MINUTES="soon")
    assert set(statuses(found).values()) == {"problem", "skipped"}
    assert (
        findings(ODAVL_DATABASE_URL="sqlite:///x.db")["configuration"].summary
        == "ODAVL_DATABASE_URL is a sqlite URL, not PostgreSQL"
    )
    assert findings(ODAVL_ALERT_WEBHOOK_URL="hooks.example/x")["configuration"].status == "problem"
    ok = findings(ODAVL_ALERT_WEBHOOK_URL="https://hooks.example/T0KEN")["configuration"]
    assert ok.status == "ok" and "T0KEN" not in ok.summary


def test_a_dagster_instance_outside_postgres_is_a_problem(healthy):
    healthy.dagster_home.mkdir(parents=True, exist_ok=True)
    (healthy.dagster_home / "dagster.yaml").write_text(
        "storage:\n  sqlite:\n    base_dir: /tmp/x\n"
    )
    found = findings()["dagster"]
    assert found.status == "problem" and "would not share one history" in found.summary


@pytest.mark.slow
def test_a_run_whose_process_is_gone_is_stuck_until_run_monitoring_fails_it(healthy):
    import logging

    import dagster as dg
    from dagster._daemon.monitoring.run_monitoring import monitor_started_run

    from odavl_pipeline import orchestration
    from odavl_pipeline.db.locks import source_lock
    from odavl_pipeline.db.server import connect

    instance = orchestration.instance(healthy)
    since = datetime.now(UTC)
    with connect(healthy) as blocker:  # the run's usage_events step waits for the source
        blocker.execute("SELECT pg_advisory_lock(hashtext(%s))", (source_lock("usage_events"),))
        run = subprocess.Popen(
            [sys.executable, "-m", "odavl_pipeline.cli", "run"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=os.environ.copy(),
        )
        while not blocker.execute("SELECT count(*) FROM pg_locks WHERE NOT granted").fetchone()[0]:
            assert run.poll() is None
            time.sleep(0.5)
        [record] = instance.get_run_records(
            dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED], created_after=since)
        )
        assert findings()["runs"].status in {"ok", "warning"}  # alive: not stuck
        for pid in descendants(run.pid):
            with contextlib.suppress(ProcessLookupError):  # one that ended meanwhile
                os.kill(pid, signal.SIGKILL)
        run.kill()
        run.wait()

    stuck = findings()["runs"]
    assert stuck.status == "problem" and f"{record.dagster_run.run_id} (pipeline, STARTED)" in (
        stuck.summary
    )
    assert "run monitoring marks them failed" in stuck.fix
    # the daemon's run monitoring, on this run: failed, it is listed among the failed runs
    monitor_started_run(instance, None, record, logging.getLogger("test"))
    failed = findings()["runs"]
    assert failed.status == "warning" and record.dagster_run.run_id in failed.summary


@pytest.fixture
def own_dagster_storage(settings, server_url, monkeypatch):
    """The settings' Dagster instance on a database of its own (an operator's dagster.yaml, which
    odavl-pipeline leaves alone): the daemon heartbeats a test writes reach no other test."""
    name = f"odavl_dagster_{uuid.uuid4().hex[:12]}"
    with _admin(server_url) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = server_url.set(database=name, drivername="postgresql+psycopg2")
    settings.dagster_home.mkdir(parents=True)
    (settings.dagster_home / "dagster.yaml").write_text(
        "storage:\n  postgres:\n    postgres_url: "
        + json.dumps(url.render_as_string(hide_password=False))
        + "\n"
    )
    for name_set_by_the_instance in ("DAGSTER_HOME", "ODAVL_DAGSTER_URL"):
        monkeypatch.setenv(name_set_by_the_instance, "restored after the test")
    yield settings
    with _admin(server_url) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.mark.clock("2031-06-15T08:00:00Z")
def test_the_daemon_counts_as_stopped_two_minutes_after_its_last_heartbeat(own_dagster_storage):
    """The daemon heartbeats every 30 s; its times are on the system clock, the one clock moved
    years away from it here."""
    from dagster._daemon.types import DaemonHeartbeat

    from odavl_pipeline import orchestration

    settings = own_dagster_storage
    instance = orchestration.instance(settings)
    first = doctor.check_dagster(settings, clock.now())
    assert first.status == "warning" and "(none recorded)" in first.summary

    def last_heartbeat(age: timedelta) -> doctor.Finding:
        """Doctor's finding when the daemon's last heartbeat was `age` ago."""
        now = clock.now()
        on_the_system_clock = now - clock.offset() - age
        instance.add_daemon_heartbeat(
            DaemonHeartbeat(on_the_system_clock.timestamp(), "SENSOR", "odavl-test")
        )
        return doctor.check_dagster(settings, now)

    alive = last_heartbeat(timedelta(seconds=30))
    assert alive.status == "ok"
    assert alive.summary.endswith("; daemon alive (last heartbeat 30 s ago)")
    late = last_heartbeat(timedelta(seconds=110))  # a heartbeat missed, the daemon busy
    assert late.status == "ok"
    stopped = last_heartbeat(timedelta(minutes=3))
    assert stopped.status == "warning"
    assert "no dagster-daemon heartbeat in the last 2 min (the last 3 min ago)" in stopped.summary
    assert "start `odavl-pipeline ui`" in stopped.fix
