"""Old history: any day from 1970-01-01 on can land; its day becomes a partition, and `run`
backfills it end to end in one run."""

import json
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from odavl_pipeline import clock
from odavl_pipeline.definitions import defs
from odavl_pipeline.defs.ingest.assets import ingest_assets, landing_specs
from odavl_pipeline.defs.ingest.partitions import landed_days
from odavl_pipeline.defs.ingest.sensors import landing_zone_sensor
from odavl_pipeline.defs.marts.assets import marts
from odavl_pipeline.defs.marts.schedules import daily_billing
from odavl_pipeline.defs.resources import pipeline_resources

from .commands import cli
from .marts_helpers import rows
from .records import ORG, OTHER_ORG, attestation, audit, error, usage

FIRST_DAY = "1970-01-01"
OLD_DAYS = ("2019-03-01", "2019-03-02")
RANGE_TAGS = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")


def test_the_partitions_are_the_landed_days_and_the_marts_have_none():
    definitions = defs()
    dg.Definitions.validate_loadable(definitions)
    assert definitions.resolve_job_def("pipeline").partitions_def == landed_days
    assert all(asset.partitions_def == landed_days for asset in ingest_assets)
    assert all(spec.partitions_def == landed_days for spec in landing_specs)
    assert marts.partitions_def is None  # its change marks say what to rebuild


def test_the_sensor_and_the_schedule_register_1970_and_tomorrow(
    settings, landing, dagster_instance
):
    tomorrow = (clock.today() + timedelta(days=1)).isoformat()  # the latest day that can land
    landing.write(
        "usage_events", FIRST_DAY, "a.ndjson", [usage("u1", occurred_at=f"{FIRST_DAY}T10:00:00Z")]
    )
    landing.write("usage_events", tomorrow, "a.ndjson", [usage("u2")])
    with dg.build_sensor_context(
        resources=pipeline_resources(), instance=dagster_instance
    ) as context:
        evaluation = landing_zone_sensor(context)
    [added] = evaluation.dynamic_partitions_requests
    assert added.partition_keys == [FIRST_DAY, tomorrow]
    assert [tuple(r.tags[tag] for tag in RANGE_TAGS) for r in evaluation.run_requests] == [
        (FIRST_DAY, tomorrow)
    ]

    with dg.build_schedule_context(
        instance=dagster_instance,
        resources=pipeline_resources(),
        scheduled_execution_time=datetime(2026, 11, 4, 0, 15, tzinfo=UTC),
    ) as context:
        [request] = daily_billing(context)  # both days are new to the ledger
    assert tuple(request.tags[tag] for tag in RANGE_TAGS) == (FIRST_DAY, tomorrow)
    assert dagster_instance.get_dynamic_partitions(landed_days.name) == [FIRST_DAY, tomorrow]


def land_history(landing, day: str, **attestation_fields) -> None:
    """One file of each source on `day`, its records of that day; each day's attestation starts
    the chain of another project."""
    moment = f"{day}T10:00:00Z"
    landing.write(
        "usage_events", day, "a.ndjson", [usage(f"u-{day}", occurred_at=moment, quantity=5)]
    )
    landing.write("error_events", day, "a.ndjson", [error(f"e-{day}", occurred_at=moment)])
    landing.write(
        "fix_attestations",
        day,
        "a.ndjson",
        [attestation(f"f-{day}", created_at=moment, **attestation_fields)],
    )
    landing.write("audit_results", day, "a.ndjson", [audit(f"a-{day}", occurred_at=moment)])


def run(*args: str) -> dict:
    return json.loads(cli("run", *args, "--json", "--log-level", "WARNING").stdout)


def check_results(instance: dg.DagsterInstance) -> dict[tuple[str, str], bool]:
    """The asset checks of the latest run: (asset, check) -> passed."""
    [latest] = instance.get_runs(limit=1)
    records = instance.get_records_for_run(
        latest.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION, limit=1000
    ).records
    evaluations = [record.event_log_entry.dagster_event.event_specific_data for record in records]
    return {(e.asset_key.path[-1], e.check_name): e.passed for e in evaluations}


def billed_on(settings, day: str) -> list[tuple]:
    return rows(
        settings,
        "SELECT metric, used FROM billing_periods WHERE org = ? "
        "AND period_start <= ?::TIMESTAMPTZ AND ?::TIMESTAMPTZ < period_end "
        "AND metric = 'analyses'",
        [ORG, day, day],
    )


@pytest.mark.slow
def test_run_backfills_history_from_2019_and_from_1970(settings, landing, dagster_instance):
    land_history(landing, OLD_DAYS[0], project="web-app")
    land_history(landing, OLD_DAYS[1], project="api-backend")
    land_history(landing, FIRST_DAY, org=OTHER_ORG, project="mobile-app")

    counts = run("--start", "2019-01-01")

    assert {source: (c["files"], c["accepted"]) for source, c in counts.items()} == {
        source: (2, 2) for source in counts
    }
    assert rows(
        settings, "SELECT day::VARCHAR, quantity FROM usage_daily WHERE org = ? ORDER BY day", [ORG]
    ) == [(day, 5) for day in OLD_DAYS]
    assert billed_on(settings, OLD_DAYS[0]) == [("analyses", 10)]
    assert rows(settings, "SELECT sum(events) FROM error_trends") == [(2,)]
    assert rows(settings, "SELECT sum(fixes) FROM fix_outcomes") == [(2,)]
    assert rows(settings, "SELECT sum(audits) FROM audit_scores") == [(2,)]
    results = check_results(dagster_instance)
    assert results and all(results.values()), results
    assert {
        ("usage_daily", "matches_postgres"),
        ("billing_periods", "matches_postgres"),
        ("usage_daily", "rows_left_out"),
    } <= set(results)

    counts = run("--end", FIRST_DAY)

    assert counts["usage_events"]["accepted"] == 1
    assert rows(
        settings, "SELECT day::VARCHAR, quantity FROM usage_daily WHERE org = ? ORDER BY day", [ORG]
    ) == [(FIRST_DAY, 5), *((day, 5) for day in OLD_DAYS)]
    assert billed_on(settings, FIRST_DAY) == [("analyses", 5)]
    assert billed_on(settings, OLD_DAYS[0]) == [("analyses", 10)]
    results = check_results(dagster_instance)
    assert results and all(results.values()), results
    # the older day was registered after the newer ones: each landed day is one partition, and
    # the partitions are in calendar order
    assert dagster_instance.get_dynamic_partitions(landed_days.name) == [FIRST_DAY, *OLD_DAYS]

    nothing_new = run()  # the latest landed day only: quarantine retried, marts rebuilt
    assert all(c["files"] == 0 for c in nothing_new.values())
    [latest] = dagster_instance.get_runs(limit=1)
    assert tuple(latest.tags[tag] for tag in RANGE_TAGS) == (OLD_DAYS[1], OLD_DAYS[1])
