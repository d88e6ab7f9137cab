"""Plan history follows Stripe's own timeline, whatever the order, delay, duplication or retry
of the deliveries: subscriptions changed at localstripe, their events delivered to the webhook
endpoint and processed from its inbox (issue 21, case 4)."""

import random
import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from odavl_pipeline import clock
from odavl_pipeline.db.server import connect
from odavl_pipeline.marts.build import refresh_marts
from odavl_pipeline.marts.store import open_marts
from odavl_pipeline.stripe_billing.client import stripe_client
from odavl_pipeline.stripe_billing.sync import process_due

from .stripe_emulator import (
    TEST_WEBHOOK_SECRET,
    WebhookServer,
    create_plans,
    endpoint,
    wait_until,
)

pytestmark = pytest.mark.stripe

ORG = "odavl-test-org"
START = datetime(2031, 3, 10, 9, tzinfo=UTC)  # Stripe signs on our clock, years from the system's
FREE_CANCELED = ("FREE", "CANCELED", None)


@contextmanager
def endpoint_without_database(app_settings) -> Iterator[WebhookServer]:
    """The endpoint while its database is down: deliveries are answered 503."""
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        nowhere = f"postgresql+psycopg://postgres@127.0.0.1:{unused.getsockname()[1]}/odavl"
    with endpoint(app_settings.replace(database_url=nowhere), workers=0) as server:
        yield server


def history(app_settings, org: str, since: datetime) -> list[tuple]:
    """The organization's plans from `since`: (effective_at, tier, status, analyses limit), of
    two versions of one instant the last recorded, a version equal to the one before left out."""
    with connect(app_settings) as conn:
        rows = conn.execute(
            "SELECT DISTINCT ON (v.effective_at) v.effective_at, v.tier::text, v.status::text, "
            "v.analyses_limit FROM plan_versions AS v JOIN organizations AS o "
            "ON o.id = v.organization_id WHERE o.slug = %s "
            "ORDER BY v.effective_at, v.id DESC",
            (org,),
        ).fetchall()
    merged: list[tuple] = []
    for row in rows:
        if not merged or merged[-1][1:] != row[1:]:
            merged.append(row)
    return [row for row in merged if row[0] >= since]


def settled(read: Callable[[], object], expected: object, what: str) -> object:
    """`read()` once it equals `expected`, else its last value after the wait."""
    try:
        wait_until(lambda: read() == expected, what)
    except AssertionError:
        pass
    return read()


def moment(event) -> datetime:
    return datetime.fromtimestamp(event.created, UTC)


def quota_status(app_settings, org: str) -> list[tuple]:
    with open_marts(app_settings.marts_path) as marts:
        return marts.execute(
            "SELECT tier, quota FROM quota_status WHERE org = ? AND metric = 'analyses'", [org]
        ).fetchall()


def upgrade(client, subscription, plan: str) -> None:
    item = subscription.items.data[0].id
    client.v1.subscriptions.update(subscription.id, {"items": [{"id": item, "plan": plan}]})


def pro_then_enterprise_then_canceled(client, clock_at, stripe_emulator, slug: str = ORG):
    """Stripe's timeline: PRO on day 0, ENTERPRISE (analyses 9,000) on day 3, canceled on day
    10; returns the events held back: customer created, subscription created, updated, deleted."""
    stripe_emulator.hold_webhooks()
    clock_at(START)
    plans = create_plans(client)
    customer = client.v1.customers.create({"metadata": {"org_slug": slug}})
    subscription = client.v1.subscriptions.create(
        {"customer": customer.id, "items": [{"plan": plans.pro}]}
    )
    clock_at(START + timedelta(days=3))
    upgrade(client, subscription, plans.enterprise)
    clock_at(START + timedelta(days=10))
    client.v1.subscriptions.cancel(subscription.id)
    clock_at(START + timedelta(days=10, hours=1))
    return (
        *stripe_emulator.held("customer.created"),
        *stripe_emulator.held("customer.subscription.created"),
        *stripe_emulator.held("customer.subscription.updated"),
        *stripe_emulator.held("customer.subscription.deleted"),
    )


