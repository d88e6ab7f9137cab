"""The webhook endpoint served by its bounded uvicorn, fed by localstripe's own signed
deliveries and by deliveries of ours that it must refuse with a 400 and a reason; the events
it stores are processed by its inbox workers."""

import json
import logging
import socket

import pytest
import requests
from psycopg.rows import dict_row

from odavl_pipeline.db import migrate
from odavl_pipeline.db.server import connect
from odavl_pipeline.stripe_billing.client import stripe_client

from .stripe_emulator import (
    TEST_WEBHOOK_SECRET,
    WebhookServer,
    create_plans,
    endpoint,
    wait_until,
)
from .stripe_signing import signature_header, signed_now

pytestmark = pytest.mark.stripe

ORG = "odavl-test-org"


def organization(settings, slug: str = ORG) -> dict:
    with connect(settings) as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT o.tier, o.stripe_customer_id, o.stripe_subscription_id, s.status, "
            "s.stripe_subscription_id AS subscription_id, s.stripe_price_id "
            "FROM organizations o LEFT JOIN subscriptions s ON s.organization_id = o.id "
            "WHERE o.slug = %s",
            (slug,),
        ).fetchone()


def applied_events(settings) -> set[str]:
    """The events processed."""
    with connect(settings) as conn:
        return {
            row[0]
            for row in conn.execute("SELECT id FROM stripe_events WHERE status = 'processed'")
        }


def stored_events(settings) -> set[str]:
    with connect(settings) as conn:
        return {row[0] for row in conn.execute("SELECT id FROM stripe_events")}


def post(server: WebhookServer, body: bytes, signature: str | None) -> requests.Response:
    headers = {} if signature is None else {"Stripe-Signature": signature}
    return requests.post(server.url, data=body, headers=headers, timeout=30)


def event(**fields) -> dict:
    return {
        "id": "evt_odd",
        "type": "customer.updated",
        "created": signed_now(),
        "data": {"object": {"id": "cus_odd"}},
        **fields,
    }


def subscribe(client, plan: str, slug: str = ORG):
    customer = client.v1.customers.create({"metadata": {"org_slug": slug}})
    return customer, client.v1.subscriptions.create(
        {"customer": customer.id, "items": [{"plan": plan}]}
    )


@pytest.mark.clock("2031-06-15T08:00:00Z")  # years from the system's: Stripe signs on our clock
def test_a_delivered_event_is_applied_once_and_its_replay_changes_nothing(
    stripe_settings, stripe_emulator
):
    client = stripe_client(stripe_settings)
    with endpoint(stripe_settings) as server:
        stripe_emulator.register_webhook(server.url, TEST_WEBHOOK_SECRET)
        plans = create_plans(client)
        customer, subscription = subscribe(client, plans.enterprise)
        every_event = {event.id for event in stripe_emulator.events()}
        assert all(abs(event.created - signed_now()) < 60 for event in stripe_emulator.events())
        wait_until(lambda: applied_events(stripe_settings) >= every_event, "every delivery")
        assert organization(stripe_settings) == {
            "tier": "ENTERPRISE",
            "stripe_customer_id": customer.id,
            "stripe_subscription_id": subscription.id,
            "status": "ACTIVE",
            "subscription_id": subscription.id,
            "stripe_price_id": plans.enterprise,
        }
        assert all(status == 200 for status, _ in server.responses)

        with connect(stripe_settings) as conn:  # changed since, by someone else
            conn.execute("UPDATE organizations SET tier = 'PRO' WHERE slug = %s", (ORG,))
        [created] = stripe_emulator.events("customer.subscription.created")
        answered = len(server.responses)
        stripe_emulator.deliver(created)  # Stripe delivers the same event again

        assert server.responses[answered:] == [(200, {"event": created.id, "outcome": "duplicate"})]
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

        assert [outcome["outcome"] for _, outcome in server.responses] == ["received"] * 2
        wait_until(
            lambda: applied_events(stripe_settings) == {created.id, deleted.id}, "processing"
        )
        state = organization(stripe_settings)
        assert (state["status"], state["tier"], state["subscription_id"]) == (
            "CANCELED",
            "FREE",
            subscription.id,
        )
        assert applied_events(stripe_settings) == {created.id, deleted.id}


