"""Quota as it stands (odavl_pipeline/billing/live_quota.py): the last build's figures plus what
the ledger took in since its cut give exactly what a build at that moment publishes, across a
period's end, late usage into a closed period, a plan change, and before any build."""

import json
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime

import pytest

from odavl_pipeline import clock
from odavl_pipeline.api import keys, records
from odavl_pipeline.billing.live_quota import PublishedQuota, live_quota
from odavl_pipeline.db.server import connect
from odavl_pipeline.defs.marts.checks import evaluate_mart_checks
from odavl_pipeline.marts.build import refresh_marts
from odavl_pipeline.marts.store import open_marts, read_quota_status

from .records import ORG, usage

pytestmark = pytest.mark.clock("2026-11-20T12:00:00Z")


@pytest.fixture
def alice(settings):
    with connect(settings) as conn:
        key, _ = keys.create(conn, "alice@odavl.com", "test", ["usage:write"])
        return keys.holder(conn, key)


def send(settings, holder, *sent):
    with connect(settings) as conn:
        outcome = records.take_records(
            conn, holder, "usage_events", list(sent), json.dumps(sent).encode(), "application/json"
        )
    assert [result.status for result in outcome.results] == ["accepted"] * len(sent)


def live(settings):
    """The live quota of ORG now, on the published marts."""
    with connect(settings) as conn:
        [org_id] = conn.execute("SELECT id FROM organizations WHERE slug = %s", (ORG,)).fetchone()
        published = PublishedQuota(settings.marts_path).period_of(ORG)
        return live_quota(conn, org_id, ORG, published, clock.now())


def published(settings) -> dict[str, tuple]:
    """quota_status of ORG per metric: (tier, period_start, period_end, used, quota)."""
    return {
        row["metric"]: (
            row["tier"],
            row["period_start"],
            row["period_end"],
            row["used"],
            row["quota"],
        )
        for row in read_quota_status(settings.marts_path, ORG)
    }


def as_published(quota) -> dict[str, tuple]:
    return {
        metric: (quota.tier, quota.period_start, quota.period_end, used, quota.quota[metric])
        for metric, used in quota.used.items()
    }


def test_what_arrived_since_the_build_counts_as_the_next_build_will_count_it(settings, alice):
    send(
        settings,
        alice,
        usage("oct-1", occurred_at="2026-10-20T09:00:00Z", quantity=7),  # October: closes
        usage("nov-1", occurred_at="2026-11-03T09:00:00Z", quantity=2),
        usage("nov-fix", event_type="autopilot_job", occurred_at="2026-11-19T09:00:00Z"),
    )
    refresh_marts(settings)
    before = published(settings)
    assert before["analyses"][3] == 2 and before["fixes"][3] == 1
    send(
        settings,
        alice,
        usage("nov-2", occurred_at="2026-11-20T09:00:00Z", quantity=40),
        usage("oct-late", occurred_at="2026-10-30T09:00:00Z", quantity=5),  # booked into November
    )
    now = live(settings)
    assert now.used["analyses"] == 2 + 40 + 5 and now.booked["analyses"] == 5
    assert now.used["fixes"] == 1 and now.used["audits"] == 0
    assert now.as_json()["metrics"]["analyses"]["remaining"] == 500 - 47
    refresh_marts(settings)
    assert published(settings) == as_published(now)  # one number: the next build agrees


