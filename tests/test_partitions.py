"""The landed days as partitions: which days a run takes, and the ranges that cover exactly them."""

import os
from datetime import date, timedelta
from itertools import pairwise

import dagster as dg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from odavl_pipeline.defs.ingest.partitions import (
    contiguous_ranges,
    day_ranges,
    landed_days,
    partition_requests,
    registration,
)
from odavl_pipeline.defs.ingest.sensors import landing_zone_sensor
from odavl_pipeline.defs.resources import pipeline_resources
from odavl_pipeline.ingest.file_rejects import UNKNOWN_SHA256, record_failed_file
from odavl_pipeline.ingest.landing import scan_landing
from odavl_pipeline.ingest.pending import days_to_run, pending_days
from odavl_pipeline.ingest.run import ingest_days

from .records import usage

DAYS = [date(2026, 11, day) for day in (1, 2, 3)]

ordered_keys = st.lists(
    st.dates(min_value=date(1970, 1, 1)).map(date.isoformat), unique=True, max_size=40
)


@given(ordered_keys, st.data())
def test_the_ranges_cover_exactly_the_wanted_keys_with_as_few_runs_as_possible(keys, data):
    wanted = set(data.draw(st.lists(st.sampled_from(keys), unique=True) if keys else st.just([])))
    wanted |= set(data.draw(st.lists(st.dates().map(date.isoformat), max_size=3)))  # unregistered
    ranges = contiguous_ranges(keys, wanted)

    position = {key: index for index, key in enumerate(keys)}
    covered = [keys[i] for r in ranges for i in range(position[r.start], position[r.end] + 1)]
    assert sorted(covered) == sorted(wanted & set(keys))  # each once, nothing else
    assert all(position[a.end] + 1 < position[b.start] for a, b in pairwise(ranges))
    runs = sum(
        1 for i, key in enumerate(keys) if key in wanted and (i == 0 or keys[i - 1] not in wanted)
    )
    assert len(ranges) == runs


@pytest.mark.slow
@given(st.lists(st.sets(st.dates(min_value=date(1970, 1, 1)), max_size=8), max_size=4))
def test_days_registered_in_any_order_are_each_one_partition(batches):
    instance = dg.DagsterInstance.ephemeral()
    for days in batches:  # one `run` (or sensor tick) after another
        ranges = day_ranges(instance, days)
        keys = instance.get_dynamic_partitions(landed_days.name)
        assert keys == sorted(set(keys))  # each day once, in calendar order
        covered = {key for r in ranges for key in keys[keys.index(r.start) : keys.index(r.end) + 1]}
        assert covered == {day.isoformat() for day in days}
        if days and all(day.isoformat() not in keys[: -len(days)] for day in days):
            assert len(ranges) == 1  # new days only: registered together, in order
    assert set(instance.get_dynamic_partitions(landed_days.name)) == {
        day.isoformat() for days in batches for day in days
    }


@given(
    st.lists(st.dates(min_value=date(1970, 1, 1)).map(date.isoformat), unique=True, max_size=20),
    st.sets(st.dates(min_value=date(1970, 1, 1)).map(date.isoformat), max_size=8),
)
def test_a_registration_puts_the_days_in_calendar_order_removing_as_few_as_it_can(registered, days):
    change = registration(registered, days)
    assert change.keys == sorted(set(registered) | days)
    assert change.kept + change.removed == registered  # what is kept stays where it was
    assert not change.removed or change.removed[0] != change.added[0]  # none removed needlessly
    latest = max(registered, default="")
    if registered == sorted(registered) and all(day > latest for day in days - set(registered)):
        assert change.removed == []  # days landing after the others: only added


def test_a_history_landed_after_newer_days_is_listed_before_them(dagster_instance):
    """As `run` registers them: a month, then the month before it, then a day in the middle."""
    november = [date(2026, 11, 6) + timedelta(days=n) for n in range(30)]  # Nov 06 .. Dec 05
    october = [date(2026, 10, 1) + timedelta(days=n) for n in range(31)]
    landing_usage = dg.AssetKey(["landing", "usage_events"])
    day_ranges(dagster_instance, november)
    dagster_instance.report_runless_asset_event(
        dg.AssetMaterialization(landing_usage, partition="2026-11-06")
    )

    [backfill] = day_ranges(dagster_instance, october)

    keys = dagster_instance.get_dynamic_partitions(landed_days.name)
    assert keys == [day.isoformat() for day in [*october, *november]]
    assert (backfill.start, backfill.end) == ("2026-10-01", "2026-10-31")  # one run
    materialized = dagster_instance.get_materialized_partitions(landing_usage)
    assert materialized == {"2026-11-06"}  # kept through the move
    late = date(2026, 11, 5)  # the day between the two months
    assert [(r.start, r.end) for r in day_ranges(dagster_instance, [late])] == [
        (late.isoformat(),) * 2
    ]
    assert dagster_instance.get_dynamic_partitions(landed_days.name) == sorted(
        keys + [late.isoformat()]
    )