def test_an_event_refused_then_retried_after_later_ones_keeps_stripe_s_history(
    stripe_settings, stripe_emulator, clock_at
):
    """The issue's first case: the subscription's creation is refused (the database is down),
    the upgrade and the cancellation are applied, then Stripe delivers the creation again."""
    client = stripe_client(stripe_settings)
    customer, created, updated, deleted = pro_then_enterprise_then_canceled(
        client, clock_at, stripe_emulator
    )
    with endpoint_without_database(stripe_settings) as down:
        refused = stripe_emulator.deliver_to(down.url, TEST_WEBHOOK_SECRET, customer, created)
    assert [answer.status_code for answer in refused] == [503, 503]
    expected = [
        (moment(created), "PRO", "ACTIVE", None),
        (moment(updated), "ENTERPRISE", "ACTIVE", 9000),
        (moment(deleted), *FREE_CANCELED),
    ]
    with endpoint(stripe_settings) as server:
        clock_at(START + timedelta(days=10, hours=2))
        stripe_emulator.deliver_to(server.url, TEST_WEBHOOK_SECRET, updated, deleted)
        clock_at(START + timedelta(days=10, hours=5))  # Stripe's retries, hours later
        stripe_emulator.deliver_to(server.url, TEST_WEBHOOK_SECRET, customer, created)
        found = settled(lambda: history(stripe_settings, ORG, START), expected, "the history")
    assert found == expected
    with connect(stripe_settings) as conn:
        assert (
            conn.execute("SELECT tier::text FROM organizations WHERE slug = %s", (ORG,)).fetchone()[
                0
            ]
            == "FREE"
        )
    refresh_marts(stripe_settings, as_of=clock.now())
    assert quota_status(stripe_settings, ORG) == [("FREE", 100)]


def test_events_delivered_after_the_cancellation_still_record_the_paid_interval(
    stripe_settings, stripe_emulator, clock_at
):
    client = stripe_client(stripe_settings)
    customer, created, updated, deleted = pro_then_enterprise_then_canceled(
        client, clock_at, stripe_emulator
    )
    with endpoint(stripe_settings) as server:
        # the newest first
        stripe_emulator.deliver_to(
            server.url, TEST_WEBHOOK_SECRET, deleted, updated, customer, created
        )
        found = settled(
            lambda: history(stripe_settings, ORG, START),
            [
                (moment(created), "PRO", "ACTIVE", None),
                (moment(updated), "ENTERPRISE", "ACTIVE", 9000),
                (moment(deleted), *FREE_CANCELED),
            ],
            "the history",
        )
    assert found == [
        (moment(created), "PRO", "ACTIVE", None),
        (moment(updated), "ENTERPRISE", "ACTIVE", 9000),
        (moment(deleted), *FREE_CANCELED),
    ]


# --- any order, delay, duplication and retry ----------------------------------------------------

PLANS = ("PRO", "ENTERPRISE")
PLAN_OF = {"PRO": ("PRO", "ACTIVE", None), "ENTERPRISE": ("ENTERPRISE", "ACTIVE", 9000)}
GAPS = st.integers(1, 40 * 24 * 3600).map(lambda seconds: timedelta(seconds=seconds))


@st.composite
def scenarios(draw) -> list[tuple[timedelta, str, str | None]]:
    """What a customer does at Stripe, one change after another: (wait before it, action,
    plan): subscribe to a plan, switch to the other, cancel (one live subscription at a time)."""
    steps, live = [], None
    for _ in range(draw(st.integers(1, 5))):
        if live is None:
            live = draw(st.sampled_from(PLANS))
            steps.append((draw(GAPS), "subscribe", live))
        elif draw(st.booleans()):
            live = PLANS[1 - PLANS.index(live)]
            steps.append((draw(GAPS), "switch", live))
        else:
            steps.append((draw(GAPS), "cancel", None))
            live = None
    return steps


CHANGE_EVENTS = {
    "subscribe": "customer.subscription.created",
    "switch": "customer.subscription.updated",
    "cancel": "customer.subscription.deleted",
}


