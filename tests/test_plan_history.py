"""Billing truth over time: every plan change is a version with the time it took effect, periods
are rated with the plan in force (an upgrade at once, a downgrade from the next period, a
cancellation to FREE's calendar months), organizations without a subscription are on FREE, and
a closed period is what it closed with, whatever is rebuilt."""

from datetime import UTC, datetime, timedelta
from itertools import pairwise

from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from odavl_pipeline.billing.catalogue import PLAN_LIMITS, QUOTA_METRICS
from odavl_pipeline.billing.plans import (
    CALENDAR_MONTHS,
    PlanVersion,
    periods_covering,
    quotas,
    rated_periods,
)
from odavl_pipeline.marts import reconcile
from odavl_pipeline.marts.build import refresh_marts
from odavl_pipeline.marts.store import open_marts

from .marts_helpers import add_many, anchor_subscription, at
from .records import ORG, OTHER_ORG

PRO, ENTERPRISE, FREE = (quotas(tier, {}) for tier in ("PRO", "ENTERPRISE", "FREE"))
ANCHOR = datetime(2026, 1, 15, tzinfo=UTC)


def version(effective: datetime, tier: str, anchor: datetime | None = ANCHOR) -> PlanVersion:
    return PlanVersion(effective, tier, anchor, quotas(tier, {}))


# --- the rules, without a database ------------------------------------------------------------


def test_an_upgrade_applies_at_once_and_a_downgrade_from_the_next_period():
    upgraded = rated_periods(
        [version(CALENDAR_MONTHS, "PRO"), version(datetime(2026, 3, 20, tzinfo=UTC), "ENTERPRISE")],
        datetime(2026, 2, 20, tzinfo=UTC),
        datetime(2026, 4, 20, tzinfo=UTC),
    )
    assert [(p.start.date().isoformat(), p.tier) for p in upgraded] == [
        ("2026-02-15", "PRO"),
        ("2026-03-15", "ENTERPRISE"),
        ("2026-04-15", "ENTERPRISE"),
    ]
    assert upgraded[1].quotas == ENTERPRISE
    downgraded = rated_periods(
        [version(CALENDAR_MONTHS, "ENTERPRISE"), version(datetime(2026, 3, 20, tzinfo=UTC), "PRO")],
        datetime(2026, 3, 16, tzinfo=UTC),
        datetime(2026, 4, 16, tzinfo=UTC),
    )
    assert [(p.tier, p.quotas) for p in downgraded] == [("ENTERPRISE", ENTERPRISE), ("PRO", PRO)]


def test_a_cancellation_ends_the_paid_period_then_free_calendar_months():
    canceled = datetime(2026, 3, 20, 12, tzinfo=UTC)
    periods = rated_periods(
        [version(CALENDAR_MONTHS, "PRO"), version(canceled, "FREE", None)],
        datetime(2026, 3, 16, tzinfo=UTC),
        datetime(2026, 5, 2, tzinfo=UTC),
    )
    assert [(p.start, p.end, p.tier) for p in periods] == [
        (datetime(2026, 3, 15, tzinfo=UTC), canceled, "PRO"),
        (canceled, datetime(2026, 4, 1, tzinfo=UTC), "FREE"),
        (datetime(2026, 4, 1, tzinfo=UTC), datetime(2026, 5, 1, tzinfo=UTC), "FREE"),
        (datetime(2026, 5, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC), "FREE"),
    ]
    assert periods[0].quotas == PRO and periods[1].quotas == FREE


def test_without_a_subscription_the_periods_are_calendar_months_on_free():
    periods = rated_periods(
        [version(CALENDAR_MONTHS, "FREE", None)],
        datetime(2026, 2, 10, tzinfo=UTC),
        datetime(2026, 3, 10, tzinfo=UTC),
    )
    assert [(p.start.isoformat(), p.quotas) for p in periods] == [
        ("2026-02-01T00:00:00+00:00", FREE),
        ("2026-03-01T00:00:00+00:00", FREE),
    ]


