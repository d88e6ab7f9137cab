"""Webhooks through an inbox (issue 21, case 5): an event is stored and answered before Stripe is
asked anything; it is processed apart, in Stripe's order per customer, retried with backoff
while Stripe or the database fails, and set aside with its reason when retrying cannot help,
never answered 500 for ever nor "ignored"; `doctor` lists what is set aside, `stripe retry`
brings it back."""

import json
from datetime import UTC, datetime, timedelta

import pytest
import requests
import stripe

from odavl_pipeline import clock, doctor
from odavl_pipeline.db.server import connect
from odavl_pipeline.stripe_billing import inbox
from odavl_pipeline.stripe_billing.client import stripe_client
from odavl_pipeline.stripe_billing.sync import process_due, process_next

from .commands import cli
from .records import ORG, OTHER_ORG
from .stripe_emulator import TEST_API_KEY, TEST_WEBHOOK_SECRET, endpoint, wait_until
from .stripe_signing import signature_header, signed_now

pytestmark = [pytest.mark.stripe, pytest.mark.clock("2031-06-15T08:00:00Z")]

PERIOD_START = int(datetime(2031, 6, 1, tzinfo=UTC).timestamp())
PERIOD_END = int(datetime(2031, 7, 1, tzinfo=UTC).timestamp())
ENTERPRISE_PRICE = {"id": "price_ent", "metadata": {"tier": "ENTERPRISE"}, "product": "prod_e"}


def subscription(
    sub_id: str = "sub_ours", customer: str = "cus_ours", price: dict | None = None, **fields
) -> dict:
    """A subscription as an event carries it (API version 2025-03-31: the period on its item)."""
    item = {
        "id": f"si_{sub_id}",
        "price": price or ENTERPRISE_PRICE,
        "current_period_start": PERIOD_START,
        "current_period_end": PERIOD_END,
    }
    return {
        "id": sub_id,
        "object": "subscription",
        "customer": customer,
        "status": "active",
        "cancel_at": None,
        "canceled_at": None,
        "items": {"object": "list", "data": [item]},
        **fields,
    }


def event(obj: dict, kind: str = "customer.subscription.updated", **fields) -> dict:
    return {
        "id": f"evt_{obj['id']}_{kind.rsplit('.', 1)[1]}",
        "object": "event",
        "type": kind,
        "created": signed_now(),
        "livemode": False,
        "data": {"object": obj},
        **fields,
    }


def post(url: str, body: dict) -> requests.Response:
    data = json.dumps(body).encode()
    return requests.post(
        url,
        data=data,
        headers={"Stripe-Signature": signature_header(data, TEST_WEBHOOK_SECRET)},
        timeout=10,
    )


def store(app_settings, *events: dict) -> None:
    """Events stored as the endpoint stores them (verified), without its workers."""
    with connect(app_settings) as conn:
        for body in events:
            assert inbox.receive(conn, inbox.parse_event(body), json.dumps(body))


def link(app_settings, slug: str, customer: str) -> None:
    with connect(app_settings) as conn:
        conn.execute(
            "UPDATE organizations SET stripe_customer_id = %s WHERE slug = %s", (customer, slug)
        )


def row(app_settings, event_id: str) -> dict:
    with connect(app_settings) as conn:
        cursor = conn.execute(
            "SELECT status, reason, detail, attempts, last_error, next_attempt_at, processed_at "
            "FROM stripe_events WHERE id = %s",
            (event_id,),
        )
        found = cursor.fetchone()
        return dict(zip([c.name for c in cursor.description], found, strict=True)) if found else {}


def plan(app_settings, slug: str = ORG) -> tuple:
    with connect(app_settings) as conn:
        return conn.execute(
            "SELECT o.tier::text, s.stripe_subscription_id, s.analyses_limit, "
            "(SELECT count(*) FROM plan_versions AS v WHERE v.organization_id = o.id) "
            "FROM organizations AS o LEFT JOIN subscriptions AS s ON s.organization_id = o.id "
            "WHERE o.slug = %s",
            (slug,),
        ).fetchone()


