"""Rows the marts cannot hold, written straight into Postgres as older code or the console could:
the build leaves them out and goes on, the `rows_left_out` checks name them, and the
`matches_postgres` checks still agree."""

import dagster as dg
import pytest
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from odavl_pipeline.defs.ingest.assets import ingest_assets
from odavl_pipeline.defs.ingest.partitions import landed_days
from odavl_pipeline.defs.marts.assets import marts
from odavl_pipeline.defs.marts.checks import LEFT_OUT_REPORTED_ON
from odavl_pipeline.defs.resources import pipeline_resources
from odavl_pipeline.marts import reconcile
from odavl_pipeline.marts.bounds import BOUNDED_COLUMNS, EARLIEST, LATEST
from odavl_pipeline.marts.build import refresh_marts
from odavl_pipeline.marts.store import open_marts

from .marts_helpers import add_usage, anchor_subscription, at, rows
from .records import ORG, OTHER_ORG, attestation, audit, error, usage

DAY = "2026-11-03"
AS_OF = at("2026-11-04T00:00:00Z")
# the clock runs from the cut: DAY's billing period is open, in the builds that read the clock too
pytestmark = pytest.mark.clock(AS_OF)
# What PostgreSQL's timestamptz accepts, as days from 1970-01-01 (4714-11-24 BC .. 294276-12-31)
PG_FIRST_DAY, PG_LAST_DAY = -2_440_588, 106_762_939
DAY_MICROSECONDS = 86_400_000_000
# Rows the marts cannot hold: before 1970 in UTC (the year 1 in +01:00 is the year 0 in UTC),
# infinite, or in the years PostgreSQL has beyond Python's.
UNHOLDABLE = (
    "0001-01-01T00:00:00+01:00",
    "1969-12-31T23:59:59.999999Z",
    "-infinity",
    "infinity",
    "9999-01-01T00:00:00Z",
    "294276-12-31T00:00:00Z",
)


def add_usage_at(conn, event_id: str, occurred_at: str, org: str = ORG) -> None:
    """A usage row at any timestamp PostgreSQL accepts (text), bypassing ingestion."""
    conn.execute(
        "INSERT INTO usage_events (organization_id, event_id, event_type, occurred_at, quantity, "
        "payload, file_id, line_no) SELECT id, %s, 'insight_analysis', %s::timestamptz, 1, "
        "'{}'::jsonb, 0, 1 FROM organizations WHERE slug = %s",
        (event_id, occurred_at, org),
    )
    conn.commit()


def usage_ids(conn, event_ids) -> set[int]:
    return {
        row_id
        for (row_id,) in conn.execute(
            "SELECT id FROM usage_events WHERE event_id = ANY(%s)", (list(event_ids),)
        )
    }


def reconciled(settings, conn) -> bool:
    with open_marts(settings.marts_path) as con:
        return all(
            compare(con, conn).passed
            for compare in (
                reconcile.usage_daily_totals,
                reconcile.billing_periods_usage,
                reconcile.quota_status_usage,
            )
        )


def test_the_build_leaves_out_what_it_cannot_hold_and_the_checks_agree(settings, conn):
    anchor_subscription(conn, ORG, "2026-10-15T00:00:00Z", "2026-11-15T00:00:00Z")
    add_usage(conn, ORG, "normal-1", "2026-11-02T10:00:00Z", "2026-11-02T10:01:00Z")
    add_usage(conn, ORG, "normal-2", "1970-01-01T00:00:00Z", "2026-11-02T10:01:00Z")
    for index, moment in enumerate(UNHOLDABLE):
        add_usage_at(conn, f"bad-{index}", moment)
    refresh_marts(settings, as_of=AS_OF)  # a full build
    add_usage_at(conn, "bad-late", "infinity")
    add_usage(conn, ORG, "normal-3", "2026-11-03T10:00:00Z", "2026-11-03T10:01:00Z")
    report = refresh_marts(settings, as_of=AS_OF)  # an incremental one

    assert not report.full
    assert rows(
        settings, "SELECT day::VARCHAR, quantity FROM usage_daily WHERE org = ? ORDER BY day", [ORG]
    ) == [("1970-01-01", 1), ("2026-11-02", 1), ("2026-11-03", 1)]
    assert rows(
        settings,
        "SELECT sum(used) FROM billing_periods WHERE org = ? AND metric = 'analyses'",
        [ORG],
    ) == [(3,)]
    assert reconciled(settings, conn)
    left_out = reconcile.rows_left_out(conn, "usage_events")
    assert left_out.count == len(UNHOLDABLE) + 1
    assert {row["id"] for row in left_out.first} == usage_ids(
        conn, [f"bad-{index}" for index in range(len(UNHOLDABLE))] + ["bad-late"]
    )
    assert {row["value"] for row in left_out.first} >= {
        "0001-12-31 23:00:00 BC",
        "-infinity",
        "infinity",
        "294276-12-31 00:00:00",
    }
    assert {row["column"] for row in left_out.first} == {"occurred_at"}