def test_a_period_that_ended_after_the_build_gives_way_to_the_new_one(settings, alice, clock_at):
    send(settings, alice, usage("nov-1", occurred_at="2026-11-03T09:00:00Z", quantity=3))
    refresh_marts(settings)
    assert published(settings)["analyses"][1:4] == (
        datetime(2026, 11, 1, tzinfo=UTC),
        datetime(2026, 12, 1, tzinfo=UTC),
        3,
    )
    clock_at("2026-12-01T00:10:00Z")  # within November's grace: it is still open
    send(
        settings,
        alice,
        usage("nov-grace", occurred_at="2026-11-30T23:59:59Z", quantity=11),  # November's
        usage("dec-1", occurred_at="2026-12-01T00:05:00Z", quantity=4),
    )
    now = live(settings)
    assert (now.period_start, now.period_end) == (
        datetime(2026, 12, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )
    assert now.used["analyses"] == 4 and now.booked["analyses"] == 0
    refresh_marts(settings)
    assert published(settings) == as_published(now)


def test_before_any_build_the_period_is_summed_from_the_ledger(settings, alice):
    assert not settings.marts_path.exists()
    send(
        settings,
        alice,
        usage("nov-1", occurred_at="2026-11-03T09:00:00Z", quantity=9),
        usage("nov-audit", event_type="guardian_test_run", occurred_at="2026-11-04T09:00:00Z"),
    )
    now = live(settings)
    assert now.tier == "PRO" and now.quota == {"analyses": 500, "fixes": 200, "audits": 100}
    assert now.used == {"analyses": 9, "fixes": 0, "audits": 1}
    refresh_marts(settings)
    assert published(settings) == as_published(now)


def test_a_plan_change_since_the_build_applies_at_once(settings, alice):
    send(settings, alice, usage("nov-1", occurred_at="2026-11-03T09:00:00Z", quantity=450))
    refresh_marts(settings)
    assert published(settings)["analyses"][4] == 500
    with connect(settings) as conn:  # the subscription's analyses raised, as a webhook does
        conn.execute(
            "UPDATE subscriptions SET analyses_limit = 5000 WHERE organization_id = "
            "(SELECT id FROM organizations WHERE slug = %s)",
            (ORG,),
        )
    now = live(settings)
    assert now.quota["analyses"] == 5000 and now.used["analyses"] == 450
    assert now.as_json()["metrics"]["analyses"]["status"] == "ok"
    refresh_marts(settings)
    assert published(settings) == as_published(now)


def test_an_exceeded_quota_says_so_with_the_day_it_was_reached(settings, alice):
    send(settings, alice, usage("nov-1", occurred_at="2026-11-10T09:00:00Z", quantity=499))
    refresh_marts(settings)
    send(settings, alice, usage("nov-2", occurred_at="2026-11-20T11:00:00Z", quantity=2))
    analyses = live(settings).as_json()["metrics"]["analyses"]
    assert (analyses["used"], analyses["remaining"], analyses["status"]) == (501, 0, "exceeded")
    assert analyses["projected_exhaustion"] == "2026-11-20"
    refresh_marts(settings)
    [row] = [r for r in read_quota_status(settings.marts_path, ORG) if r["metric"] == "analyses"]
    assert (row["used"], row["status"], str(row["projected_exhaustion"])) == (
        501,
        "exceeded",
        "2026-11-20",
    )


class WriteWhileBuilding:
    """A marts timer that sends records when the build starts reading usage: after its cut."""

    def __init__(self, write):
        self.write, self.done = write, False

    @contextmanager
    def step(self, name: str):
        if name == "usage" and not self.done:
            self.done = True
            self.write()
        yield

    def statement(self, sql: str):
        return nullcontext()


def test_a_build_holds_what_was_stamped_before_its_cut_and_the_rest_counts_once(settings, alice):
    send(settings, alice, usage("before", occurred_at="2026-11-20T09:00:00Z", quantity=3))
    during = WriteWhileBuilding(
        lambda: send(settings, alice, usage("during", occurred_at="2026-11-20T10:00:00Z"))
    )
    report = refresh_marts(settings, timer=during)
    assert during.done
    # the build read 20 November after the record came, and left it for the next build
    with open_marts(settings.marts_path) as marts:
        assert marts.execute(
            "SELECT quantity FROM usage_daily WHERE org = ? AND day = '2026-11-20'", [ORG]
        ).fetchall() == [(3,)]
    assert published(settings)["analyses"][3] == 3
    assert all(check.passed for check in evaluate_mart_checks(settings, report.rebuilt))
    assert all(check.passed for check in evaluate_mart_checks(settings))
    now = live(settings)
    assert now.used["analyses"] == 4
    refresh_marts(settings)
    assert published(settings) == as_published(now)
