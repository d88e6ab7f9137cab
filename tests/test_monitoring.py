"""Monitoring: the schedules and sensors load and evaluate; a failed run is reported to the log and
to the alert webhook; the billing marts' freshness policy turns them stale when the daily build is
missed (evaluated by Dagster's own freshness daemon)."""

import json
import math
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest

from odavl_pipeline import clock
from odavl_pipeline.alerts import record_alerts
from odavl_pipeline.alerts.http import TIMEOUT_SECONDS
from odavl_pipeline.definitions import defs
from odavl_pipeline.defs.ingest.partitions import landed_days
from odavl_pipeline.defs.ingest.sensors import landing_zone_sensor
from odavl_pipeline.defs.marts.assets import MART_ASSETS, marts
from odavl_pipeline.defs.monitoring.freshness import BILLING_MARTS
from odavl_pipeline.defs.monitoring.quota_alerts import TICK_SECONDS, quota_alert_delivery
from odavl_pipeline.defs.monitoring.sensors import AlertNotDelivered, run_failure_alert
from odavl_pipeline.defs.resources import pipeline_resources
from odavl_pipeline.defs.stripe.schedules import hourly_stripe

from .records import ORG, OTHER_ORG, usage

DAY = "2026-11-03"
RANGE_START = "dagster/asset_partition_range_start"


class Webhook:
    """An HTTP endpoint on loopback that records what is posted to it, answering after `delay`
    seconds."""

    def __init__(self, status: int = 200, delay: float = 0.0):
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((self.path, self.headers["Content-Type"], json.loads(body)))
                time.sleep(delay)
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/T0KEN-SECRET"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook():
    hook = Webhook()
    yield hook
    hook.close()


def test_the_schedules_and_sensors_load_and_evaluate(settings, landing, dagster_instance):
    definitions = defs()
    assert {s.name for s in definitions.schedules} == {"daily_billing", "hourly_stripe"}
    assert {s.name for s in definitions.sensors} == {
        "landing_zone_sensor",
        "api_records_to_marts",
        "run_failure_alert",
        "quota_alert_delivery",
    }
    for running in ("run_failure_alert", "api_records_to_marts", "quota_alert_delivery"):
        assert (
            definitions.resolve_sensor_def(running).default_status == dg.DefaultSensorStatus.RUNNING
        )
    assert (
        definitions.resolve_schedule_def("daily_billing").default_status
        == dg.DefaultScheduleStatus.RUNNING
    )

    landing.write("usage_events", DAY, "a.ndjson", [usage("u1")])
    tick = datetime(2026, 11, 4, 0, 15, tzinfo=UTC)
    with dg.build_schedule_context(
        scheduled_execution_time=tick,
        instance=dagster_instance,
        resources=pipeline_resources(),
    ) as context:
        daily = definitions.resolve_schedule_def("daily_billing").evaluate_tick(context)
    assert [r.tags[RANGE_START] for r in daily.run_requests] == [DAY]
    with dg.build_schedule_context(scheduled_execution_time=tick.replace(minute=20)) as context:
        assert hourly_stripe(context).run_key == "2026-11-04T00:20:00+00:00"

    with dg.build_sensor_context(
        resources=pipeline_resources(), instance=dagster_instance
    ) as context:
        evaluation = landing_zone_sensor(context)
    assert [r.tags[RANGE_START] for r in evaluation.run_requests] == [DAY]

    # their runs carry the jobs' tag, which the run queue limits (dagster.yaml)
    for job in ("pipeline", "ingest"):
        assert definitions.resolve_job_def(job).tags["odavl/ingest"] == "true"


def _failed_run(settings, landing, monkeypatch):
    """A real failed run of the pipeline job: the database has gone away."""
    landing.write("usage_events", DAY, "a.ndjson", [usage("u1")])
    monkeypatch.setenv("ODAVL_DATABASE_URL", "postgresql+psycopg://odavl@127.0.0.1:1/odavl")
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(landed_days.name, [DAY])
    job = defs().resolve_job_def("pipeline")  # its resources from the environment set above
    result = job.execute_in_process(partition_key=DAY, instance=instance, raise_on_error=False)
    assert not result.success
    return instance, result


def _evaluate(instance, result):
    context = dg.build_run_status_sensor_context(
        sensor_name="run_failure_alert",
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        dagster_event=result.get_run_failure_event(),
        resources=pipeline_resources(),
    ).for_run_failure()
    return run_failure_alert(context)


def test_the_failure_sensor_reports_a_failed_run_to_the_log_and_the_webhook(
    settings, landing, monkeypatch, webhook, capfd
):
    instance, result = _failed_run(settings, landing, monkeypatch)
    monkeypatch.setenv("ODAVL_ALERT_WEBHOOK_URL", webhook.url)
    capfd.readouterr()
    _evaluate(instance, result)
    log = capfd.readouterr().err  # the sensor's log (the daemon's, in production)

    [(path, content_type, alert)] = webhook.received
    assert (path, content_type) == ("/hooks/T0KEN-SECRET", "application/json")
    assert alert["run_id"] == result.run_id and alert["job"] == "pipeline"
    assert alert["status"] == "FAILURE" and alert["partitions"] == {"dagster/partition": DAY}
    assert "usage_events" in {step["step"] for step in alert["failed_steps"]}
    assert alert["text"].startswith(
        f"ODAVL pipeline: run {result.run_id} of job pipeline for {DAY} failed: "
    )
    assert "127.0.0.1" in alert["text"]  # the first line of the error: the database refused
    assert alert["text"] in log and "delivered to the webhook (HTTP 200)" in log
    assert "T0KEN-SECRET" not in log  # the webhook URL is a secret, never logged