moments = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)
)
changes = st.lists(
    st.tuples(moments, st.sampled_from(sorted(PLAN_LIMITS)), st.one_of(st.none(), moments)),
    max_size=6,
)


@hypothesis_settings(max_examples=300, deadline=None)
@given(
    first=moments,
    span=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=800)),
    start_tier=st.sampled_from(sorted(PLAN_LIMITS)),
    later=changes,
)
def test_periods_tile_the_range_and_each_is_rated_by_a_plan_in_force(
    first, span, start_tier, later
):
    """Whatever the history: periods follow one another without gap or overlap from the one
    containing `first` to the one containing `last`, none longer than a month, and each one's
    quota is the largest of the plans in force during it."""
    history = [version(CALENDAR_MONTHS, start_tier)] + [
        version(moment, tier, anchor)
        for moment, tier, anchor in sorted(later, key=lambda change: change[0])
    ]
    last = first + span
    periods = rated_periods(history, first, last)
    assert periods[0].start <= first < periods[0].end
    assert periods[-1].start <= last < periods[-1].end
    for before, after in pairwise(periods):
        assert before.end == after.start
    for period in periods:
        assert period.start < period.end <= period.start + timedelta(days=31)
        in_force = [
            v
            for v, until in zip(
                history,
                [*(h.effective_at for h in history[1:]), datetime.max.replace(tzinfo=UTC)],
                strict=True,
            )
            if v.effective_at < period.end and until > period.start and until > v.effective_at
        ]
        for metric in QUOTA_METRICS:
            assert period.quotas[metric] in {v.quotas[metric] for v in in_force}
            assert period.quotas[metric] == max(v.quotas[metric] for v in in_force)


@given(first=moments, span=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=800)))
def test_one_plan_gives_the_anchor_s_monthly_periods(first, span):
    periods = rated_periods([version(CALENDAR_MONTHS, "PRO")], first, first + span)
    assert [(p.start, p.end) for p in periods] == periods_covering(ANCHOR, first, first + span)


# --- the versions PostgreSQL keeps ------------------------------------------------------------


def versions(conn, org: str) -> list[tuple]:
    return conn.execute(
        "SELECT v.effective_at, v.tier::text, v.anchor FROM plan_versions AS v "
        "JOIN organizations AS o ON o.id = v.organization_id WHERE o.slug = %s "
        "ORDER BY v.effective_at, v.id",
        (org,),
    ).fetchall()


def test_each_change_is_one_version_at_the_time_it_took_effect_never_an_update(conn):
    first = versions(conn, ORG)
    assert len(first) == 1 and first[0][0] == CALENDAR_MONTHS  # today's rows: since always
    conn.execute("SELECT set_config('odavl.plan_effective_at', '2026-10-20T08:00:00Z', true)")
    conn.execute(
        "UPDATE subscriptions SET analyses_limit = 900 WHERE organization_id = "
        "(SELECT id FROM organizations WHERE slug = %s)",
        (ORG,),
    )
    conn.execute("UPDATE organizations SET tier = 'ENTERPRISE' WHERE slug = %s", (ORG,))
    conn.commit()  # two writes, one transaction: one version, of the end state
    after = versions(conn, ORG)
    assert after[:1] == first and after[1:] == [
        (at("2026-10-20T08:00:00Z"), "ENTERPRISE", first[0][2])
    ]
    anchor = first[0][2]
    conn.execute(
        "UPDATE subscriptions SET current_period_start = %s + interval '1 month' "
        "WHERE organization_id = (SELECT id FROM organizations WHERE slug = %s)",
        (anchor, ORG),
    )
    conn.commit()  # Stripe moving to the next period: the same series, no new version
    assert versions(conn, ORG) == after


def test_a_new_organization_starts_on_free_with_calendar_months(conn):
    conn.execute(
        "INSERT INTO organizations (name, slug, tier, status) "
        "VALUES ('New Org', 'new-org', 'PRO', 'ACTIVE')"
    )
    conn.commit()
    assert versions(conn, "new-org") == [(CALENDAR_MONTHS, "FREE", None)]


