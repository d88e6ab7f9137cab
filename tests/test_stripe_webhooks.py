"""The webhook endpoint served by uvicorn, fed by localstripe's own signed deliveries."""

import dataclasses
import json
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

import requests
import stripe
from psycopg.rows import dict_row

from odavl_pipeline.db.server import connect
from odavl_pipeline.stripe_billing.client import stripe_client
from odavl_pipeline.stripe_billing.signatures import compute_signature
from odavl_pipeline.stripe_billing.webhooks import create_app

from .stripe_emulator import TEST_API_KEY, TEST_WEBHOOK_SECRET, WebhookServer, create_plans, wait_until

ORG = "odavl-test-org"


@contextmanager
def endpoint(settings, **options) -> Iterator[WebhookServer]:
    server = WebhookServer(create_app(settings, **options))
    try:
        yield server
    finally:
        server.close()


def organization(settings, slug: str = ORG) -> dict:
    with connect(settings) as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT o.tier, o.stripe_customer_id, o.stripe_subscription_id, s.status, "
            "s.stripe_subscription_id AS subscription_id, s.stripe_price_id "
            "FROM organizations o LEFT JOIN subscriptions s ON s.organization_id = o.id "
            "WHERE o.slug = %s", (slug,)).fetchone()


def applied_events(settings) -> set[str]:
    with connect(settings) as conn:
        return {row[0] for row in conn.execute("SELECT id FROM stripe_events")}


def subscribe(client, plan: str, slug: str = ORG):
    customer = client.v1.customers.create({"metadata": {"org_slug": slug}})
    return customer, client.v1.subscriptions.create({"customer": customer.id,
                                                     "items": [{"plan": plan}]})


def test_a_delivered_event_is_applied_once_and_its_replay_changes_nothing(stripe_settings,
                                                                          stripe_emulator):
    client = stripe_client(stripe_settings)
    with endpoint(stripe_settings) as server:
        stripe_emulator.register_webhook(server.url, TEST_WEBHOOK_SECRET)
        plans = create_plans(client)
        customer, subscription = subscribe(client, plans.enterprise)
        every_event = {event.id for event in stripe_emulator.events()}
        wait_until(lambda: applied_events(stripe_settings) >= every_event, "every delivery")
        assert organization(stripe_settings) == {
            "tier": "ENTERPRISE", "stripe_customer_id": customer.id,
            "stripe_subscription_id": subscription.id, "status": "ACTIVE",
            "subscription_id": subscription.id, "stripe_price_id": plans.enterprise}
        assert all(status == 200 for status, _ in server.responses)

        with connect(stripe_settings) as conn:  # changed since, by someone else
            conn.execute("UPDATE organizations SET tier = 'PRO' WHERE slug = %s", (ORG,))
        [created] = stripe_emulator.events("customer.subscription.created")
        answered = len(server.responses)
        stripe_emulator.deliver(created)  # Stripe delivers the same event again

        assert server.responses[answered:] == [(200, {"event": created.id, "outcome": "already_applied",
                                                      "detail": ""})]
        assert organization(stripe_settings)["tier"] == "PRO"
        assert applied_events(stripe_settings) == every_event


def test_events_delivered_out_of_order_end_in_the_latest_state(stripe_settings, stripe_emulator):
    client = stripe_client(stripe_settings)
    with endpoint(stripe_settings) as server:
        stripe_emulator.register_webhook(server.url, TEST_WEBHOOK_SECRET)
        stripe_emulator.hold_webhooks()
        plans = create_plans(client)
        _, subscription = subscribe(client, plans.pro)
        client.v1.subscriptions.cancel(subscription.id)
        [created] = stripe_emulator.held("customer.subscription.created")
        [deleted] = stripe_emulator.held("customer.subscription.deleted")

        stripe_emulator.deliver(deleted, created)  # the cancellation arrives first

        assert [outcome["outcome"] for _, outcome in server.responses] == ["applied", "applied"]
        state = organization(stripe_settings)
        assert (state["status"], state["tier"], state["subscription_id"]) == (
            "CANCELED", "FREE", subscription.id)
        assert applied_events(stripe_settings) == {created.id, deleted.id}