def test_an_alert_the_webhook_refuses_fails_the_tick_without_leaking_the_url(
    settings, landing, monkeypatch, capfd
):
    instance, result = _failed_run(settings, landing, monkeypatch)
    refusing = Webhook(status=500)
    try:
        monkeypatch.setenv("ODAVL_ALERT_WEBHOOK_URL", refusing.url)
        capfd.readouterr()
        with pytest.raises(AlertNotDelivered, match="HTTP 500") as error:
            _evaluate(instance, result)
    finally:
        refusing.close()
    log = capfd.readouterr().err
    assert len(refusing.received) == 1
    assert "the alert webhook did not take the alert: HTTP 500" in log
    assert "T0KEN-SECRET" not in log + str(error.value)


def test_without_a_webhook_the_failure_goes_to_the_log_only(settings, landing, monkeypatch, capfd):
    instance, result = _failed_run(settings, landing, monkeypatch)
    monkeypatch.delenv("ODAVL_ALERT_WEBHOOK_URL", raising=False)
    capfd.readouterr()
    assert _evaluate(instance, result) is None
    log = capfd.readouterr().err
    assert f"run {result.run_id} of job pipeline for {DAY} failed" in log
    assert "webhook" not in log


def test_the_billing_marts_turn_stale_when_the_daily_build_is_missed(settings):
    # Dagster offers no public way to run its freshness daemon once, on a frozen clock: these
    # are the internals its own tests use, pinned by the dagster version in pyproject.toml.
    from dagster._core.remote_origin import InProcessCodeLocationOrigin
    from dagster._core.test_utils import create_test_daemon_workspace_context, freeze_time
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
    from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
    from dagster._daemon.freshness import FreshnessDaemon

    graph = defs().resolve_asset_graph()
    with_policy = {name for name in MART_ASSETS if graph.get(dg.AssetKey(name)).freshness_policy}
    assert with_policy == set(BILLING_MARTS)

    keys = [dg.AssetKey(name) for name in (*BILLING_MARTS, "error_trends")]
    target = InProcessWorkspaceLoadTarget(
        InProcessCodeLocationOrigin(
            LoadableTargetOrigin(module_name="odavl_pipeline.definitions"), location_name="odavl"
        )
    )
    with dg.instance_for_test() as instance:
        assert dg.materialize([marts], instance=instance, resources=pipeline_resources()).success
        built = datetime.now(UTC)  # Dagster's time: it stamps runs with the system clock

        def states_at(moment: datetime) -> dict[str, str]:
            with (
                freeze_time(moment),
                create_test_daemon_workspace_context(target, instance) as context,
            ):
                list(FreshnessDaemon().run_iteration(context))
            records = instance.get_freshness_state_records(keys)
            return {
                key.path[-1]: records[key].freshness_state.value for key in keys if key in records
            }

        assert states_at(built) == {
            **{name: "PASS" for name in BILLING_MARTS},
            "error_trends": "NOT_APPLICABLE",
        }
        # the next 02:00 UTC deadline but one: no build in the 24 hours before it
        two_days_on = (built + timedelta(days=2)).replace(hour=2, minute=30)
        assert states_at(two_days_on) == {
            **{name: "FAIL" for name in BILLING_MARTS},
            "error_trends": "NOT_APPLICABLE",
        }


@pytest.mark.slow
def test_the_quota_alert_sensor_ends_within_its_tick_whatever_the_webhook(
    settings, conn, monkeypatch
):
    slow = Webhook(delay=9)  # answers within the POST's 10 s, just
    monkeypatch.setenv("ODAVL_ALERT_WEBHOOK_URL", slow.url)
    monkeypatch.setenv("ODAVL_ALERT_WEBHOOK_SECRET", "whsec_tick")
    now = clock.now()
    exceeded = {"used": 500, "quota": 500, "status": "exceeded", "projected": 900, "as_of": now}
    period = {"period_start": now - timedelta(days=1), "period_end": now + timedelta(days=20)}
    rows = [
        {**exceeded, **period, "org": org, "metric": metric, "projected_exhaustion": None}
        for org in (ORG, OTHER_ORG)
        for metric in ("analyses", "fixes", "audits")
    ]
    assert len(record_alerts(conn, rows)) == 12  # 80 % and 100 % each: 108 s of POSTs
    try:
        with dg.build_sensor_context(resources=pipeline_resources()) as context:
            skipped = quota_alert_delivery(context)
    finally:
        slow.close()

    attempts = len(slow.received)  # each started while a whole POST still fit in the budget
    assert 1 <= attempts <= math.floor((TICK_SECONDS - TIMEOUT_SECONDS) / 9) + 1
    assert "out of time, the next call sends the rest" in skipped.skip_message
    untried = conn.execute(
        "SELECT count(*) FROM quota_alert_deliveries WHERE state = 'pending' AND attempts = 0"
    ).fetchone()[0]
    assert untried == 12 - attempts  # left for the next tick