# --- the marts ---------------------------------------------------------------------------------


def closed_rows(settings) -> list[tuple]:
    with open_marts(settings.marts_path) as marts:
        return marts.execute(
            "SELECT * FROM billing_periods WHERE closed ORDER BY org, period_start, metric"
        ).fetchall()


def test_a_rebuild_from_scratch_after_an_upgrade_leaves_every_closed_row_identical(settings, conn):
    anchor_subscription(conn, ORG, "2026-09-01T00:00:00Z", "2026-10-01T00:00:00Z")
    add_many(conn, ORG, "sep", 600, "2026-09-10T00:00:00Z", "2026-09-10T01:00:00Z")
    add_many(conn, ORG, "oct", 30, "2026-10-10T00:00:00Z", "2026-10-10T01:00:00Z")
    refresh_marts(settings, as_of=at("2026-10-11T00:00:00Z"))  # closes September on PRO
    before = closed_rows(settings)
    assert [(row[3], row[4], row[5], row[6]) for row in before] == [
        ("analyses", 600, 500, 100),
        ("audits", 0, 100, 0),
        ("fixes", 0, 200, 0),
    ]

    conn.execute("SELECT set_config('odavl.plan_effective_at', '2026-10-12T00:00:00Z', true)")
    conn.execute("UPDATE organizations SET tier = 'ENTERPRISE' WHERE slug = %s", (ORG,))
    conn.execute(
        "UPDATE subscriptions SET analyses_limit = NULL, fixes_limit = NULL, "
        "audits_limit = NULL WHERE organization_id = "
        "(SELECT id FROM organizations WHERE slug = %s)",
        (ORG,),
    )  # the plan's limits
    conn.commit()
    settings.marts_path.unlink()
    refresh_marts(settings, as_of=at("2026-10-13T00:00:00Z"), full=True)
    assert closed_rows(settings) == before  # September keeps PRO's quota and its overage
    with open_marts(settings.marts_path) as marts:
        october = marts.execute(
            "SELECT metric, used, quota FROM billing_periods WHERE org = ? "
            "AND NOT closed ORDER BY metric",
            [ORG],
        ).fetchall()
        status = marts.execute(
            "SELECT tier, metric, quota FROM quota_status WHERE org = ? ORDER BY metric", [ORG]
        ).fetchall()
    assert october == [("analyses", 30, 5_000), ("audits", 0, 1_000), ("fixes", 0, 2_000)]
    assert status == [
        ("ENTERPRISE", "analyses", 5_000),
        ("ENTERPRISE", "audits", 1_000),
        ("ENTERPRISE", "fixes", 2_000),
    ]  # the upgrade counts at once


def test_closed_rows_are_the_ones_postgres_recorded(settings, conn):
    anchor_subscription(conn, ORG, "2026-09-01T00:00:00Z", "2026-10-01T00:00:00Z")
    add_many(conn, ORG, "sep", 7, "2026-09-10T00:00:00Z", "2026-09-10T01:00:00Z")
    refresh_marts(settings, as_of=at("2026-10-05T00:00:00Z"))
    recorded = conn.execute(
        "SELECT u.metric, u.used, u.quota, u.overage, c.tier::text FROM billing_close_usage AS u "
        "JOIN billing_closes AS c USING (organization_id, period_start) "
        "JOIN organizations AS o ON o.id = u.organization_id WHERE o.slug = %s "
        "ORDER BY u.metric",
        (ORG,),
    ).fetchall()
    assert recorded == [
        ("analyses", 7, 500, 0, "PRO"),
        ("audits", 0, 100, 0, "PRO"),
        ("fixes", 0, 200, 0, "PRO"),
    ]