def create_pro_product(app_settings) -> None:
    """The product of PRODUCT_PRICE at Stripe: it names the tier."""
    stripe_client(app_settings).v1.products.create(
        {"id": "prod_pro", "name": "ODAVL Pro", "metadata": {"tier": "PRO"}}
    )


def client_with_key(app_settings, key: str) -> stripe.StripeClient:
    return stripe.StripeClient(
        key, base_addresses={"api": app_settings.stripe_api_base}, max_network_retries=0
    )


# --- what retrying cannot fix: answered 200, set aside with its reason -------------------------

PRODUCT_PRICE = {"id": "price_pro", "metadata": {}, "product": "prod_pro"}
UNFIXABLE = {
    # Stripe answering 401, 403 or 400 when the product of a price is fetched
    "stripe-401": (subscription(price=PRODUCT_PRICE), None, "rk_test_wrong", ["401", "Auth"]),
    "stripe-403": (subscription(price=PRODUCT_PRICE), 403, None, ["403", "PermissionError"]),
    "stripe-400": (subscription(price=PRODUCT_PRICE), 400, None, ["400", "InvalidRequest"]),
    # a product, or a customer, Stripe does not know: a key of another account or mode
    "product-404": (
        subscription(price={**PRODUCT_PRICE, "product": "prod_missing"}),
        None,
        None,
        ["product prod_missing", "404", "another Stripe account"],
    ),
    "customer-404": (
        subscription(customer="cus_elsewhere"),
        None,
        None,
        ["customer cus_elsewhere", "404", "another Stripe account"],
    ),
    "unknown-status": (subscription(status="frozen"), None, None, ["unknown status 'frozen'"]),
    "limit-beyond-int4": (
        subscription(
            price={**ENTERPRISE_PRICE, "metadata": {"tier": "PRO", "analyses_limit": "2147483648"}}
        ),
        None,
        None,
        ["analyses_limit", "beyond 2,147,483,647"],
    ),
    "period-end-10e13": (
        subscription(current_period_end=10**13),
        None,
        None,
        ["current_period_end", "10000000000000"],
    ),
    "no-items": (
        {**subscription(), "items": {"object": "list", "data": []}},
        None,
        None,
        ["no items"],
    ),
}
REASONS = {
    "stripe-401": inbox.STRIPE_REFUSED,
    "stripe-403": inbox.STRIPE_REFUSED,
    "stripe-400": inbox.STRIPE_REFUSED,
    "product-404": inbox.STRIPE_REFUSED,
    "customer-404": inbox.STRIPE_REFUSED,
}


@pytest.mark.parametrize("case", sorted(UNFIXABLE))
def test_what_retrying_cannot_fix_is_answered_200_and_set_aside_with_its_reason(
    stripe_settings, stripe_emulator, case
):
    obj, status, key, words = UNFIXABLE[case]
    link(stripe_settings, ORG, "cus_ours")
    before = plan(stripe_settings)
    if status:
        stripe_emulator.faults.answer("/v1/products/", status)
    client = client_with_key(stripe_settings, key or TEST_API_KEY)
    body = event(obj)
    with endpoint(stripe_settings, client=client) as server:
        answer = post(server.url, body)
        assert (answer.status_code, answer.json()) == (
            200,
            {"event": body["id"], "outcome": "received"},
        )
        wait_until(lambda: row(stripe_settings, body["id"])["status"] != "pending", "processing")
    found = row(stripe_settings, body["id"])
    assert (found["status"], found["reason"]) == ("dead", REASONS.get(case, inbox.INVALID))
    assert all(word in found["detail"] for word in words), found["detail"]
    assert found["attempts"] == 1  # not retried: it would fail the same way
    assert plan(stripe_settings) == before
    assert "rk_test_wrong" not in found["detail"]


# --- answered at once, processed apart -----------------------------------------------------------