def test_an_arrival_time_the_marts_cannot_hold_leaves_the_row_out(settings, conn):
    add_usage(conn, ORG, "normal", "2026-11-02T10:00:00Z", "2026-11-02T10:01:00Z")
    add_usage(conn, ORG, "arrived-never", "2026-11-02T11:00:00Z", "2026-11-02T10:01:00Z")
    conn.execute(
        "UPDATE usage_events SET ingested_at = 'infinity' WHERE event_id = 'arrived-never'"
    )
    conn.commit()
    refresh_marts(settings, as_of=AS_OF)
    assert rows(settings, "SELECT sum(events) FROM usage_daily WHERE org = ?", [ORG]) == [(1,)]
    assert reconciled(settings, conn)
    assert [
        (row["column"], row["value"]) for row in reconcile.rows_left_out(conn, "usage_events").first
    ] == [("ingested_at", "infinity")]


def _materialize(instance, full_rebuild: bool = False):
    return dg.materialize(
        [*ingest_assets, marts],
        partition_key=DAY,
        instance=instance,
        resources=pipeline_resources(),
        run_config={"ops": {"marts": {"config": {"full_rebuild": full_rebuild}}}},
    )


def _evaluations(result) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    return {(e.asset_key.path[-1], e.check_name): e for e in result.get_asset_check_evaluations()}


def test_the_checks_name_every_source_row_left_out(settings, landing, conn):
    """One unholdable timestamp in each table the marts read, written over ingested rows."""
    landing.write("usage_events", DAY, "a.ndjson", [usage("u1", quantity=3), usage("u2")])
    landing.write("error_events", DAY, "a.ndjson", [error("e1"), error("e2", line=7)])
    landing.write("fix_attestations", DAY, "a.ndjson", [attestation("f1")])
    landing.write("audit_results", DAY, "a.ndjson", [audit("a1"), audit("a2")])
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(landed_days.name, [DAY])
    assert _materialize(instance).success
    for statement in (
        "UPDATE usage_events SET occurred_at = '-infinity' WHERE event_id = 'u2'",
        ("UPDATE error_events SET occurred_at = '0001-01-01T00:00:00+01:00' WHERE event_id = 'e2'"),
        "UPDATE fix_attestations SET created_at = 'infinity' WHERE request_id = 'f1'",
        "UPDATE audit_results SET occurred_at = '294276-12-31' WHERE request_id = 'a2'",
        "UPDATE error_signatures SET resolved_at = '-infinity', status = 'resolved'",
        (
            "UPDATE subscriptions SET current_period_start = 'infinity' WHERE organization_id = "
            "(SELECT id FROM organizations WHERE slug = %s)"
        ),
    ):
        conn.execute(statement, (OTHER_ORG,) if "%s" in statement else None)
    conn.commit()

    # a full rebuild: an UPDATE marks only the day a row moves to, not the day it leaves
    result = _materialize(instance, full_rebuild=True)

    assert result.success
    evaluations = _evaluations(result)
    assert {key for key, e in evaluations.items() if not e.passed} == {
        (mart, "rows_left_out") for mart in LEFT_OUT_REPORTED_ON.values()
    }
    assert all(
        evaluations[(mart, "matches_postgres")].passed
        for mart in ("usage_daily", "billing_periods", "quota_status")
    )
    usage_check = evaluations[("usage_daily", "rows_left_out")]
    assert usage_check.metadata["left_out"].value == 1
    assert usage_check.metadata["first_left_out"].value == [
        {
            "source": "usage_events",
            "id": usage_ids(conn, ["u2"]).pop(),
            "column": "occurred_at",
            "value": "-infinity",
        }
    ]
    assert [
        row["column"]
        for row in evaluations[("billing_periods", "rows_left_out")]
        .metadata["first_left_out"]
        .value
    ] == ["current_period_start"]
    assert rows(settings, "SELECT metric, quantity, events FROM usage_daily") == [
        ("analyses", 3, 1)
    ]
    assert rows(settings, "SELECT sum(events) FROM error_trends") == [(1,)]
    assert rows(settings, "SELECT count(*) FROM fix_outcomes") == [(0,)]
    assert rows(settings, "SELECT sum(audits) FROM audit_scores") == [(1,)]
    assert rows(settings, "SELECT count(*) FROM error_signatures") == [(0,)]
    assert rows(
        settings, "SELECT has_subscription FROM organizations WHERE org = ?", [OTHER_ORG]
    ) == [(False,)]