def test_an_organization_without_a_subscription_has_a_quota_status_on_free(settings, conn):
    conn.execute("SELECT set_config('odavl.plan_effective_at', '1970-01-01T00:00:00Z', true)")
    conn.execute(
        "DELETE FROM subscriptions WHERE organization_id = "
        "(SELECT id FROM organizations WHERE slug = %s)",
        (OTHER_ORG,),
    )
    conn.commit()
    add_many(conn, OTHER_ORG, "free", 85, "2026-11-03T00:00:00Z", "2026-11-03T01:00:00Z")
    refresh_marts(settings, as_of=at("2026-11-10T00:00:00Z"))
    with open_marts(settings.marts_path) as marts:
        status = marts.execute(
            "SELECT tier, period_start, period_end, metric, used, quota, status FROM quota_status "
            "WHERE org = ? ORDER BY metric",
            [OTHER_ORG],
        ).fetchall()
    november = (at("2026-11-01T00:00:00Z"), at("2026-12-01T00:00:00Z"))
    assert status == [
        ("FREE", *november, "analyses", 85, 100, "warning"),
        ("FREE", *november, "audits", 0, 20, "ok"),
        ("FREE", *november, "fixes", 0, 50, "ok"),
    ]


def test_the_check_fails_when_a_closed_row_differs_from_what_was_recorded(settings, conn):
    anchor_subscription(conn, ORG, "2026-09-01T00:00:00Z", "2026-10-01T00:00:00Z")
    add_many(conn, ORG, "sep", 7, "2026-09-10T00:00:00Z", "2026-09-10T01:00:00Z")
    refresh_marts(settings, as_of=at("2026-10-05T00:00:00Z"))
    with open_marts(settings.marts_path) as marts:
        assert reconcile.closed_periods_as_recorded(marts, conn).passed
    conn.execute("UPDATE billing_close_usage SET quota = 5000 WHERE metric = 'analyses'")
    conn.commit()
    with open_marts(settings.marts_path) as marts:
        found = reconcile.closed_periods_as_recorded(marts, conn)
    assert found.difference_count == 1 and found.differences[0]["metric"] == "analyses"


def test_a_cancellation_ends_the_paid_period_and_the_organization_goes_on_free(settings, conn):
    anchor_subscription(conn, ORG, "2026-10-15T00:00:00Z", "2026-11-15T00:00:00Z")
    conn.execute("SELECT set_config('odavl.plan_effective_at', '2026-10-20T12:00:00Z', true)")
    conn.execute(
        "UPDATE subscriptions SET status = 'CANCELED', canceled_at = '2026-10-20T12:00:00Z' "
        "WHERE organization_id = (SELECT id FROM organizations WHERE slug = %s)",
        (ORG,),
    )
    conn.execute("UPDATE organizations SET tier = 'FREE' WHERE slug = %s", (ORG,))
    conn.commit()
    add_many(conn, ORG, "paid", 30, "2026-10-18T00:00:00Z", "2026-10-18T01:00:00Z")
    add_many(conn, ORG, "free", 4, "2026-10-25T00:00:00Z", "2026-10-25T01:00:00Z")
    refresh_marts(settings, as_of=at("2026-10-26T00:00:00Z"))
    with open_marts(settings.marts_path) as marts:
        periods = marts.execute(
            "SELECT period_start, period_end, used, quota, closed FROM billing_periods "
            "WHERE org = ? AND metric = 'analyses' ORDER BY period_start",
            [ORG],
        ).fetchall()
        status = marts.execute(
            "SELECT tier, period_start, quota FROM quota_status "
            "WHERE org = ? AND metric = 'analyses'",
            [ORG],
        ).fetchall()
    canceled = at("2026-10-20T12:00:00Z")
    assert periods == [
        (at("2026-10-15T00:00:00Z"), canceled, 30, 500, True),
        (canceled, at("2026-11-01T00:00:00Z"), 4, 100, False),
    ]
    assert status == [("FREE", canceled, 100)]


def test_a_trial_counts_as_its_plan_and_past_due_keeps_it(conn):
    for status in ("TRIALING", "PAST_DUE"):
        conn.execute(
            "UPDATE subscriptions SET status = %s WHERE organization_id = "
            "(SELECT id FROM organizations WHERE slug = %s)",
            (status, ORG),
        )
        conn.commit()
        assert versions(conn, ORG)[-1][1] == "PRO", status