def test_an_event_is_answered_before_stripe_is_asked_and_others_go_on_meanwhile(
    stripe_settings, stripe_emulator
):
    """The first event's Stripe call is held; its delivery is answered, and another customer's
    event is processed while Stripe still holds it: no lock is held across a Stripe call."""
    link(stripe_settings, ORG, "cus_ours")
    link(stripe_settings, OTHER_ORG, "cus_other")
    create_pro_product(stripe_settings)
    stripe_emulator.faults.hold("/v1/products/")
    waiting = event(subscription(price=PRODUCT_PRICE))  # its tier is on its product
    other = event(subscription("sub_other", "cus_other"))  # its tier on its price
    with endpoint(stripe_settings) as server:
        first = post(server.url, waiting)
        assert first.json() == {"event": waiting["id"], "outcome": "received"}
        wait_until(lambda: stripe_emulator.faults.held == 1, "the product request")
        assert post(server.url, other).json()["outcome"] == "received"
        wait_until(lambda: row(stripe_settings, other["id"])["status"] == "processed", "other")
        assert row(stripe_settings, waiting["id"])["status"] == "pending"
        assert stripe_emulator.faults.held == 1  # Stripe still holds the first one's call
        stripe_emulator.release()
        wait_until(lambda: row(stripe_settings, waiting["id"])["status"] == "processed", "first")
    assert plan(stripe_settings, OTHER_ORG)[:3] == ("ENTERPRISE", "sub_other", None)
    assert plan(stripe_settings)[:2] == ("PRO", "sub_ours")


def test_a_failing_event_is_retried_with_backoff_and_its_customer_s_later_events_wait(
    stripe_settings, stripe_emulator, clock_at
):
    link(stripe_settings, ORG, "cus_ours")
    link(stripe_settings, OTHER_ORG, "cus_other")
    create_pro_product(stripe_settings)
    client = stripe_client(stripe_settings)
    created = event(subscription(price=PRODUCT_PRICE), "customer.subscription.created")
    later = event(subscription(), created=created["created"] + 60)
    other = event(subscription("sub_other", "cus_other"))
    store(stripe_settings, later, created, other)  # the later one arrives first
    stripe_emulator.faults.answer("/v1/products/", 503)  # Stripe down

    before = clock.now()
    outcomes = process_due(stripe_settings, client)
    assert [(o.event_id, o.status) for o in outcomes] == [
        (created["id"], "pending"),
        (other["id"], "processed"),  # another customer's goes on
    ]  # `later` waits behind the first event of its customer
    failed = row(stripe_settings, created["id"])
    assert failed["attempts"] == 1 and "Stripe answered 503 (APIError)" in failed["last_error"]
    assert timedelta(seconds=5) < failed["next_attempt_at"] - before < timedelta(seconds=8)
    assert row(stripe_settings, later["id"])["attempts"] == 0

    now = clock_at(failed["next_attempt_at"] + timedelta(seconds=1))
    assert [o.status for o in process_due(stripe_settings, client)] == ["pending"]
    again = row(stripe_settings, created["id"])
    assert again["attempts"] == 2
    assert timedelta(seconds=9) < again["next_attempt_at"] - now < timedelta(seconds=12)

    stripe_emulator.faults.rules.clear()  # Stripe is back
    assert process_due(stripe_settings, client) == []  # not due yet
    clock_at(again["next_attempt_at"] + timedelta(seconds=1))
    assert [(o.event_id, o.status) for o in process_due(stripe_settings, client)] == [
        (created["id"], "processed"),
        (later["id"], "processed"),
    ]
    assert plan(stripe_settings)[:3] == ("ENTERPRISE", "sub_ours", None)


def test_an_event_failing_for_three_days_is_set_aside(stripe_settings, stripe_emulator, clock_at):
    link(stripe_settings, ORG, "cus_ours")
    client = stripe_client(stripe_settings)
    failing = event(subscription(price=PRODUCT_PRICE))
    store(stripe_settings, failing)
    stripe_emulator.faults.answer("/v1/products/", 502)
    started, now = None, None
    for _ in range(inbox.MAX_ATTEMPTS):
        outcome = process_next(stripe_settings, client)
        assert outcome is not None and outcome.event_id == failing["id"]
        due = row(stripe_settings, failing["id"])["next_attempt_at"]
        if due is None:
            break
        started = started or due
        now = clock_at(due)
    found = row(stripe_settings, failing["id"])
    assert (found["status"], found["reason"], found["attempts"]) == (
        "dead",
        inbox.GAVE_UP,
        inbox.MAX_ATTEMPTS,
    )
    assert found["detail"].startswith(f"{inbox.MAX_ATTEMPTS} attempts failed; the last: Stripe")
    assert timedelta(days=3) < now - started < timedelta(days=4)


