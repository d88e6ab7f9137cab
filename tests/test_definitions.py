"""The Dagster code location: it loads, its assets materialize, checks pass, the sensor reacts."""

import os

import dagster as dg
from markdown_it import MarkdownIt

from odavl_pipeline.definitions import defs
from odavl_pipeline.defs.ingest.assets import ingest_assets
from odavl_pipeline.defs.ingest.checks import INVARIANTS, evaluate_checks
from odavl_pipeline.defs.ingest.partitions import landed_days, range_tags
from odavl_pipeline.defs.ingest.sensors import landing_zone_sensor
from odavl_pipeline.defs.resources import pipeline_resources

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
        [asset], partition_key=DAY, instance=instance, resources=pipeline_resources()
    )


def test_definitions_load_with_lineage_from_landing_to_postgres():
    definitions = defs()
    graph = definitions.resolve_asset_graph()
    for source in ("usage_events", "error_events", "fix_attestations", "audit_results"):
        node = graph.get(dg.AssetKey([source]))
        assert node.parent_keys == {dg.AssetKey(["landing", source])}
        assert node.backfill_policy == dg.BackfillPolicy.single_run()
        assert node.group_name == "ingestion"
        assert node.description
        assert node.partitions_def == landed_days
    # inferred from the assets
    assert definitions.resolve_job_def("ingest").partitions_def == landed_days
    assert definitions.resolve_sensor_def("landing_zone_sensor")


def test_materializing_a_partition_ingests_it_and_the_checks_pass(settings, landing):
    landing.write("usage_events", DAY, "a.ndjson", [usage("u1"), usage("u1"), "{bad"])
    landing.write("error_events", DAY, "a.ndjson", [error("e1"), error("e2")])
    landing.write("fix_attestations", DAY, "a.ndjson", [attestation("f1")])
    result = dg.materialize(
        ingest_assets,
        partition_key=DAY,
        instance=instance_with(DAY),
        resources=pipeline_resources(),
    )
    assert result.success
    [usage_metadata] = [
        m.metadata
        for m in result.asset_materializations_for_node("usage_events")
        if m.asset_key == dg.AssetKey("usage_events")  # the step records its landing days too
    ]
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


def _landing_files_read(instance: dg.DagsterInstance, source: str) -> dict[str, dict]:
    """The landing partitions of `source` materialized, with their metadata."""
    key = dg.AssetKey(["landing", source])
    records = instance.fetch_materializations(key, limit=100).records
    return {
        record.partition_key: {
            name: value.value for name, value in record.asset_materialization.metadata.items()
        }
        for record in records
    }


def test_the_ingest_step_materializes_the_landing_days_it_read(settings, landing):
    """What the UI shows as the landing asset's "% filled": the days files of the source landed on
    and were read, not the days of the other sources."""
    landing.write("usage_events", DAY, "a.ndjson", [usage("u1"), "{bad"])
    landing.write("usage_events", DAY, "b.ndjson", [usage("u2")])
    landing.write("usage_events", "2026-11-04", "a.ndjson", [usage("u3")])
    landing.write("error_events", "2026-11-04", "a.ndjson", [error("e1")])
    instance = instance_with(DAY, "2026-11-04")
    result = dg.materialize(
        ingest_assets,
        tags=range_tags(dg.PartitionKeyRange(DAY, "2026-11-04")),
        instance=instance,
        resources=pipeline_resources(),
    )
    assert result.success
    assert _landing_files_read(instance, "usage_events") == {
        DAY: {"files": 2, "lines": 3},
        "2026-11-04": {"files": 1, "lines": 1},
    }
    assert _landing_files_read(instance, "error_events") == {"2026-11-04": {"files": 1, "lines": 1}}
    assert _landing_files_read(instance, "audit_results") == {}  # nothing landed: 0 % filled

    again = dg.materialize(  # nothing new: nothing read, nothing recorded
        ingest_assets, partition_key=DAY, instance=instance, resources=pipeline_resources()
    )
    landing_events = [
        event
        for event in again.get_asset_materialization_events()
        if event.asset_key.path[0] == "landing"
    ]
    assert again.success and landing_events == []


def _descriptions() -> dict[str, str]:
    """Every description the UI shows: assets, checks, jobs, schedules and sensors."""
    definitions = defs()
    graph = definitions.resolve_asset_graph()
    found = {key.to_user_string(): graph.get(key).description for key in graph.get_all_asset_keys()}
    found |= {str(key): graph.get(key).description for key in graph.asset_check_keys}
    for kind, members in (
        ("job", definitions.jobs),
        ("schedule", definitions.schedules),
        ("sensor", definitions.sensors),
    ):
        found |= {f"{kind} {d.name}": d.description for d in members}
    return {name: text for name, text in found.items() if text}


def _rendered_text(markdown: str) -> str:
    """The text a Markdown renderer shows of `markdown` (CommonMark, as the UI renders it)."""
    tokens = MarkdownIt("commonmark").parse(markdown)
    return "".join(
        child.content
        for token in tokens
        if token.type == "inline"
        for child in token.children
        if child.type in ("text", "code_inline")
    )


def test_every_description_renders_as_written_in_the_ui():
    """Dagster renders descriptions as Markdown: an unquoted `<day>` is an HTML tag, and vanishes."""
    descriptions = _descriptions()
    assert len(descriptions) > 40
    for name, text in descriptions.items():
        tokens = MarkdownIt("commonmark").parse(text)
        html = [
            child.content
            for token in tokens
            for child in [token, *(token.children or [])]
            if child.type in ("html_inline", "html_block")
        ]
        assert html == [], name
    shown = _rendered_text(descriptions["landing/audit_results"])
    assert shown == "NDJSON files landed under audit_results/<day>/ by the ODAVL products."
    assert "odavl/correction=<batch>" in _rendered_text(descriptions["job rebuild_marts"])


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
    resources = pipeline_resources()
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