def play(client, emulator, scenario, plans, customer_id: str, clock_at) -> list[tuple]:
    """Make the scenario's changes at Stripe at their times; Stripe's timeline of the plan:
    (when Stripe made the change, tier, status, analyses limit) after each change."""
    now, subscription, timeline = START, None, []
    for gap, action, plan in scenario:
        now += gap
        clock_at(now)
        price = {"PRO": plans.pro, "ENTERPRISE": plans.enterprise}.get(plan)
        if action == "subscribe":
            subscription = client.v1.subscriptions.create(
                {"customer": customer_id, "items": [{"plan": price}]}
            )
        elif action == "switch":
            upgrade(client, subscription, price)
        else:
            client.v1.subscriptions.cancel(subscription.id)
        changed = moment(emulator.held(CHANGE_EVENTS[action])[-1])
        timeline.append((changed, *(PLAN_OF[plan] if plan else FREE_CANCELED)))
    return timeline


DELAYS = st.integers(0, 3 * 24 * 3600).map(lambda seconds: timedelta(seconds=seconds))
PROCESSING = st.sampled_from(["later", "now", "stripe down"])


@st.composite
def deliveries(draw, events: list) -> list[tuple]:
    """Each event delivered once or twice, in any order, each after a delay; a delivery maybe
    refused (the database down), the inbox processed after it or not, with Stripe's API up or
    down: [(event, refused, delay, processing)]."""
    copies = [event for event in events for _ in range(draw(st.integers(1, 2)))]
    return [
        (event, draw(st.booleans()), draw(DELAYS), draw(PROCESSING))
        for event in draw(st.permutations(copies))
    ]


@hypothesis_settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_plan_history_is_stripe_s_timeline_whatever_the_deliveries(
    stripe_settings, stripe_emulator_server, clock_at, data
):
    random.seed(uuid.uuid4().int)  # localstripe's ids: new in each example (Hypothesis seeds it)
    emulator = stripe_emulator_server
    emulator.reset()
    client = stripe_client(stripe_settings)
    slug = f"timeline-{uuid.uuid4().hex[:10]}"
    with connect(stripe_settings) as conn:
        conn.execute(
            "INSERT INTO organizations (name, slug, tier, status) VALUES (%s, %s, 'FREE', "
            "'ACTIVE')",
            (slug, slug),
        )
    clock_at(START)
    emulator.hold_webhooks()
    plans = create_plans(client)
    customer = client.v1.customers.create({"metadata": {"org_slug": slug}})
    scenario = data.draw(scenarios(), label="at Stripe")
    expected = play(client, emulator, scenario, plans, customer.id, clock_at)
    events = [
        event
        for event in emulator.held(None)
        if event.type == "customer.created" or event.type.startswith("customer.subscription.")
    ]
    plan = data.draw(deliveries(events), label="deliveries")
    now = clock.now()
    with (
        endpoint(stripe_settings, workers=0) as server,
        endpoint_without_database(stripe_settings) as down,
    ):
        delivered = set()
        for event, refused, delay, processing in plan:
            now += delay
            clock_at(now)
            if refused and event.id not in delivered:
                [answer] = emulator.deliver_to(down.url, TEST_WEBHOOK_SECRET, event)
                assert answer.status_code == 503, answer.text
            else:
                [answer] = emulator.deliver_to(server.url, TEST_WEBHOOK_SECRET, event)
                assert answer.status_code == 200, answer.text
                delivered.add(event.id)
            if processing == "stripe down":
                emulator.faults.answer("/v1/products/", 503)
            if processing != "later":
                process_due(stripe_settings, client)
            emulator.faults.rules.clear()
        for event in events:  # Stripe delivers again what was refused, until it is taken
            if event.id not in delivered:
                [answer] = emulator.deliver_to(server.url, TEST_WEBHOOK_SECRET, event)
                assert answer.status_code == 200, answer.text
        for _ in range(20):  # the retries come due
            now += timedelta(hours=2)
            clock_at(now)
            process_due(stripe_settings, client)
    with connect(stripe_settings) as conn:
        left = conn.execute(
            "SELECT id, status, detail FROM stripe_events WHERE status <> 'processed'"
        ).fetchall()
        tier = conn.execute("SELECT tier::text FROM organizations WHERE slug = %s", (slug,))
        tier = tier.fetchone()[0]
    assert left == []
    merged = [row for n, row in enumerate(expected) if n == 0 or expected[n - 1][1:] != row[1:]]
    assert history(stripe_settings, slug, START) == merged
    assert tier == merged[-1][1]