def test_a_customer_s_events_are_processed_in_stripe_s_order(stripe_settings, clock_at):
    link(stripe_settings, ORG, "cus_ours")
    client = stripe_client(stripe_settings)
    created = event(subscription(status="trialing"), "customer.subscription.created")
    paid = event(subscription(), created=created["created"] + 1)
    canceled = event(
        subscription(status="canceled", canceled_at=created["created"] + 2),
        "customer.subscription.deleted",
        created=created["created"] + 2,
    )
    store(stripe_settings, canceled, paid, created)  # delivered newest first
    outcomes = process_due(stripe_settings, client)
    assert [o.event_id for o in outcomes] == [created["id"], paid["id"], canceled["id"]]
    assert plan(stripe_settings)[:2] == ("FREE", "sub_ours")


def test_a_subscription_of_a_customer_without_organization_waits_for_its_link(stripe_settings):
    """Set aside for want of an organization, then processed when the customer's metadata
    names one: its state placed in the plan history at its own time."""
    client = stripe_client(stripe_settings)
    customer = client.v1.customers.create({})
    subscribed = event(subscription(customer=customer.id), "customer.subscription.created")
    store(stripe_settings, subscribed)
    [outcome] = process_due(stripe_settings, client)
    assert (outcome.status, row(stripe_settings, subscribed["id"])["reason"]) == (
        "dead",
        inbox.NO_ORGANIZATION,
    )
    assert "no metadata org_slug" in outcome.detail

    named = {"id": customer.id, "object": "customer", "metadata": {"org_slug": OTHER_ORG}}
    store(stripe_settings, event(named, "customer.updated", created=subscribed["created"] + 9))
    outcomes = process_due(stripe_settings, client)
    assert [o.status for o in outcomes] == ["processed", "processed"]
    assert "1 event(s) requeued" in outcomes[0].detail
    assert plan(stripe_settings, OTHER_ORG)[:2] == ("ENTERPRISE", "sub_ours")
    with connect(stripe_settings) as conn:
        [(effective,)] = conn.execute(
            "SELECT v.effective_at FROM plan_versions AS v JOIN organizations AS o "
            "ON o.id = v.organization_id WHERE o.slug = %s AND v.effective_at > 'epoch'",
            (OTHER_ORG,),
        ).fetchall()
    assert effective == datetime.fromtimestamp(subscribed["created"], UTC)


def test_doctor_lists_what_is_set_aside_and_stripe_retry_brings_it_back(stripe_settings):
    link(stripe_settings, ORG, "cus_ours")
    refused = event(subscription(price=PRODUCT_PRICE))
    store(stripe_settings, refused)
    wrong_key = client_with_key(stripe_settings, "rk_test_wrong")
    assert process_next(stripe_settings, wrong_key).status == "dead"
    found = doctor.check_stripe_events(stripe_settings)
    assert found.status == doctor.PROBLEM
    assert f"1 Stripe event(s) set aside, not processed; the oldest: {refused['id']}" in (
        found.summary
    )
    assert "stripe_refused" in found.summary and "`odavl-pipeline stripe retry`" in found.fix
    assert "rk_test_wrong" not in found.summary

    result = cli("stripe", "retry", refused["id"], "evt_unknown", check=False)
    assert result.returncode == 1
    assert refused["id"] in result.stdout and "evt_unknown" in result.stderr
    found = doctor.check_stripe_events(stripe_settings)
    assert (found.status, found.summary) == (
        doctor.OK,
        "Stripe events: 1 waiting to be processed, none set aside",
    )
    create_pro_product(stripe_settings)
    client = stripe_client(stripe_settings)
    assert process_next(stripe_settings, client).status == "processed"  # the key was fixed
    assert row(stripe_settings, refused["id"])["last_error"].startswith("stripe_refused: ")
    assert plan(stripe_settings)[:2] == ("PRO", "sub_ours")
    assert doctor.check_stripe_events(stripe_settings).status == doctor.OK
