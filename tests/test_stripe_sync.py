"""Stripe into Postgres: the initial sync against the emulator, and the subscription rules."""

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from psycopg.rows import dict_row

from odavl_pipeline import clock
from odavl_pipeline.db.server import connect
from odavl_pipeline.stripe_billing import inbox
from odavl_pipeline.stripe_billing.client import StripeNotConfigured, stripe_client
from odavl_pipeline.stripe_billing.subscriptions import subscription_state
from odavl_pipeline.stripe_billing.sync import initial_sync, process_due

from .stripe_emulator import create_plans, wait_until

pytestmark = pytest.mark.stripe


def organizations(settings) -> dict[str, dict]:
    with connect(settings) as conn, conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT o.slug, o.tier, o.stripe_customer_id, o.stripe_subscription_id, s.status, "
            "s.stripe_subscription_id AS subscription_id, s.stripe_price_id, s.analyses_limit, "
            "s.fixes_limit, s.current_period_start, s.current_period_end, s.canceled_at "
            "FROM organizations o LEFT JOIN subscriptions s ON s.organization_id = o.id"
        ).fetchall()
    return {row.pop("slug"): row for row in rows}


def sync(settings):
    with connect(settings) as conn:
        return initial_sync(conn, stripe_client(settings))


def test_initial_sync_links_customers_and_writes_subscriptions_and_tiers(
    stripe_settings, stripe_emulator
):
    client = stripe_client(stripe_settings)
    plans = create_plans(client)
    test_org = client.v1.customers.create({"metadata": {"org_slug": "odavl-test-org"}})
    enterprise = client.v1.customers.create({"metadata": {"org_slug": "enterprise-corp"}})
    client.v1.customers.create({"email": "someone@example.com"})
    client.v1.customers.create({"metadata": {"org_slug": "no-such-org"}})
    ended = client.v1.subscriptions.create(
        {"customer": test_org.id, "items": [{"plan": plans.pro}]}
    )
    client.v1.subscriptions.cancel(ended.id)
    live = client.v1.subscriptions.create(
        {"customer": test_org.id, "items": [{"plan": plans.enterprise}]}
    )
    on_pro = client.v1.subscriptions.create(
        {"customer": enterprise.id, "items": [{"plan": plans.pro}]}
    )

    report = sync(stripe_settings)

    assert (
        report.customers,
        report.customers_linked,
        report.subscriptions,
        report.subscriptions_applied,
    ) == (4, 2, 3, 3)
    assert len(report.notes) == 2  # the customers without an organization
    state = organizations(stripe_settings)
    emulated = client.v1.subscriptions.retrieve(live.id)
    assert abs(emulated.current_period_start - clock.now().timestamp()) < 60  # Stripe's clock: ours
    assert state["odavl-test-org"] == {
        "tier": "ENTERPRISE",
        "stripe_customer_id": test_org.id,
        "stripe_subscription_id": live.id,
        "status": "ACTIVE",
        "subscription_id": live.id,
        "stripe_price_id": plans.enterprise,
        "analyses_limit": 9000,
        "fixes_limit": None,  # the price's metadata, else the tier's
        "current_period_start": datetime.fromtimestamp(emulated.current_period_start, UTC),
        "current_period_end": datetime.fromtimestamp(emulated.current_period_end, UTC),
        "canceled_at": None,
    }
    assert (
        state["enterprise-corp"]["tier"],
        state["enterprise-corp"]["subscription_id"],
        state["enterprise-corp"]["analyses_limit"],
    ) == ("PRO", on_pro.id, None)

    again = sync(stripe_settings)  # the ended subscription no longer overrides the live one
    assert (again.customers_linked, again.subscriptions_applied) == (2, 2)
    assert any(f"keeps its live subscription {live.id}" in note for note in again.notes)
    assert organizations(stripe_settings) == state

    client.v1.subscriptions.cancel(live.id)
    sync(stripe_settings)
    canceled = organizations(stripe_settings)["odavl-test-org"]
    assert (canceled["status"], canceled["tier"], canceled["subscription_id"]) == (
        "CANCELED",
        "FREE",
        live.id,
    )
    assert canceled["canceled_at"] is not None


def test_an_organization_linked_to_a_customer_is_not_taken_by_another(
    stripe_settings, stripe_emulator
):
    client = stripe_client(stripe_settings)
    first = client.v1.customers.create({"metadata": {"org_slug": "odavl-test-org"}})
    sync(stripe_settings)
    client.v1.customers.create({"metadata": {"org_slug": "odavl-test-org"}})
    report = sync(stripe_settings)
    assert report.customers_linked == 1
    assert organizations(stripe_settings)["odavl-test-org"]["stripe_customer_id"] == first.id


