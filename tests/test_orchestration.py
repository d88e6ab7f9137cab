"""Runs through the instance from Python: the step processes see the environment of their run."""

import dataclasses
from datetime import date

from odavl_pipeline import orchestration
from odavl_pipeline.db.server import connect

from .conftest import TEMPLATE_DB, _admin
from .records import usage

DAY = "2026-11-03"


def test_two_runs_in_one_process_each_write_where_their_environment_says(
        settings, landing, database_url, server_url, monkeypatch):
    landing.write("usage_events", DAY, "a.ndjson", [usage("u1")])
    [first] = orchestration.run_pipeline(settings, [date.fromisoformat(DAY)], "WARNING")
    assert first.success

    other_name = database_url.database + "_other"
    with _admin(server_url) as admin:
        admin.execute(f'CREATE DATABASE "{other_name}" TEMPLATE "{TEMPLATE_DB}"')
    try:
        other_url = database_url.set(database=other_name).render_as_string(hide_password=False)
        other = dataclasses.replace(settings, database_url=other_url)
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