def test_a_signature_by_another_secret_is_refused_and_changes_nothing(
    stripe_settings, stripe_emulator
):
    client = stripe_client(stripe_settings)
    with endpoint(stripe_settings) as server:
        stripe_emulator.register_webhook(server.url, "whsec_not_ours")
        stripe_emulator.hold_webhooks()
        subscribe(client, create_plans(client).pro)
        stripe_emulator.deliver(*stripe_emulator.held("customer.subscription.created"))

        unsigned = post(server, b"{}", None)

    assert [(status, answer["error"]) for status, answer in server.responses] == [
        (400, "invalid_signature"),
        (400, "missing_header"),
    ]
    assert server.responses[0][1]["detail"]  # stripe's message
    assert unsigned.status_code == 400
    assert stored_events(stripe_settings) == set()
    assert organization(stripe_settings)["stripe_customer_id"] is None


def test_an_old_timestamp_is_refused(stripe_settings):
    body = json.dumps(event()).encode()
    with endpoint(stripe_settings) as server:
        stale = post(server, body, signature_header(body, TEST_WEBHOOK_SECRET, signed_now() - 301))
    assert (stale.status_code, stale.json()["error"]) == (400, "timestamp_outside_tolerance")
    assert stored_events(stripe_settings) == set()


def test_during_a_secret_rotation_both_secrets_are_accepted_and_the_event_applied_once(
    stripe_settings, stripe_emulator
):
    rotating = stripe_settings.replace(
        stripe_webhook_secret=f"whsec_retiring,{TEST_WEBHOOK_SECRET}"
    )
    client = stripe_client(stripe_settings)
    with endpoint(rotating) as server:
        stripe_emulator.register_webhook(server.url, "whsec_retiring", name="old")
        stripe_emulator.register_webhook(server.url, TEST_WEBHOOK_SECRET, name="new")
        stripe_emulator.hold_webhooks()
        customer = client.v1.customers.create({"metadata": {"org_slug": ORG}})
        [created] = stripe_emulator.held("customer.created")
        stripe_emulator.deliver(created)  # once per endpoint registration, each signed its way
        wait_until(lambda: applied_events(stripe_settings) == {created.id}, "processing")

    assert sorted(outcome["outcome"] for _, outcome in server.responses) == [
        "duplicate",
        "received",
    ]
    assert organization(stripe_settings)["stripe_customer_id"] == customer.id


def test_an_event_not_stored_for_the_database_is_answered_503(stripe_settings):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        nowhere = f"postgresql+psycopg://postgres@127.0.0.1:{unused.getsockname()[1]}/odavl"
    body = json.dumps(event(id="evt_no_db")).encode()
    with endpoint(stripe_settings.replace(database_url=nowhere)) as server:
        answer = post(server, body, signature_header(body, TEST_WEBHOOK_SECRET))
    assert (answer.status_code, answer.json()) == (
        503,
        {"error": "not_stored", "event": "evt_no_db"},
    )


def test_an_unexpected_failure_is_a_500_logged_with_the_event_id_not_the_body(
    stripe_settings, database_url, caplog
):
    """A server started on a database not migrated to the inbox yet: storing fails."""
    migrate.downgrade(database_url, "0010")
    body = json.dumps(event(id="evt_bug", note="body-only-text")).encode()
    with endpoint(stripe_settings, workers=0) as server, caplog.at_level(logging.INFO):
        answer = post(server, body, signature_header(body, TEST_WEBHOOK_SECRET))
    assert (answer.status_code, answer.json()) == (
        500,
        {"error": "internal_error", "event": "evt_bug"},
    )
    assert "evt_bug" in caplog.text and "payload" in caplog.text  # the missing column
    assert "body-only-text" not in caplog.text and TEST_WEBHOOK_SECRET not in caplog.text


