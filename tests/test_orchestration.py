"""Runs through the instance from Python: the step processes see the environment of their run."""

from datetime import date

import pytest

from odavl_pipeline import orchestration
from odavl_pipeline.db.server import connect
from odavl_pipeline.defs.marts.assets import MART_ASSETS
from odavl_pipeline.ingest.landing import SOURCES

from .conftest import TEMPLATE_DB, _admin
from .records import usage

pytestmark = pytest.mark.slow

DAY = "2026-11-03"


def test_two_runs_in_one_process_each_write_where_their_environment_says(
    settings, landing, database_url, server_url, monkeypatch
):
    landing.write("usage_events", DAY, "a.ndjson", [usage("u1")])
    [first] = orchestration.run_pipeline(settings, [date.fromisoformat(DAY)], "WARNING")
    assert first.success

    other_name = database_url.database + "_other"
    with _admin(server_url) as admin:
        admin.execute(f'CREATE DATABASE "{other_name}" TEMPLATE "{TEMPLATE_DB}"')
    try:
        other_url = database_url.set(database=other_name).render_as_string(hide_password=False)
        other = settings.replace(database_url=other_url)
        monkeypatch.setenv("ODAVL_DATABASE_URL", other_url)
        landing.write("usage_events", DAY, "b.ndjson", [usage("u2"), usage("u3")])
        # the step processes cannot fork from the server the first run started: it has the
        # first database in its environment
        [second] = orchestration.run_pipeline(other, [date.fromisoformat(DAY)], "WARNING")
        assert second.success
        with connect(other) as conn:
            assert conn.execute("SELECT count(*) FROM usage_events").fetchone()[0] == 3
    finally:
        with _admin(server_url) as admin:
            admin.execute(f'DROP DATABASE "{other_name}" WITH (FORCE)')
    with connect(settings) as conn:
        assert conn.execute("SELECT count(*) FROM usage_events").fetchone()[0] == 1


class Heard:
    """A run listener that keeps what it hears."""

    def __init__(self):
        self.steps, self.statuses = [], []

    def step_ended(self, step):
        self.steps.append(step)

    def status(self, status):
        self.statuses.append(status)


def test_the_listener_hears_each_step_end_with_what_it_materialized(
    settings, landing, dagster_instance
):
    landing.write("usage_events", DAY, "a.ndjson", [usage("u1")])
    heard = Heard()
    [result] = orchestration.run_pipeline(
        settings, [date.fromisoformat(DAY)], "WARNING", listener=heard
    )
    assert result.success
    assert [step.step for step in heard.steps][-1] == "marts"
    assert sorted(step.step for step in heard.steps[:-1]) == sorted(SOURCES)
    for step in heard.steps:
        assert (step.run_id, step.succeeded, step.failed_checks) == (result.run_id, True, [])
        assert 0 < step.seconds < 120
    assert heard.steps[-1].assets == set(MART_ASSETS)
    for step in heard.steps[:-1]:  # each source's step, and the landed day it read, if any
        read = {"landing/usage_events"} if step.step == "usage_events" else set()
        assert step.assets == {step.step} | read, step.step
    assert heard.statuses and heard.statuses[-1].seconds > heard.statuses[0].seconds


def test_each_run_checks_the_files_it_ingested_not_the_latest_ones(
    settings, landing, dagster_instance
):
    landing.write("usage_events", DAY, "a.ndjson", [usage("u1"), usage("u2")])
    [first] = orchestration.run_pipeline(settings, [date.fromisoformat(DAY)], "WARNING")
    with connect(settings) as conn:  # a fault in the first run's files: a row gone
        conn.execute("DELETE FROM usage_events WHERE event_id = 'u1'")
    # a second run finds nothing new: its checks are of its own (no) files, not of the first run's
    [second] = orchestration.run_pipeline(settings, [date.fromisoformat(DAY)], "WARNING")

    checks = {
        evaluation.check_name: evaluation
        for evaluation in second.get_asset_check_evaluations()
        if evaluation.asset_key.to_user_string() == "usage_events"
    }
    assert checks["rows_match_ledger"].passed
    assert {evaluation.metadata["ingestion_run"].value for evaluation in checks.values()} == {
        second.run_id
    }
