"""The marts in Dagster: lineage, the single-run backfill, the schedule, the reconciliation checks
(in the marts' own step)."""

import dagster as dg
import pytest

from odavl_pipeline.definitions import defs
from odavl_pipeline.defs.ingest.assets import ingest_assets
from odavl_pipeline.defs.ingest.partitions import landed_days
from odavl_pipeline.defs.marts.assets import MART_ASSETS, marts
from odavl_pipeline.defs.marts.checks import mart_check_specs
from odavl_pipeline.defs.marts.schedules import CHECK_EVERYTHING, daily_billing
from odavl_pipeline.defs.resources import pipeline_resources

from .clocks import instant
from .marts_helpers import rows
from .records import ORG, error, usage

DAY = "2026-11-03"
# the daily schedule's tick after DAY: the clock runs from it, so DAY's billing period is open
TICK = instant("2026-11-04T00:15:00Z")
pytestmark = pytest.mark.clock(TICK)


def test_lineage_runs_from_the_landing_sources_through_postgres_to_every_mart():
    graph = defs().resolve_asset_graph()
    for name in MART_ASSETS:
        node = graph.get(dg.AssetKey(name))
        assert node.group_name == "marts" and node.description
        assert node.partitions_def is None  # the change marks in Postgres say what to rebuild
    assert graph.get(dg.AssetKey("billing_periods")).parent_keys == {dg.AssetKey("usage_events")}
    assert graph.get(dg.AssetKey("error_trends")).parent_keys == {dg.AssetKey("error_events")}
    assert (
        dg.AssetKey(["landing", "usage_events"])
        in graph.get(dg.AssetKey("usage_events")).parent_keys
    )
    job = defs().resolve_job_def("pipeline")
    assert {key.path[-1] for key in job.asset_layer.executable_asset_keys} >= set(MART_ASSETS) | {
        "usage_events",
        "error_events",
        "fix_attestations",
        "audit_results",
    }


def _schedule_tick(instance):
    with dg.build_schedule_context(
        instance=instance,
        resources=pipeline_resources(),
        scheduled_execution_time=TICK,
    ) as context:
        return daily_billing(context)


def test_the_daily_schedule_asks_for_the_days_with_new_files(settings, landing, dagster_instance):
    assert isinstance(_schedule_tick(dagster_instance), dg.SkipReason)  # nothing has landed
    landing.write("usage_events", "2026-11-02", "a.ndjson", [usage("u0")])
    landing.write("usage_events", DAY, "a.ndjson", [usage("u1")])
    [request] = _schedule_tick(dagster_instance)
    assert request.run_key == "2026-11-04:2026-11-02..2026-11-03"
    assert (
        request.tags["dagster/asset_partition_range_start"],
        request.tags["dagster/asset_partition_range_end"],
    ) == ("2026-11-02", DAY)
    assert request.run_config == CHECK_EVERYTHING  # the daily run compares every mart row
    assert dagster_instance.get_dynamic_partitions(landed_days.name) == ["2026-11-02", DAY]
    definitions = defs()
    assert definitions.resolve_schedule_def("daily_billing").job_name == "pipeline"
    assert definitions.resolve_schedule_def("hourly_stripe").job_name == "stripe"


def _instance() -> dg.DagsterInstance:
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(landed_days.name, ["2026-11-01", "2026-11-02", DAY])
    return instance


def _materialize(instance, partition_key=DAY, **kwargs):
    return dg.materialize(
        [*ingest_assets, marts],
        partition_key=partition_key,
        instance=instance,
        resources=pipeline_resources(),
        **kwargs,
    )


def test_a_partition_materializes_the_marts_and_the_reconciliation_passes(settings, landing):
    landing.write("usage_events", DAY, "a.ndjson", [usage("u1", quantity=3), usage("u2")])
    landing.write("error_events", DAY, "a.ndjson", [error("e1"), error("e2")])
    result = _materialize(_instance())
    assert result.success
    usage_daily = result.asset_materializations_for_node("marts")
    assert len(usage_daily) == len(MART_ASSETS)
    evaluations = [
        e for e in result.get_asset_check_evaluations() if e.asset_key.path[-1] in MART_ASSETS
    ]
    assert len(evaluations) == len(mart_check_specs) and all(e.passed for e in evaluations)
    assert rows(
        settings, "SELECT org, day::VARCHAR, metric, quantity, events FROM usage_daily"
    ) == [(ORG, DAY, "analyses", 4, 2)]
    assert rows(settings, "SELECT sum(events) FROM error_trends") == [(2,)]


def test_a_range_backfill_is_one_run(settings, landing):
    for day in ("2026-11-01", "2026-11-02", "2026-11-03"):
        landing.write(
            "usage_events", day, "a.ndjson", [usage(f"u-{day}", occurred_at=f"{day}T10:00:00Z")]
        )
    instance = _instance()
    result = _materialize(
        instance,
        partition_key=None,
        tags={
            "dagster/asset_partition_range_start": "2026-11-01",
            "dagster/asset_partition_range_end": "2026-11-03",
        },
    )
    assert result.success
    assert len(instance.get_runs()) == 1
    assert rows(settings, "SELECT count(*) FROM usage_daily") == [(3,)]


def test_the_check_fails_when_a_write_escaped_the_marts(settings, landing, conn):
    landing.write("usage_events", DAY, "a.ndjson", [usage("u1"), usage("u2")])
    instance = _instance()
    assert _materialize(instance).success
    conn.execute("ALTER TABLE usage_events DISABLE TRIGGER mark_mart_changes_delete")
    conn.execute("DELETE FROM usage_events WHERE event_id = 'u2'")  # unseen by the marts
    conn.execute("ALTER TABLE usage_events ENABLE TRIGGER mark_mart_changes_delete")
    conn.commit()
    result = _materialize(instance, run_config=CHECK_EVERYTHING)  # as the daily run does
    failed = {
        e.asset_key.path[-1]
        for e in result.get_asset_check_evaluations()
        if not e.passed and e.asset_key.path[-1] in MART_ASSETS
    }
    # quota_status still agrees with its billing_periods row (one number), which the
    # billing_periods check finds different from Postgres
    assert failed == {"usage_daily", "billing_periods"}
    usage_check = [
        e for e in result.get_asset_check_evaluations() if e.asset_key == dg.AssetKey("usage_daily")
    ][0]
    assert usage_check.metadata["differences"].value == 1
    assert usage_check.metadata["first_differences"].value == [
        {"org": ORG, "metric": "analyses", "marts": 2, "postgres": 1}
    ]


def test_the_quota_status_check_fails_when_it_differs_from_its_billing_period(
    settings, landing, conn
):
    import duckdb

    from odavl_pipeline.marts import reconcile
    from odavl_pipeline.marts.store import open_marts

    landing.write("usage_events", DAY, "a.ndjson", [usage("u1"), usage("u2")])
    assert _materialize(_instance()).success
    with duckdb.connect(str(settings.marts_path)) as marts:  # a bug's quota page, by hand
        marts.execute("UPDATE quota_status SET used = used + 1 WHERE metric = 'analyses'")
    with open_marts(settings.marts_path) as marts:
        check = reconcile.quota_status_usage(marts, conn)
    assert not check.passed and check.differences[0]["quota_status"] == (
        check.differences[0]["billing_periods"] + 1
    )