def test_a_signed_body_that_is_not_an_event_is_refused_and_health_answers(stripe_settings):
    body = json.dumps({"id": "evt_1", "type": "customer.updated"}).encode()
    with endpoint(stripe_settings, client=stripe_client(stripe_settings)) as server:
        refused = post(server, body, signature_header(body, TEST_WEBHOOK_SECRET))
        health = requests.get(f"{server.base}/healthz", timeout=5)
    assert refused.status_code == 400
    assert refused.json() == {
        "error": "malformed_event",
        "detail": "created: an integer of Unix seconds, 0 to 253402300799",
    }
    assert (health.status_code, health.json()) == (200, {"status": "ok"})


# --- regressions: each of these answered 500 before ---------------------------------------


def test_an_unsigned_header_with_a_superscript_digit_is_refused(stripe_settings):
    with endpoint(stripe_settings) as server:
        answer = post(server, b"{}", "t=²")  # "²".isdigit(), but int() refuses it
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_signature")


def test_a_non_ascii_v1_before_a_valid_one_is_refused(stripe_settings):
    """Found by the fuzzer: stripe's comparison raises TypeError on a non-ASCII `v1`."""
    body = json.dumps(event()).encode()
    t, valid = signature_header(body, TEST_WEBHOOK_SECRET).split(",")
    with endpoint(stripe_settings) as server:
        answer = post(server, body, f"{t},v1=é,{valid}")
    assert answer.json() == {
        "error": "invalid_signature",
        "detail": "the Stripe-Signature header is not ASCII",
    }
    assert answer.status_code == 400


def test_a_signed_body_nested_200000_deep_is_refused(stripe_settings):
    body = b"[" * 200_000 + b"]" * 200_000
    with endpoint(stripe_settings) as server:
        answer = post(server, body, signature_header(body, TEST_WEBHOOK_SECRET))
    assert (answer.status_code, answer.json()["error"]) == (400, "malformed_event")
    assert "recursion" in answer.json()["detail"]


@pytest.mark.parametrize("created", [True, 10**20, -1, 253402300800, 1.5e9, "1800000000"])
def test_a_signed_event_with_an_impossible_created_is_refused(stripe_settings, created):
    body = json.dumps(event(created=created)).encode()
    with endpoint(stripe_settings) as server:
        answer = post(server, body, signature_header(body, TEST_WEBHOOK_SECRET))
    assert answer.status_code == 400
    assert answer.json()["error"] == "malformed_event"
    assert answer.json()["detail"].startswith("created:")
    assert stored_events(stripe_settings) == set()


@pytest.mark.parametrize(
    "field, fields",
    [
        ("id", {"id": "e" * 256}),  # stripe_events.id is 255 characters
        ("id", {"id": "evt_\x00"}),  # Postgres text holds no NUL
        ("type", {"type": "customer." + "u" * 92}),  # stripe_events.type is 100 characters
        ("type", {"type": "customer.\ud800"}),  # a lone surrogate is not UTF-8
        ("data.object", {"data": {"object": ["cus_1"]}}),
        ("data.object.id", {"data": {"object": {"id": 42}}}),
        # found by the fuzzer: an empty id or a dot segment fetched another URL of the API
        ("data.object.id", {"type": "customer.updated", "data": {"object": {"id": ""}}}),
        ("data.object.id", {"type": "customer.updated", "data": {"object": {"id": "."}}}),
        (
            "data.object.id",
            {"type": "customer.subscription.updated", "data": {"object": {"id": ".."}}},
        ),
    ],
)
def test_a_signed_event_with_a_field_we_cannot_store_or_fetch_is_refused(
    stripe_settings, field, fields
):
    body = json.dumps(event(**fields)).encode()
    with endpoint(stripe_settings) as server:
        answer = post(server, body, signature_header(body, TEST_WEBHOOK_SECRET))
    assert (answer.status_code, answer.json()["error"]) == (400, "malformed_event")
    assert answer.json()["detail"].startswith(f"{field}:")
    assert stored_events(stripe_settings) == set()
