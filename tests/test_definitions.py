"""The Dagster code location: it loads, its assets materialize, checks pass, the sensor reacts."""

import os

import dagster as dg

from odavl_pipeline.definitions import defs
from odavl_pipeline.defs.ingest.assets import ingest_assets
from odavl_pipeline.defs.ingest.checks import ingest_checks
from odavl_pipeline.defs.ingest.sensors import landing_zone_sensor
from odavl_pipeline.defs.resources import OdavlResource

from .records import attestation, error, usage

DAY = "2026-11-03"


def test_definitions_load_with_lineage_from_landing_to_postgres():
    graph = defs.resolve_asset_graph()
    for source in ("usage_events", "error_events", "fix_attestations", "audit_results"):
        node = graph.get(dg.AssetKey([source]))
        assert node.parent_keys == {dg.AssetKey(["landing", source])}
        assert node.backfill_policy == dg.BackfillPolicy.single_run()
        assert node.group_name == "ingestion"
        assert node.description
    assert defs.resolve_job_def("ingest").partitions_def is not None  # inferred from the assets
    assert defs.resolve_sensor_def("landing_zone_sensor")


def test_materializing_a_partition_ingests_it_and_the_checks_pass(settings, landing):
    landing.write("usage_events", DAY, "a.ndjson", [usage("u1"), usage("u1"), "{bad"])
    landing.write("error_events", DAY, "a.ndjson", [error("e1"), error("e2")])
    landing.write("fix_attestations", DAY, "a.ndjson", [attestation("f1")])
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([*ingest_assets, *ingest_checks], partition_key=DAY, instance=instance,
                            resources={"odavl": OdavlResource()})
    assert result.success
    usage_metadata = result.asset_materializations_for_node("usage_events")[0].metadata
    assert (usage_metadata["lines"].value, usage_metadata["accepted"].value,
            usage_metadata["duplicate"].value, usage_metadata["rejected"].value) == (3, 1, 1, 1)
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == len(ingest_checks)
    assert all(evaluation.passed for evaluation in evaluations)


def test_a_check_fails_when_the_ledger_and_the_table_disagree(settings, landing, conn):
    landing.write("usage_events", DAY, "a.ndjson", [usage("u1"), usage("u2")])
    instance = dg.DagsterInstance.ephemeral()
    usage_asset = [a for a in ingest_assets if a.key == dg.AssetKey(["usage_events"])]
    dg.materialize(usage_asset, partition_key=DAY, instance=instance,
                   resources={"odavl": OdavlResource()})
    conn.execute("DELETE FROM usage_events WHERE event_id = 'u2'")  # a row lost behind our back
    conn.commit()
    check = [c for c in ingest_checks
             if dg.AssetCheckKey(dg.AssetKey(["usage_events"]), "rows_match_ledger") in c.check_keys]
    result = dg.materialize([*usage_asset, *check], partition_key=DAY, instance=instance,
                            resources={"odavl": OdavlResource()})  # the file is not re-ingested
    [evaluation] = result.get_asset_check_evaluations()
    assert not evaluation.passed
    assert evaluation.metadata["violations"].value == 1


def test_references_resolve_fails_for_a_row_whose_project_vanished(settings, landing, conn):
    landing.write("error_events", DAY, "a.ndjson", [error("e1")])
    instance = dg.DagsterInstance.ephemeral()
    errors_asset = [a for a in ingest_assets if a.key == dg.AssetKey(["error_events"])]
    check = [c for c in ingest_checks
             if dg.AssetCheckKey(dg.AssetKey(["error_events"]), "references_resolve") in c.check_keys]
    dg.materialize(errors_asset, partition_key=DAY, instance=instance,
                   resources={"odavl": OdavlResource()})
    conn.execute("UPDATE error_events SET project_id = -1")  # what a foreign key would refuse
    conn.commit()
    result = dg.materialize([*errors_asset, *check], partition_key=DAY, instance=instance,
                            resources={"odavl": OdavlResource()})
    [evaluation] = result.get_asset_check_evaluations()
    assert (evaluation.passed, evaluation.metadata["violations"].value) == (False, 1)


def test_the_sensor_requests_the_partitions_of_new_or_changed_files(settings, landing):
    path = landing.write("usage_events", DAY, "a.ndjson", [usage("u1")])
    landing.write("error_events", "2026-11-04", "a.ndjson", [error("e1")])
    resources = {"odavl": OdavlResource()}
    with dg.build_sensor_context(resources=resources) as context:
        first = landing_zone_sensor(context)
    assert sorted((r.partition_key, r.asset_selection[0].path[0]) for r in first.run_requests) == [
        (DAY, "usage_events"), ("2026-11-04", "error_events")]
    with dg.build_sensor_context(cursor=first.cursor, resources=resources) as context:
        assert landing_zone_sensor(context).run_requests == []
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    with dg.build_sensor_context(cursor=first.cursor, resources=resources) as context:
        again = landing_zone_sensor(context)
    assert [(r.partition_key, r.asset_selection[0].path[0]) for r in again.run_requests] == [
        (DAY, "usage_events")]
