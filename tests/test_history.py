"""Old history: every day from 1970-01-01 on is a partition, and `run` backfills it end to end."""

import json
from datetime import UTC, datetime, timedelta

import dagster as dg

from odavl_pipeline import orchestration
from odavl_pipeline.cli import main
from odavl_pipeline.definitions import defs
from odavl_pipeline.defs.ingest.assets import ingest_assets
from odavl_pipeline.defs.ingest.partitions import daily_partitions
from odavl_pipeline.defs.ingest.sensors import landing_zone_sensor
from odavl_pipeline.defs.marts.assets import marts
from odavl_pipeline.defs.marts.schedules import daily_billing
from odavl_pipeline.defs.resources import OdavlResource

from .marts_helpers import rows
from .records import ORG, OTHER_ORG, attestation, audit, error, usage

FIRST_DAY = "1970-01-01"
OLD_DAYS = ("2019-03-01", "2019-03-02")


def tomorrow() -> str:
    return (datetime.now(UTC).date() + timedelta(days=1)).isoformat()


def test_the_definitions_load_with_partitions_from_1970_to_tomorrow():
    dg.Definitions.validate_loadable(defs)
    assert defs.resolve_job_def("pipeline").partitions_def == daily_partitions
    assert all(asset.partitions_def == daily_partitions for asset in [*ingest_assets, marts])
    assert daily_partitions.get_first_partition_key() == FIRST_DAY
    assert daily_partitions.has_partition_key(tomorrow())  # the landing zone takes tomorrow
    assert not daily_partitions.has_partition_key("1969-12-31")
    window = daily_partitions.time_window_for_partition_key(FIRST_DAY)
    assert (window.start, window.end) == (datetime(1970, 1, 1, tzinfo=UTC),
                                          datetime(1970, 1, 2, tzinfo=UTC))


def test_the_sensor_and_the_schedule_ask_for_valid_partitions(settings, landing):
    landing.write("usage_events", FIRST_DAY, "a.ndjson",
                  [usage("u1", occurred_at=f"{FIRST_DAY}T10:00:00Z")])
    landing.write("usage_events", tomorrow(), "a.ndjson", [usage("u2")])
    with dg.build_sensor_context(resources={"odavl": OdavlResource()}) as context:
        requested = {request.partition_key for request in landing_zone_sensor(context).run_requests}
    assert requested == {FIRST_DAY, tomorrow()}
    context = dg.build_schedule_context(
        scheduled_execution_time=datetime(1970, 1, 2, 0, 15, tzinfo=UTC))
    assert daily_partitions.has_partition_key(daily_billing(context).partition_key)


def land_history(landing, day: str, **attestation_fields) -> None:
    """One file of each source on `day`, its records of that day; each day's attestation starts
    the chain of another project."""
    moment = f"{day}T10:00:00Z"
    landing.write("usage_events", day, "a.ndjson",
                  [usage(f"u-{day}", occurred_at=moment, quantity=5)])
    landing.write("error_events", day, "a.ndjson", [error(f"e-{day}", occurred_at=moment)])
    landing.write("fix_attestations", day, "a.ndjson",
                  [attestation(f"f-{day}", created_at=moment, **attestation_fields)])
    landing.write("audit_results", day, "a.ndjson", [audit(f"a-{day}", occurred_at=moment)])


def run(capsys, *args: str) -> dict:
    assert main(["run", *args, "--json", "--log-level", "WARNING"]) == 0
    return json.loads(capsys.readouterr().out)


def check_results(settings) -> dict[tuple[str, str], bool]:
    """The asset checks of the latest run: (asset, check) -> passed."""
    instance = orchestration.instance(settings)
    [latest] = instance.get_runs(limit=1)
    records = instance.get_records_for_run(
        latest.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION, limit=1000).records
    evaluations = [record.event_log_entry.dagster_event.event_specific_data for record in records]
    return {(e.asset_key.path[-1], e.check_name): e.passed for e in evaluations}


def billed_on(settings, day: str) -> list[tuple]:
    return rows(settings, "SELECT metric, used FROM billing_periods WHERE org = ? "
                "AND period_start <= ?::TIMESTAMPTZ AND ?::TIMESTAMPTZ < period_end "
                "AND metric = 'analyses'", [ORG, day, day])


def test_run_backfills_history_from_2019_and_from_1970(settings, landing, capsys):
    land_history(landing, OLD_DAYS[0], project="web-app")
    land_history(landing, OLD_DAYS[1], project="api-backend")
    land_history(landing, FIRST_DAY, org=OTHER_ORG, project="mobile-app")

    counts = run(capsys, "--start", "2019-01-01")

    assert {source: (c["files"], c["accepted"]) for source, c in counts.items()} == {
        source: (2, 2) for source in counts}
    assert rows(settings, "SELECT day::VARCHAR, quantity FROM usage_daily WHERE org = ? "
                "ORDER BY day", [ORG]) == [(day, 5) for day in OLD_DAYS]
    assert billed_on(settings, OLD_DAYS[0]) == [("analyses", 10)]
    assert rows(settings, "SELECT sum(events) FROM error_trends") == [(2,)]
    assert rows(settings, "SELECT sum(fixes) FROM fix_outcomes") == [(2,)]
    assert rows(settings, "SELECT sum(audits) FROM audit_scores") == [(2,)]
    results = check_results(settings)
    assert results and all(results.values()), results
    assert {("usage_daily", "matches_postgres"), ("billing_periods", "matches_postgres"),
            ("usage_daily", "rows_left_out")} <= set(results)

    counts = run(capsys, "--end", FIRST_DAY)

    assert counts["usage_events"]["accepted"] == 1
    assert rows(settings, "SELECT day::VARCHAR, quantity FROM usage_daily WHERE org = ? "
                "ORDER BY day", [ORG]) == [(FIRST_DAY, 5), *((day, 5) for day in OLD_DAYS)]
    assert billed_on(settings, FIRST_DAY) == [("analyses", 5)]
    assert billed_on(settings, OLD_DAYS[0]) == [("analyses", 10)]
    results = check_results(settings)
    assert results and all(results.values()), results