def test_every_bounded_table_has_its_check():
    assert set(LEFT_OUT_REPORTED_ON) == set(BOUNDED_COLUMNS)


# --- the property: whatever timestamp PostgreSQL holds, the build goes on ----------------------

EARLIEST_DAY = (EARLIEST.date() - EARLIEST.date()).days
LATEST_DAY = (LATEST.date() - EARLIEST.date()).days

timestamps = st.one_of(
    st.sampled_from(["infinity", "-infinity"]),
    st.tuples(st.integers(PG_FIRST_DAY, PG_LAST_DAY), st.integers(0, DAY_MICROSECONDS - 1)),
    # and often near the bounds, where an off-by-one would hide
    st.tuples(
        st.sampled_from([EARLIEST_DAY - 1, EARLIEST_DAY, LATEST_DAY - 1, LATEST_DAY]),
        st.sampled_from([0, 1, DAY_MICROSECONDS - 1]),
    ),
)


def _is_held(moment) -> bool:
    return isinstance(moment, tuple) and EARLIEST_DAY <= moment[0] < LATEST_DAY


def _add_usage_on(conn, event_id: str, moment) -> None:
    if isinstance(moment, str):
        add_usage_at(conn, event_id, moment)
        return
    days, microseconds = moment
    conn.execute(
        "INSERT INTO usage_events (organization_id, event_id, event_type, occurred_at, quantity, "
        "payload, file_id, line_no) SELECT id, %s, 'insight_analysis', timestamptz 'epoch' + "
        "make_interval(days => %s) + %s * interval '1 microsecond', 1, '{}'::jsonb, 0, 1 "
        "FROM organizations WHERE slug = %s",
        (event_id, days, microseconds, ORG),
    )
    conn.commit()


@hypothesis_settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@pytest.mark.slow
@given(moments=st.lists(timestamps, min_size=1, max_size=4), full=st.booleans())
@example(moments=[(-719_162, 0)], full=False)  # 0001-01-01T00:00:00Z
@example(moments=[(-719_163, 82_800_000_000)], full=True)  # 0001-01-01T00:00:00+01:00
def test_every_row_is_in_usage_daily_or_reported_left_out(settings, conn, moments, full):
    conn.execute("SET TimeZone = 'UTC'")  # days added in UTC: each tuple is one exact moment
    conn.execute("DELETE FROM usage_events WHERE event_id LIKE 'h-%'")
    conn.commit()
    add_usage(conn, ORG, "h-normal", "2026-11-02T10:00:00Z", "2026-11-02T10:01:00Z")
    for index, moment in enumerate(moments):
        _add_usage_on(conn, f"h-{index}", moment)

    refresh_marts(settings, full=full, as_of=AS_OF)

    held = 1 + sum(map(_is_held, moments))
    assert rows(settings, "SELECT sum(events) FROM usage_daily WHERE org = ?", [ORG]) == [(held,)]
    left_out = reconcile.rows_left_out(conn, "usage_events")
    assert left_out.count == len(moments) + 1 - held
    assert {row["id"] for row in left_out.first} == usage_ids(
        conn, [f"h-{index}" for index, moment in enumerate(moments) if not _is_held(moment)]
    )
    assert reconciled(settings, conn)