def test_the_sync_holds_no_lock_while_stripe_answers(stripe_settings, stripe_emulator):
    """While Stripe holds the sync's request for a subscription's product (where the lock was
    held before), a webhook event of another customer is processed; then the sync ends."""
    client = stripe_client(stripe_settings)
    plans = create_plans(client)
    customer = client.v1.customers.create({"metadata": {"org_slug": "enterprise-corp"}})
    client.v1.subscriptions.create({"customer": customer.id, "items": [{"plan": plans.pro}]})
    with connect(stripe_settings) as conn:
        conn.execute(
            "UPDATE organizations SET stripe_customer_id = 'cus_other' WHERE slug = %s",
            ("odavl-test-org",),
        )
    event = {
        "id": "evt_meanwhile",
        "type": "customer.subscription.updated",
        "created": int(clock.now().timestamp()),
        "data": {
            "object": {
                "id": "sub_other",
                "customer": "cus_other",
                "status": "active",
                "items": {
                    "data": [{"price": {"id": "price_e", "metadata": {"tier": "ENTERPRISE"}}}]
                },
                "current_period_start": int(clock.now().timestamp()),
                "current_period_end": int(clock.now().timestamp()) + 30 * 86400,
            }
        },
    }
    with connect(stripe_settings) as conn:
        inbox.receive(conn, inbox.parse_event(event), json.dumps(event))
    stripe_emulator.faults.hold("/v1/products/")
    with ThreadPoolExecutor(1) as pool:
        syncing = pool.submit(sync, stripe_settings)
        wait_until(lambda: stripe_emulator.faults.held == 1, "the sync's product request")
        assert [o.status for o in process_due(stripe_settings, client)] == ["processed"]
        assert not syncing.done()
        stripe_emulator.release()
        report = syncing.result(timeout=30)
    assert (report.subscriptions, report.subscriptions_applied) == (1, 1)
    state = organizations(stripe_settings)
    assert (state["odavl-test-org"]["tier"], state["enterprise-corp"]["tier"]) == (
        "ENTERPRISE",
        "PRO",
    )


def test_without_an_api_key_there_is_no_client(settings):
    with pytest.raises(StripeNotConfigured, match="STRIPE_API_KEY is not set"):
        stripe_client(settings)


PERIOD_START, PERIOD_END = datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)
PERIOD = {
    "current_period_start": int(PERIOD_START.timestamp()),
    "current_period_end": int(PERIOD_END.timestamp()),
}
NEWER_API_SUBSCRIPTION = {  # since 2025-03-31 the current period is on the items
    "id": "sub_1",
    "customer": "cus_1",
    "status": "trialing",
    "cancel_at": 1_800_000_000,
    "canceled_at": None,
    "items": {
        "data": [
            {
                "id": "si_metered",
                **PERIOD,
                "price": {"id": "price_analyses", "metadata": {}, "product": "prod_metered"},
            },
            {
                "id": "si_base",
                **PERIOD,
                "price": {
                    "id": "price_pro",
                    "metadata": {"fixes_limit": "250"},
                    "product": "prod_pro",
                },
            },
        ]
    },
}
PRODUCTS = {"prod_metered": {}, "prod_pro": {"tier": "Pro", "fixes_limit": "999"}}


def test_the_plan_item_is_the_one_naming_a_tier_and_the_period_may_be_on_the_items():
    state = subscription_state(NEWER_API_SUBSCRIPTION, PRODUCTS.__getitem__)
    assert (state.status, state.tier, state.price_id) == ("TRIALING", "PRO", "price_pro")
    assert state.limits == {
        "analyses_limit": None,
        "fixes_limit": 250,
        "audits_limit": None,
        "projects_limit": None,
    }  # the price's metadata wins over the product's
    assert (state.current_period_start, state.current_period_end) == (PERIOD_START, PERIOD_END)
    assert state.cancel_at == datetime.fromtimestamp(1_800_000_000, UTC)


@pytest.mark.parametrize(
    "stripe_status, ours",
    [
        ("active", "ACTIVE"),
        ("past_due", "PAST_DUE"),
        ("unpaid", "PAST_DUE"),
        ("incomplete", "PAST_DUE"),
        ("paused", "PAST_DUE"),
        ("canceled", "CANCELED"),
        ("incomplete_expired", "CANCELED"),
    ],
)
def test_stripe_statuses_map_onto_ours(stripe_status, ours):
    subscription = {**NEWER_API_SUBSCRIPTION, "status": stripe_status}
    assert subscription_state(subscription, PRODUCTS.__getitem__).status == ours


def test_a_subscription_without_tier_metadata_leaves_the_tier_alone():
    metered_only = NEWER_API_SUBSCRIPTION["items"]["data"][:1]
    subscription = {**NEWER_API_SUBSCRIPTION, "items": {"data": metered_only}}
    state = subscription_state(subscription, PRODUCTS.__getitem__)
    assert (state.tier, state.price_id) == (None, "price_analyses")


def test_stripe_ids_are_kept_whole_up_to_the_255_characters_stripe_allows(conn):
    customer, subscription, price = ("cus_" + "c" * 251, "sub_" + "s" * 251, "price_" + "p" * 249)
    conn.execute(
        "UPDATE organizations SET stripe_customer_id = %s, stripe_subscription_id = %s "
        "WHERE slug = 'odavl-test-org'",
        (customer, subscription),
    )
    conn.execute(
        "UPDATE subscriptions AS s SET stripe_subscription_id = %s, stripe_price_id = %s "
        "FROM organizations AS o WHERE o.id = s.organization_id "
        "AND o.slug = 'odavl-test-org'",
        (subscription, price),
    )
    conn.commit()  # a 100-character column once refused such an id, so every delivery failed
    assert conn.execute(
        "SELECT o.stripe_customer_id, s.stripe_subscription_id, s.stripe_price_id "
        "FROM organizations AS o JOIN subscriptions AS s ON s.organization_id = o.id "
        "WHERE o.slug = 'odavl-test-org'"
    ).fetchone() == (customer, subscription, price)