def test_a_forged_signature_is_refused_and_changes_nothing(stripe_settings, stripe_emulator):
    client = stripe_client(stripe_settings)
    with endpoint(stripe_settings) as server:
        stripe_emulator.register_webhook(server.url, "whsec_not_ours")
        stripe_emulator.hold_webhooks()
        subscribe(client, create_plans(client).pro)
        stripe_emulator.deliver(*stripe_emulator.held("customer.subscription.created"))

        unsigned = requests.post(server.url, data=b"{}", timeout=5)

    assert server.responses == [(400, {"error": "no_matching_signature"}),
                                (400, {"error": "missing_header"})]
    assert unsigned.status_code == 400
    assert applied_events(stripe_settings) == set()
    assert organization(stripe_settings)["stripe_customer_id"] is None


def test_a_stale_signature_is_refused(stripe_settings, stripe_emulator):
    client = stripe_client(stripe_settings)
    five_minutes_later = lambda: time.time() + 301  # noqa: E731 - our clock, 301 s ahead
    with endpoint(stripe_settings, clock=five_minutes_later) as server:
        stripe_emulator.register_webhook(server.url, TEST_WEBHOOK_SECRET)
        stripe_emulator.hold_webhooks()
        subscribe(client, create_plans(client).pro)
        stripe_emulator.deliver(*stripe_emulator.held("customer.subscription.created"))

    assert server.responses == [(400, {"error": "timestamp_outside_tolerance"})]
    assert applied_events(stripe_settings) == set()


def test_during_a_secret_rotation_both_secrets_are_accepted_and_the_event_applied_once(
        stripe_settings, stripe_emulator):
    rotating = dataclasses.replace(stripe_settings,
                                   stripe_webhook_secret=f"whsec_retiring,{TEST_WEBHOOK_SECRET}")
    client = stripe_client(stripe_settings)
    with endpoint(rotating) as server:
        stripe_emulator.register_webhook(server.url, "whsec_retiring", name="old")
        stripe_emulator.register_webhook(server.url, TEST_WEBHOOK_SECRET, name="new")
        stripe_emulator.hold_webhooks()
        customer = client.v1.customers.create({"metadata": {"org_slug": ORG}})
        [created] = stripe_emulator.held("customer.created")
        stripe_emulator.deliver(created)  # once per endpoint registration, each signed its way

    assert sorted(outcome["outcome"] for _, outcome in server.responses) == [
        "already_applied", "applied"]
    assert organization(stripe_settings)["stripe_customer_id"] == customer.id


def test_an_event_not_applied_is_answered_500_and_applied_when_delivered_again(stripe_settings,
                                                                              stripe_emulator):
    client = stripe_client(stripe_settings)
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        nowhere = f"http://127.0.0.1:{unused.getsockname()[1]}"
    unreachable = stripe.StripeClient(TEST_API_KEY, base_addresses={"api": nowhere},
                                      max_network_retries=0)
    stripe_emulator.hold_webhooks()
    _, subscription = subscribe(client, create_plans(client).enterprise)
    [created] = stripe_emulator.held("customer.subscription.created")
    with endpoint(stripe_settings, client=unreachable) as server:
        stripe_emulator.register_webhook(server.url, TEST_WEBHOOK_SECRET)
        stripe_emulator.deliver(created)
    assert server.responses == [(500, {"error": "not_applied", "event": created.id})]
    assert applied_events(stripe_settings) == set()  # rolled back with its effect

    with endpoint(stripe_settings) as server:
        stripe_emulator.register_webhook(server.url, TEST_WEBHOOK_SECRET)
        stripe_emulator.deliver(created)
    assert server.responses[0][1]["outcome"] == "applied"
    assert organization(stripe_settings)["subscription_id"] == subscription.id


def test_a_signed_body_that_is_not_an_event_is_refused_and_health_answers(stripe_settings):
    body = json.dumps({"id": "evt_1", "type": "customer.updated"}).encode()
    now = int(time.time())
    signature = f"t={now},v1={compute_signature(TEST_WEBHOOK_SECRET, now, body)}"
    with endpoint(stripe_settings, client=stripe_client(stripe_settings)) as server:
        refused = requests.post(server.url, data=body, headers={"Stripe-Signature": signature},
                                timeout=5)
        health = requests.get(f"{server.base}/healthz", timeout=5)
    assert refused.status_code == 400
    assert refused.json()["error"] == "malformed_event"
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
