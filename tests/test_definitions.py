"""The Dagster code location: it loads, its assets materialize, checks pass, the sensor reacts."""

import os

import dagster as dg

from odavl_pipeline.definitions import defs
from odavl_pipeline.defs.ingest.assets import ingest_assets
from odavl_pipeline.defs.ingest.checks import INVARIANTS, evaluate_checks
from odavl_pipeline.defs.ingest.partitions import landed_days
from odavl_pipeline.defs.ingest.sensors import landing_zone_sensor
from odavl_pipeline.defs.resources import OdavlResource

from .records import attestation, error, usage

DAY = "2026-11-03"


def instance_with(*days: str) -> dg.DagsterInstance:
    """An ephemeral instance where `days` have landed (are partitions)."""
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(landed_days.name, list(days))
    return instance


def materialize(asset_key: str, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    [asset] = [a for a in ingest_assets if a.key == dg.AssetKey([asset_key])]
    return dg.materialize(
        [asset], partition_key=DAY, instance=instance, resources={"odavl": OdavlResource()}
    )


def test_definitions_load_with_lineage_from_landing_to_postgres():
    graph = defs.resolve_asset_graph()
    for source in ("usage_events", "error_events", "fix_attestations", "audit_results"):
        node = graph.get(dg.AssetKey([source]))
        assert node.parent_keys == {dg.AssetKey(["landing", source])}
        assert node.backfill_policy == dg.BackfillPolicy.single_run()
        assert node.group_name == "ingestion"
        assert node.description
        assert node.partitions_def == landed_days
    assert defs.resolve_job_def("ingest").partitions_def == landed_days  # inferred from the assets
    assert defs.resolve_sensor_def("landing_zone_sensor")


def test_materializing_a_partition_ingests_it_and_the_checks_pass(settings, landing):
    landing.write("usage_events", DAY, "a.ndjson", [usage("u1"), usage("u1"), "{bad"])
    landing.write("error_events", DAY, "a.ndjson", [error("e1"), error("e2")])
    landing.write("fix_attestations", DAY, "a.ndjson", [attestation("f1")])
    result = dg.materialize(
        ingest_assets,
        partition_key=DAY,
        instance=instance_with(DAY),
        resources={"odavl": OdavlResource()},
    )
    assert result.success
    usage_metadata = result.asset_materializations_for_node("usage_events")[0].metadata
    assert (
        usage_metadata["lines"].value,
        usage_metadata["accepted"].value,
        usage_metadata["duplicate"].value,
        usage_metadata["rejected"].value,
    ) == (3, 1, 1, 1)
    evaluations = result.get_asset_check_evaluations()  # in the assets' own steps
    assert {(e.asset_key.path[-1], e.check_name) for e in evaluations} == {
        (source, invariant.name)
        for source, invariants in INVARIANTS.items()
        for invariant in invariants
    }
    assert all(evaluation.passed for evaluation in evaluations)


def _check(conn, source: str, run_id: str, name: str) -> dg.AssetCheckResult:
    """The check `name` of `source`, evaluated as the asset does, on run `run_id`'s files."""
    [result] = [r for r in evaluate_checks(conn, source, run_id) if r.check_name == name]
    return result


def test_a_check_fails_when_the_ledger_and_the_table_disagree(settings, landing, conn):
    landing.write("usage_events", DAY, "a.ndjson", [usage("u1"), usage("u2")])
    ingested = materialize("usage_events", instance_with(DAY))
    conn.execute("DELETE FROM usage_events WHERE event_id = 'u2'")  # a row lost behind our back
    conn.commit()
    evaluation = _check(conn, "usage_events", ingested.run_id, "rows_match_ledger")
    assert not evaluation.passed
    assert evaluation.metadata["violations"].value == 1


def test_references_resolve_fails_for_a_row_whose_project_vanished(settings, landing, conn):
    landing.write("error_events", DAY, "a.ndjson", [error("e1")])
    ingested = materialize("error_events", instance_with(DAY))
    conn.execute("UPDATE error_events SET project_id = -1")  # what a foreign key would refuse
    conn.commit()
    evaluation = _check(conn, "error_events", ingested.run_id, "references_resolve")
    assert (evaluation.passed, evaluation.metadata["violations"].value) == (False, 1)


def requested(evaluation: dg.SensorResult) -> list[tuple[str, str]]:
    return [
        (r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"])
        for r in evaluation.run_requests
    ]


def test_the_sensor_registers_the_days_of_new_or_changed_files_and_requests_them(settings, landing):
    path = landing.write("usage_events", DAY, "a.ndjson", [usage("u1")])
    landing.write("error_events", "2026-11-04", "a.ndjson", [error("e1")])
    instance = instance_with("2026-11-01")  # registered before
    resources = {"odavl": OdavlResource()}
    with dg.build_sensor_context(resources=resources, instance=instance) as context:
        first = landing_zone_sensor(context)
    [added] = first.dynamic_partitions_requests
    assert (added.partitions_def_name, added.partition_keys) == (
        landed_days.name,
        [DAY, "2026-11-04"],
    )
    assert requested(first) == [(DAY, "2026-11-04")]  # one run for both days, every source
    instance.add_dynamic_partitions(landed_days.name, added.partition_keys)  # as the daemon does
    with dg.build_sensor_context(
        cursor=first.cursor, resources=resources, instance=instance
    ) as context:
        assert landing_zone_sensor(context).run_requests == []
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    with dg.build_sensor_context(
        cursor=first.cursor, resources=resources, instance=instance
    ) as context:
        again = landing_zone_sensor(context)
    assert (requested(again), again.dynamic_partitions_requests) == ([(DAY, DAY)], [])
