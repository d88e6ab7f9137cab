"""The sensor that takes records sent to the HTTP API into the marts (defs/marts/sensors.py), with
real Dagster and PostgreSQL: no build while nothing came, one after an API record, none again
once a build took it in; and the plain rules beneath it (ingest/api_backlog.py)."""

import json

import dagster as dg
import pytest

from odavl_pipeline import orchestration
from odavl_pipeline.api import keys, records
from odavl_pipeline.db.server import connect
from odavl_pipeline.definitions import defs
from odavl_pipeline.defs.marts.sensors import (
    EVALUATION_SECONDS,
    SENSOR_NAME,
    SENSOR_NAME_TAG,
    api_records_to_marts,
)
from odavl_pipeline.defs.resources import pipeline_resources
from odavl_pipeline.ingest.api_backlog import (
    ApiBacklog,
    api_backlog,
    build_skip_reason,
    marts_cut,
)
from odavl_pipeline.marts.build import refresh_marts
from odavl_pipeline.marts.store import open_marts

from .records import ORG, error, usage

pytestmark = pytest.mark.clock("2026-11-20T12:00:00Z")
OCCURRED = "2026-11-20T11:30:00Z"


@pytest.fixture
def alice(settings):
    """A key of alice, OWNER of odavl-test-org, that may send usage and error events."""
    with connect(settings) as conn:
        key, _ = keys.create(conn, "alice@odavl.com", "sensor", ["usage:write", "insight:write"])
        return keys.holder(conn, key)


def send(settings, holder, source: str, sent: list) -> dict[str, int]:
    with connect(settings) as conn:
        outcome = records.take_records(
            conn, holder, source, sent, json.dumps(sent).encode(), "application/json"
        )
    return outcome.counts()


def evaluate(instance, cursor: str | None = None):
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, resources=pipeline_resources()
    ) as context:
        return api_records_to_marts(context)


def skipped(evaluation) -> str:
    assert isinstance(evaluation, dg.SkipReason), evaluation
    return evaluation.skip_message


def used(settings, org: str) -> int:
    with open_marts(settings.marts_path) as marts:
        return marts.execute(
            "SELECT coalesce(sum(quantity), 0) FROM usage_daily WHERE org = ?", [org]
        ).fetchone()[0]


def backlog(settings, received_before=None) -> ApiBacklog:
    with connect(settings) as conn:
        return api_backlog(conn, marts_cut(settings.marts_path), received_before)


def test_the_sensor_is_on_by_default_every_minute_and_builds_with_the_marts_job():
    sensor = defs().resolve_sensor_def(SENSOR_NAME)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert sensor.job_name == "rebuild_marts"
    # requested within a minute, built by the next run: in the marts well within five minutes
    assert sensor.minimum_interval_seconds == EVALUATION_SECONDS <= 60


def test_an_api_record_requests_one_build_and_none_once_a_build_took_it_in(
    settings, dagster_instance, alice
):
    assert "hold every record" in skipped(evaluate(dagster_instance))

    sent = [usage("api-1", quantity=3, occurred_at=OCCURRED)]
    assert send(settings, alice, "usage_events", sent)["accepted"] == 1
    first = evaluate(dagster_instance)
    [request] = first.run_requests
    assert request.run_key == f"api-records:{first.cursor}"
    # a second evaluation with nothing new asks for nothing (and its run key would be the same)
    assert "requested for these 1 API request(s)" in skipped(
        evaluate(dagster_instance, first.cursor)
    )

    # the run the daemon launches for the request, recorded in the instance as it records it
    built = orchestration.rebuild_marts(
        settings, {SENSOR_NAME_TAG: SENSOR_NAME, "dagster/run_key": request.run_key}
    )
    assert built.success
    assert used(settings, ORG) == 3
    assert "hold every record" in skipped(evaluate(dagster_instance, first.cursor))

    # a request that brings nothing new (a duplicate) changes no mart: no build
    assert send(settings, alice, "usage_events", sent)["duplicate"] == 1
    assert "hold every record" in skipped(evaluate(dagster_instance, first.cursor))
    # any source's records go to the marts
    assert send(settings, alice, "error_events", [error("e-1", occurred_at=OCCURRED)]) == {
        "accepted": 1,
        "duplicate": 0,
        "pending": 0,
        "rejected": 0,
    }
    [after] = evaluate(dagster_instance, first.cursor).run_requests
    assert after.run_key != request.run_key


def test_while_its_build_is_under_way_new_records_wait_for_it(settings, dagster_instance, alice):
    send(settings, alice, "usage_events", [usage("api-1", occurred_at=OCCURRED)])
    first = evaluate(dagster_instance)
    [request] = first.run_requests
    building = dagster_instance.create_run_for_job(
        defs().resolve_job_def("rebuild_marts"),
        status=dg.DagsterRunStatus.STARTED,
        tags={SENSOR_NAME_TAG: SENSOR_NAME, "dagster/run_key": request.run_key},
    )
    try:
        send(settings, alice, "usage_events", [usage("api-2", occurred_at=OCCURRED)])
        waiting = skipped(evaluate(dagster_instance, first.cursor))
        assert waiting.startswith(f"run {building.run_id} of rebuild_marts")
        assert "2 API request(s) (2 record(s))" in waiting
    finally:
        dagster_instance.delete_run(building.run_id)  # the instance is shared by the session
    # that run gone without building (deleted here), the requests ask for a build again
    [again] = evaluate(dagster_instance, first.cursor).run_requests
    assert again.run_key != request.run_key


def test_the_backlog_is_the_requests_received_after_the_published_marts_cut(settings, alice):
    assert marts_cut(settings.marts_path) is None  # no marts: every request counts
    assert backlog(settings) == ApiBacklog(None, 0, 0, None, None)
    send(settings, alice, "usage_events", [usage("api-1", quantity=5, occurred_at=OCCURRED)])
    before_the_build = backlog(settings)
    assert (before_the_build.requests, before_the_build.records) == (1, 1)

    refresh_marts(settings)
    cut = marts_cut(settings.marts_path)
    assert cut is not None and cut > before_the_build.oldest
    assert backlog(settings) == ApiBacklog(cut, 0, 0, None, None)

    sent = [usage("api-2", occurred_at=OCCURRED), usage("api-3", occurred_at=OCCURRED)]
    send(settings, alice, "usage_events", sent)
    after = backlog(settings)
    assert (after.cut, after.requests, after.records) == (cut, 1, 2)
    assert after.oldest >= cut and after.key != before_the_build.key
    assert backlog(settings, received_before=after.oldest).requests == 0

    (settings.marts_path).write_bytes(b"not a marts file" * 100)
    assert marts_cut(settings.marts_path) is None


def test_a_build_is_requested_for_new_requests_only_and_not_while_one_is_under_way():
    none = ApiBacklog(None, 0, 0, None, None)
    some = ApiBacklog(None, 2, 3, None, 41)
    assert build_skip_reason(none, None, None).startswith("the marts hold every record")
    assert build_skip_reason(none, some.key, "run-1").startswith("the marts hold every record")
    assert build_skip_reason(some, None, None) is None
    assert build_skip_reason(some, "older", None) is None  # other requests than asked for
    assert "requested for these 2 API request(s) (3 record(s)) already" in build_skip_reason(
        some, some.key, None
    )
    assert build_skip_reason(some, "older", "run-1").startswith("run run-1 of rebuild_marts")
