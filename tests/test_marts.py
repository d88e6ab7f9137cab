"""The marts against a real Postgres and a real DuckDB file: the boundaries that cost money,
late usage, incremental builds equal to full rebuilds, and readers during a build."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta

import duckdb
import pytest
from sqlalchemy import create_engine

from odavl_pipeline.alerts import record_from_marts
from odavl_pipeline.db import seed
from odavl_pipeline.generate import GenerateOptions, generate_landing
from odavl_pipeline.ingest.landing import SOURCES, landed_days
from odavl_pipeline.ingest.run import ingest_days
from odavl_pipeline.marts import reconcile
from odavl_pipeline.marts.build import refresh_marts
from odavl_pipeline.marts.store import building, open_marts

from .marts_helpers import add_many, add_usage, anchor_subscription, at, elsewhere, every_mart, rows
from .records import ORG, OTHER_ORG

HOUR = timedelta(hours=1)
AUDIT = "guardian_test_run"


@pytest.fixture
def october(conn):
    """odavl-test-org (PRO: 500 analyses, 200 fixes, 100 audits) billed from October 1st."""
    anchor_subscription(conn, ORG, "2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z")


def quota(settings, org=ORG):
    return {
        metric: (used, quota, pct, status, projected, exhaustion)
        for metric, used, quota, pct, status, projected, exhaustion in rows(
            settings,
            "SELECT metric, used, quota, pct_used, status, projected, "
            "projected_exhaustion FROM quota_status WHERE org = ?",
            [org],
        )
    }


def billed(settings, org=ORG):
    return {
        (start.date().isoformat(), metric): (used, quota, overage, closed)
        for start, metric, used, quota, overage, closed in rows(
            settings,
            "SELECT period_start, metric, used, quota, overage, closed "
            "FROM billing_periods WHERE org = ?",
            [org],
        )
    }


def test_usage_at_one_under_and_one_over_the_quota(settings, conn, october):
    add_many(conn, ORG, "a", 499, "2026-10-05T10:00:00Z", "2026-10-05T10:01:00Z")  # one under
    add_many(conn, ORG, "f", 200, "2026-10-05T10:00:00Z", "2026-10-05T10:01:00Z", "autopilot_job")
    add_many(
        conn, ORG, "g", 101, "2026-10-05T10:00:00Z", "2026-10-05T10:01:00Z", "guardian_test_run"
    )
    refresh_marts(settings, as_of=at("2026-10-16T12:00:00Z"))  # half of October gone
    status = quota(settings)
    assert status["analyses"][:4] == (499, 500, 99.8, "warning")
    assert status["fixes"][:4] == (200, 200, 100.0, "exceeded")  # exactly at the quota
    assert status["audits"][:4] == (101, 100, 101.0, "exceeded")
    assert status["analyses"][4] == 998  # 499 over 15.5 of 31 days, projected to the end
    assert status["fixes"][5].isoformat() == "2026-10-05"  # the day it was reached
    assert status["analyses"][5].isoformat() == "2026-10-16"  # would be reached at this rate
    assert billed(settings)[("2026-10-01", "audits")] == (101, 100, 1, False)
    assert billed(settings)[("2026-10-01", "analyses")] == (499, 500, 0, False)


def test_warning_starts_at_exactly_80_percent(settings, conn):
    anchor_subscription(conn, OTHER_ORG, "2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z")
    add_many(
        conn,
        OTHER_ORG,
        "g",
        799,
        "2026-10-02T00:00:00Z",
        "2026-10-02T00:00:00Z",
        "guardian_test_run",
    )  # ENTERPRISE: 1,000 audits
    add_many(
        conn, OTHER_ORG, "f", 1600, "2026-10-02T00:00:00Z", "2026-10-02T00:00:00Z", "autopilot_job"
    )  # 2,000 fixes
    refresh_marts(settings, as_of=at("2026-10-31T00:00:00Z"))
    status = quota(settings, OTHER_ORG)
    assert status["audits"][3] == "ok" and status["fixes"][3] == "warning"
    assert status["analyses"][:4] == (0, 5000, 0.0, "ok")


def test_subscription_overrides_replace_the_tier_limits(settings, conn):
    anchor_subscription(
        conn,
        ORG,
        "2026-10-01T00:00:00Z",
        "2026-11-01T00:00:00Z",
        analyses_limit=10,
        fixes_limit=None,
    )
    add_many(conn, ORG, "a", 10, "2026-10-02T00:00:00Z", "2026-10-02T00:00:00Z")
    refresh_marts(settings, as_of=at("2026-10-03T00:00:00Z"))
    status = quota(settings)
    assert status["analyses"][1:4] == (10, 100.0, "exceeded")
    assert status["fixes"][1] == 200  # no override: the PRO limit


def test_utc_days_at_midnight_and_with_offsets(settings, conn, october):
    add_usage(conn, ORG, "late-evening", "2026-10-05T23:59:59Z", "2026-10-06T00:00:10Z")
    add_usage(conn, ORG, "midnight", "2026-10-06T00:00:00Z", "2026-10-06T00:00:10Z")
    add_usage(conn, ORG, "paris", "2026-10-06T01:30:00+02:00", "2026-10-06T00:00:10Z")  # 23:30Z
    add_usage(conn, ORG, "new-york", "2026-10-05T21:00:00-05:00", "2026-10-06T02:10:00Z")  # 02:00Z
    refresh_marts(settings, as_of=at("2026-10-07T00:00:00Z"))
    days = dict(
        rows(settings, "SELECT day::VARCHAR, quantity FROM usage_daily WHERE org = ?", [ORG])
    )
    assert days == {"2026-10-05": 2, "2026-10-06": 2}


def test_period_boundary_with_an_anchor_at_noon(settings, conn):
    anchor_subscription(conn, ORG, "2026-09-15T12:00:00Z", "2026-10-15T12:00:00Z")
    add_usage(conn, ORG, "before", "2026-10-15T11:59:59.999999Z", "2026-10-15T12:00:00Z")
    add_usage(conn, ORG, "at", "2026-10-15T12:00:00Z", "2026-10-15T12:00:00Z", quantity=5)
    refresh_marts(settings, as_of=at("2026-10-20T00:00:00Z"))
    periods = billed(settings)
    assert periods[("2026-09-15", "analyses")] == (1, 500, 0, True)  # closed one hour after
    assert periods[("2026-10-15", "analyses")] == (5, 500, 0, False)
    assert len(periods) == 6  # two periods, three metrics each
    assert quota(settings)["analyses"][0] == 5


def test_late_usage_for_a_closed_period_is_carried_into_the_open_one(settings, conn, october):
    add_many(conn, ORG, "a", 40, "2026-10-20T00:00:00Z", "2026-10-20T00:01:00Z")
    refresh_marts(settings, as_of=at("2026-11-01T00:30:00Z"))  # October ended, grace still running
    assert billed(settings)[("2026-10-01", "analyses")] == (40, 500, 0, False)
    add_usage(conn, ORG, "in-grace", "2026-10-31T23:00:00Z", "2026-11-01T00:40:00Z")
    refresh_marts(settings, as_of=at("2026-11-01T01:05:00Z"))  # closes October with 41
    october_bill = billed(settings)[("2026-10-01", "analyses")]
    assert october_bill == (41, 500, 0, True)

    add_usage(conn, ORG, "late", "2026-10-31T22:00:00Z", "2026-11-03T08:00:00Z", quantity=7)
    report = refresh_marts(settings, as_of=at("2026-11-03T09:00:00Z"))
    assert billed(settings)[("2026-10-01", "analyses")] == october_bill  # the invoice never changes
    assert billed(settings)[("2026-11-01", "analyses")] == (7, 500, 0, False)
    assert rows(
        settings,
        "SELECT period_start::DATE::VARCHAR, metric, kind, from_period_start::DATE::VARCHAR, "
        "quantity, events, batch FROM billing_adjustments WHERE org = ?",
        [ORG],
    ) == [("2026-11-01", "analyses", "late", "2026-10-01", 7, 1, None)]
    assert report.days["usage_events"] == 1
    # usage_daily goes by occurrence (the late event is on October 31st); quota_status by what
    # November is billed for, the late usage with it
    assert rows(
        settings, "SELECT quantity FROM usage_daily WHERE org = ? AND day = '2026-10-31'", [ORG]
    ) == [(8,)]
    assert quota(settings)["analyses"][0] == 7
    with open_marts(settings.marts_path) as marts:
        assert reconcile.billing_periods_usage(marts, conn).passed


def test_one_number_the_open_period_quota_status_and_alerts_count_late_usage(
    settings, conn, october
):
    """A backfill of a closed month arrives late: the open period bills it, and quota_status
    (so `quota`, the Overview and the alerts) shows the same number (CONTRACT.md section 6)."""
    add_usage(conn, ORG, "october", "2026-10-20T00:00:00Z", "2026-10-20T00:01:00Z", AUDIT)
    refresh_marts(settings, as_of=at("2026-11-01T01:05:00Z"))  # closes October with 1
    add_many(conn, ORG, "own", 60, "2026-11-05T00:00:00Z", "2026-11-05T01:00:00Z", AUDIT)
    add_many(conn, ORG, "late", 50, "2026-10-20T00:00:00Z", "2026-11-05T02:00:00Z", AUDIT)
    report = refresh_marts(settings, as_of=at("2026-11-11T00:00:00Z"))  # 10 of 30 days gone

    assert billed(settings)[("2026-10-01", "audits")] == (1, 100, 0, True)  # never changes
    assert billed(settings)[("2026-11-01", "audits")] == (110, 100, 10, False)
    used, quota_, pct, status, projected, exhaustion = quota(settings)["audits"]
    assert (used, quota_, pct, status) == (110, 100, 110.0, "exceeded")
    # the late 50 are booked, not a rate: 50 + 60 x 30 / 10
    assert projected == 230
    assert exhaustion == date(2026, 11, 5)  # the 40th audit of November reached the quota
    assert [str(late) for late in report.late_carried] == [
        f"{ORG} audits: 50 of the period from 2026-10-01 into the open period from 2026-11-01"
    ]
    assert record_from_marts(settings)
    assert conn.execute(
        "SELECT metric, threshold, used FROM quota_alerts ORDER BY threshold"
    ).fetchall() == [("audits", "100", 110), ("audits", "80", 110)]
    with open_marts(settings.marts_path) as marts:
        assert reconcile.quota_status_usage(marts, conn).passed
        assert reconcile.billing_periods_usage(marts, conn).passed


def test_an_incremental_build_s_checks_compare_what_it_rebuilt_late_usage_included(
    settings, conn, october
):
    """The checks of an incremental build read Postgres's usage of the days and periods it
    rebuilt (by time, late arrivals included) and find a wrong figure there; the periods and
    days it did not rebuild are left to the build that made them, or to a full check."""
    add_usage(conn, ORG, "october", "2026-10-20T00:00:00Z", "2026-10-20T00:01:00Z", AUDIT)
    add_usage(conn, OTHER_ORG, "other", "2026-10-21T00:00:00Z", "2026-10-21T00:01:00Z", AUDIT)
    refresh_marts(settings, as_of=at("2026-11-01T01:05:00Z"))  # closes October
    add_many(conn, ORG, "late", 5, "2026-10-20T00:00:00Z", "2026-11-05T02:00:00Z", AUDIT)
    add_many(conn, ORG, "own", 3, "2026-11-05T00:00:00Z", "2026-11-05T01:00:00Z", AUDIT)
    report = refresh_marts(settings, as_of=at("2026-11-06T00:00:00Z"))

    rebuilt = report.rebuilt
    assert rebuilt.days == [date(2026, 10, 20), date(2026, 11, 5)]
    assert {(org, start.date().isoformat()) for org, start, _ in rebuilt.periods} == {
        (ORG, "2026-11-01")  # October is closed; the other organization's periods untouched
    }
    checks = (reconcile.usage_daily_totals, reconcile.billing_periods_usage)
    with open_marts(settings.marts_path) as marts:
        assert all(check(marts, conn, rebuilt).passed for check in checks)
        assert all(check(marts, conn).passed for check in checks)
    assert billed(settings)[("2026-11-01", "audits")][0] == 8  # 3 of its own, 5 late

    with duckdb.connect(str(settings.marts_path)) as marts:  # a bug's figures, by hand
        marts.execute(
            "UPDATE billing_periods SET used = used + 1 "
            "WHERE org = ? AND NOT closed AND metric = 'audits'",
            [ORG],
        )
        marts.execute("UPDATE usage_daily SET quantity = quantity + 1 WHERE day = '2026-11-05'")
    with open_marts(settings.marts_path) as marts:
        found = reconcile.billing_periods_usage(marts, conn, rebuilt)
        assert found.differences == [
            {
                "org": ORG,
                "period_start": "2026-11-01 00:00:00+00:00",
                "metric": "audits",
                "marts": 9,
                "postgres": 8,
            }
        ]
        found = reconcile.usage_daily_totals(marts, conn, rebuilt)
        assert [(d["org"], d["day"], d["marts"], d["postgres"]) for d in found.differences] == [
            (ORG, "2026-11-05", 4, 3)
        ]


def test_booked_usage_alone_can_use_up_a_quota(settings, conn, october):
    add_usage(conn, ORG, "october", "2026-10-20T00:00:00Z", "2026-10-20T00:01:00Z", AUDIT)
    refresh_marts(settings, as_of=at("2026-11-01T01:05:00Z"))
    add_many(conn, ORG, "late", 100, "2026-10-20T00:00:00Z", "2026-11-05T02:00:00Z", AUDIT)
    refresh_marts(settings, as_of=at("2026-11-11T00:00:00Z"))
    # exhausted from the period's start: the adjustments count from there
    assert quota(settings)["audits"] == (100, 100, 100.0, "exceeded", 100, date(2026, 11, 1))


def test_a_backfill_of_old_months_is_billed_in_those_months(settings, conn, october):
    """Usage loaded for periods the marts never closed is not late: nothing was invoiced yet."""
    add_many(conn, ORG, "old", 30, "2026-10-10T00:00:00Z", "2026-11-20T00:00:00Z")
    refresh_marts(settings, as_of=at("2026-11-20T01:00:00Z"))
    assert billed(settings)[("2026-10-01", "analyses")] == (30, 500, 0, True)
    assert rows(settings, "SELECT count(*) FROM billing_adjustments") == [(0,)]


def test_incremental_builds_equal_a_full_rebuild(settings, conn, october):
    as_of = at("2026-11-03T09:00:00Z")
    add_many(conn, ORG, "a", 30, "2026-10-10T00:00:00Z", "2026-10-10T00:01:00Z")
    add_many(conn, OTHER_ORG, "b", 12, "2026-10-11T00:00:00Z", "2026-10-11T00:01:00Z", "api_call")
    refresh_marts(settings, as_of=at("2026-10-12T00:00:00Z"))
    add_many(conn, ORG, "c", 5, "2026-10-12T05:00:00Z", "2026-10-12T06:00:00Z", "autopilot_job")
    refresh_marts(settings, as_of=at("2026-10-13T00:00:00Z"))
    add_usage(conn, ORG, "old-day", "2026-10-10T03:00:00Z", "2026-10-13T00:00:00Z", quantity=4)
    refresh_marts(settings, as_of=at("2026-11-01T02:00:00Z"))
    add_usage(conn, ORG, "late", "2026-10-30T03:00:00Z", "2026-11-02T00:00:00Z", quantity=9)
    add_many(conn, ORG, "d", 3, "2026-11-02T00:00:00Z", "2026-11-02T00:01:00Z")
    incremental = refresh_marts(settings, as_of=as_of)
    assert not incremental.full and incremental.days["usage_events"] == 2

    rebuilt = elsewhere(settings, "rebuilt.duckdb")
    full = refresh_marts(rebuilt, as_of=as_of)
    assert full.full
    assert every_mart(settings.marts_path) == every_mart(rebuilt.marts_path)
    assert billed(settings)[("2026-11-01", "analyses")][0] == 12  # 9 late + 3
    with open_marts(settings.marts_path) as marts:
        for compare in (
            reconcile.usage_daily_totals,
            reconcile.billing_periods_usage,
            reconcile.quota_status_usage,
        ):
            assert compare(marts, conn).passed, compare.__name__


def test_a_build_reads_only_the_changed_days(settings, conn, october):
    for day in range(1, 21):
        add_many(
            conn,
            ORG,
            f"d{day}-",
            10,
            f"2026-10-{day:02d}T12:00:00Z",
            f"2026-10-{day:02d}T12:00:00Z",
        )
    first = refresh_marts(settings, as_of=at("2026-10-21T00:00:00Z"))
    assert (first.full, first.usage_events_read) == (True, 200)
    add_many(conn, ORG, "new", 3, "2026-10-21T12:00:00Z", "2026-10-21T12:00:00Z")
    second = refresh_marts(settings, as_of=at("2026-10-22T00:00:00Z"))
    assert (second.full, second.usage_events_read, second.days["usage_events"]) == (False, 3, 1)
    assert second.periods_recomputed == 1
    third = refresh_marts(settings, as_of=at("2026-10-22T00:00:00Z"))
    assert third.usage_events_read == 0
    assert quota(settings)["analyses"][0] == 203


def test_readers_keep_answering_while_a_build_runs_and_see_it_whole(settings, conn, october):
    add_many(conn, ORG, "a", 10, "2026-10-05T00:00:00Z", "2026-10-05T00:00:00Z")
    refresh_marts(settings, as_of=at("2026-10-06T00:00:00Z"))
    add_many(conn, ORG, "b", 5, "2026-10-06T00:00:00Z", "2026-10-06T00:00:00Z")
    seen_during_build = []

    def read_while_building(message: str) -> None:
        with duckdb.connect(str(settings.marts_path), read_only=True) as reader:
            seen_during_build.append(
                reader.execute("SELECT sum(quantity) FROM usage_daily").fetchall()[0][0]
            )

    refresh_marts(settings, as_of=at("2026-10-07T00:00:00Z"), progress=read_while_building)
    assert seen_during_build and set(seen_during_build[:-1]) == {10}  # the old marts, whole
    assert rows(settings, "SELECT sum(quantity) FROM usage_daily") == [(15,)]


def test_a_build_that_fails_midway_publishes_nothing_and_loses_no_change(settings, conn, october):
    add_many(conn, ORG, "a", 10, "2026-10-05T00:00:00Z", "2026-10-05T00:00:00Z")
    refresh_marts(settings, as_of=at("2026-10-06T00:00:00Z"))
    before = every_mart(settings.marts_path)
    add_many(conn, ORG, "b", 5, "2026-10-06T00:00:00Z", "2026-10-06T00:00:00Z")

    def crash(message: str) -> None:
        if "billing periods" in message:
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        refresh_marts(settings, as_of=at("2026-10-07T00:00:00Z"), progress=crash)
    assert every_mart(settings.marts_path) == before
    assert conn.execute("SELECT count(*) FROM mart_changes").fetchone()[0] == 1
    after = refresh_marts(settings, as_of=at("2026-10-07T00:00:00Z"))
    assert after.usage_events_read == 5
    rebuilt = elsewhere(settings, "rebuilt.duckdb")
    refresh_marts(rebuilt, as_of=at("2026-10-07T00:00:00Z"))
    assert every_mart(settings.marts_path) == every_mart(rebuilt.marts_path)


def test_concurrent_builds_end_as_one(settings, conn, october):
    add_many(conn, ORG, "a", 10, "2026-10-05T00:00:00Z", "2026-10-05T00:00:00Z")
    refresh_marts(settings, as_of=at("2026-10-06T00:00:00Z"))
    add_many(conn, ORG, "b", 5, "2026-10-06T00:00:00Z", "2026-10-06T00:00:00Z")
    errors = []

    def build() -> None:
        try:
            refresh_marts(settings, as_of=at("2026-10-07T00:00:00Z"))
        except Exception as error:  # surfaced by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=build) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    rebuilt = elsewhere(settings, "rebuilt.duckdb")
    refresh_marts(rebuilt, as_of=at("2026-10-07T00:00:00Z"))
    assert every_mart(settings.marts_path) == every_mart(rebuilt.marts_path)
    assert conn.execute("SELECT count(*) FROM mart_changes").fetchone()[0] == 0


@pytest.mark.slow
@pytest.mark.clock("2026-10-20T23:59:00Z")  # ingestion stamps the rows just before the builds' cut
def test_every_mart_built_day_by_day_equals_a_rebuild_from_scratch(settings, conn):
    """Generated data of every source, ingested and built one landing day at a time (late
    records included), against one full build of the end state."""
    options = GenerateOptions(
        end_day=date(2026, 10, 20),
        days=5,
        organizations=2,
        usage_per_day=40,
        errors_per_day=6,
        attestations_per_day=3,
        audits_per_day=1,
        late_share=0.2,
        chain_heads=seed.seed_chain_heads(),
    )
    generate_landing(settings.landing_dir, options)
    engine = create_engine(settings.database_url.get_secret_value())
    with engine.begin() as connection:
        seed.load_reference(
            connection, seed.read_reference(settings.landing_dir / "reference.json")
        )
    engine.dispose()
    as_of = at("2026-10-21T00:00:00Z")
    for day in landed_days(settings.landing_dir):
        for source in SOURCES:
            ingest_days(conn, settings.landing_dir, source, [day])
        report = refresh_marts(settings, as_of=as_of)
    assert not report.full
    rebuilt = elsewhere(settings, "rebuilt.duckdb")
    refresh_marts(rebuilt, as_of=as_of)
    incremental, full = every_mart(settings.marts_path), every_mart(rebuilt.marts_path)
    assert all(
        incremental[name]
        for name in (
            "usage_daily",
            "error_trends",
            "fix_outcomes",
            "audit_scores",
            "audit_issues",
            "billing_periods",
        )
    )
    assert incremental == full


def test_a_re_anchored_subscription_recomputes_its_periods_as_a_rebuild_would(
    settings, conn, october
):
    add_many(conn, ORG, "a", 10, "2026-10-05T00:00:00Z", "2026-10-05T00:01:00Z")
    add_many(conn, ORG, "b", 20, "2026-10-20T00:00:00Z", "2026-10-20T00:01:00Z")
    add_many(conn, OTHER_ORG, "c", 5, "2026-10-06T00:00:00Z", "2026-10-06T00:01:00Z")
    since_always(conn)
    conn.execute(
        "DELETE FROM subscriptions WHERE organization_id = "
        "(SELECT id FROM organizations WHERE slug = %s)",
        (OTHER_ORG,),
    )
    conn.commit()
    refresh_marts(settings, as_of=at("2026-10-25T00:00:00Z"))
    # without a subscription: FREE, a calendar month
    assert rows(
        settings,
        "SELECT period_start, metric, quota FROM billing_periods WHERE org = ? ORDER BY metric",
        [OTHER_ORG],
    ) == [
        (at("2026-10-01T00:00:00Z"), metric, quota)
        for metric, quota in (("analyses", 100), ("audits", 20), ("fixes", 50))
    ]

    anchor_subscription(conn, ORG, "2026-10-15T00:00:00Z", "2026-11-15T00:00:00Z")  # off the series
    since_always(conn)
    conn.execute(
        "INSERT INTO subscriptions (organization_id, status, current_period_start, "
        "current_period_end) SELECT id, 'ACTIVE', '2026-10-01', '2026-11-01' "
        "FROM organizations WHERE slug = %s",
        (OTHER_ORG,),
    )  # a new subscription
    conn.commit()
    incremental = refresh_marts(settings, as_of=at("2026-10-26T00:00:00Z"))
    assert incremental.days["usage_events"] == 0
    assert billed(settings)[("2026-09-15", "analyses")][0] == 10
    assert billed(settings)[("2026-10-15", "analyses")][0] == 20
    assert billed(settings, OTHER_ORG)[("2026-10-01", "analyses")][0] == 5
    rebuilt = elsewhere(settings, "rebuilt.duckdb")
    refresh_marts(rebuilt, as_of=at("2026-10-26T00:00:00Z"))
    assert every_mart(settings.marts_path) == every_mart(rebuilt.marts_path)


def since_always(conn) -> None:
    """The plan changes of this transaction rate the whole history (not from now on)."""
    conn.execute("SELECT set_config('odavl.plan_effective_at', '1970-01-01T00:00:00Z', true)")


def test_duckdb_draws_no_progress_bar_into_the_commands_output(settings, conn, october):
    """DuckDB prints a progress bar on standard output for any query over 2 s, terminal or not:
    in a step process, that output is `run --json`'s."""
    refresh_marts(settings, as_of=at("2026-10-16T12:00:00Z"))
    setting = "SELECT current_setting('enable_progress_bar')"
    with open_marts(settings.marts_path) as marts:
        assert marts.execute(setting).fetchone() == (False,)
    with building(settings.marts_path) as build:
        assert build.con.execute(setting).fetchone() == (False,)