def test_the_sensor_asks_the_daemon_to_put_an_older_day_before_the_newer_ones(settings, landing):
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(landed_days.name, ["2026-11-06", "2026-11-07"])
    landing.write("usage_events", "2026-10-31", "a.ndjson", [usage("u1")])
    with dg.build_sensor_context(resources=pipeline_resources(), instance=instance) as context:
        evaluation = landing_zone_sensor(context)
    removed, added = evaluation.dynamic_partitions_requests
    assert isinstance(removed, dg.DeleteDynamicPartitionsRequest)
    assert removed.partition_keys == ["2026-11-06", "2026-11-07"]
    assert added.partition_keys == ["2026-10-31", "2026-11-06", "2026-11-07"]
    for request in evaluation.dynamic_partitions_requests:  # in order, as the daemon applies them
        for key in request.partition_keys:
            if isinstance(request, dg.DeleteDynamicPartitionsRequest):
                instance.delete_dynamic_partition(landed_days.name, key)
            else:
                instance.add_dynamic_partitions(landed_days.name, [key])
    assert instance.get_dynamic_partitions(landed_days.name) == [
        "2026-10-31",
        "2026-11-06",
        "2026-11-07",
    ]
    [request] = evaluation.run_requests
    assert request.tags["dagster/asset_partition_range_end"] == "2026-10-31"
    assert partition_requests(registration(["2026-10-31"], ["2026-10-31"])) == []  # known: none


def _ingest_all(conn, settings) -> None:
    ingest_days(conn, settings.landing_dir, "usage_events", DAYS)


def test_only_days_with_new_changed_or_failed_files_are_pending(conn, settings, landing):
    paths = {
        day: landing.write("usage_events", day.isoformat(), "a.ndjson", [usage(f"u-{day}")])
        for day in DAYS
    }
    files = scan_landing(settings.landing_dir).files
    assert pending_days(conn, files) == set(DAYS)  # nothing ingested yet
    _ingest_all(conn, settings)
    assert pending_days(conn, files) == set()

    landing.write("usage_events", "2026-11-01", "b.ndjson", [usage("new")])  # a new file
    touched = paths[DAYS[1]]
    os.utime(touched, ns=(touched.stat().st_atime_ns, touched.stat().st_mtime_ns + 10**9))
    assert pending_days(conn, scan_landing(settings.landing_dir).files) == {DAYS[0], DAYS[1]}
    assert days_to_run(conn, settings.landing_dir, last=DAYS[1]) == DAYS[:2]

    _ingest_all(conn, settings)  # the touched file is hashed, found unchanged, its time kept
    assert conn.execute("SELECT count(*) FROM ingested_files").fetchone()[0] == 4
    assert pending_days(conn, scan_landing(settings.landing_dir).files) == set()
    # nothing new: the latest landed day of the range, so the run still retries and rebuilds
    assert days_to_run(conn, settings.landing_dir) == [DAYS[2]]
    assert days_to_run(conn, settings.landing_dir, last=DAYS[1]) == [DAYS[1]]
    assert days_to_run(conn, settings.landing_dir, first=date(2027, 1, 1)) == []


def test_a_rewrite_of_the_same_size_and_a_ledger_without_times_are_pending(conn, settings, landing):
    path = landing.write("usage_events", "2026-11-01", "a.ndjson", [usage("u1")])
    _ingest_all(conn, settings)
    before = path.stat()
    landing.write("usage_events", "2026-11-01", "a.ndjson", [usage("u2")])  # same length
    assert path.stat().st_size == before.st_size
    assert pending_days(conn, scan_landing(settings.landing_dir).files) == {DAYS[0]}
    _ingest_all(conn, settings)
    assert conn.execute("SELECT count(*) FROM usage_events").fetchone()[0] == 2  # read again

    conn.execute("UPDATE ingested_files SET mtime_ns = NULL")  # as ingested before the times
    conn.commit()
    assert pending_days(conn, scan_landing(settings.landing_dir).files) == {DAYS[0]}
    _ingest_all(conn, settings)  # hashed once more, nothing ingested twice
    assert pending_days(conn, scan_landing(settings.landing_dir).files) == set()
    assert conn.execute("SELECT count(*) FROM usage_events").fetchone()[0] == 2


def test_a_failed_file_keeps_its_day_pending(conn, settings, landing):
    landing.write("usage_events", "2026-11-02", "a.ndjson", [usage("u1")])
    [landed] = scan_landing(settings.landing_dir).files
    record_failed_file(conn, landed, UNKNOWN_SHA256, RuntimeError("a bug of ours"), None)
    assert pending_days(conn, [landed]) == {DAYS[1]}  # every run tries it again
    _ingest_all(conn, settings)
    assert pending_days(conn, [landed]) == set()