class RecordingTimer:
    """A `StepTimer` that keeps the path of each step, and each statement with its step's path."""

    def __init__(self) -> None:
        self.stack: list[str] = []
        self.steps: list[str] = []
        self.statements: list[tuple[str, str]] = []

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        self.stack.append(name)
        self.steps.append(" > ".join(self.stack))
        try:
            yield
        finally:
            self.stack.pop()

    @contextmanager
    def statement(self, sql: str) -> Iterator[None]:
        self.statements.append((" > ".join(self.stack), sql))
        yield


def test_a_timer_is_told_of_each_step_and_statement_and_no_path_is_written_into_sql(
    settings, conn, october
):
    quoted = elsewhere(settings, "it's marts.duckdb")  # its facts' paths hold the quote too
    add_many(conn, ORG, "a", 10, "2026-10-05T00:00:00Z", "2026-10-05T00:00:00Z")
    refresh_marts(quoted, as_of=at("2026-10-06T00:00:00Z"))
    add_many(conn, ORG, "b", 5, "2026-10-06T00:00:00Z", "2026-10-06T00:00:00Z")
    timer = RecordingTimer()
    report = refresh_marts(quoted, as_of=at("2026-10-07T00:00:00Z"), timer=timer)
    assert report.usage_events_read == 5
    for path in (
        "open",
        "read_changes",
        "build > load",
        "build > publish_dimensions",
        "build > usage > touched",
        "build > usage > replace_days",
        "build > billing > periods",
        "build > billing > facts_view",
        "build > quota_status > facts_view",
        "build > errors",
        "build > fixes",
        "build > audits",
        "publish > forget_changes",
    ):
        assert path in timer.steps
    assert timer.stack == []
    owners = {owner for owner, _ in timer.statements}
    assert {"build > usage", "build > billing", "build > quota_status"} <= owners
    folder = str(quoted.marts_path.parent)
    assert not [sql for _, sql in timer.statements if folder in sql]
    rebuilt = elsewhere(settings, "rebuilt.duckdb")
    refresh_marts(rebuilt, as_of=at("2026-10-07T00:00:00Z"))
    assert every_mart(quoted.marts_path) == every_mart(rebuilt.marts_path)
