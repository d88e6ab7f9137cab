"""Stripe customers and subscriptions into Postgres: the initial sync and one event at a time.

Rules:
- An organization is linked by `organizations.stripe_customer_id`. A customer whose metadata
  `org_slug` names an organization that has no customer id yet links it; an organization
  already linked to another customer is never relinked.
- The plan tier is the metadata `tier` (FREE, PRO or ENTERPRISE, any case) of the first
  subscription item whose price, or else the price's product, carries one; the same metadata
  may carry `analyses_limit`, `fixes_limit`, `audits_limit`, `projects_limit`, and a limit
  it lacks is NULL (the tier's plan limit). A canceled subscription puts the tier back to FREE.
- An event never carries the state we write: the subscription or customer is fetched again
  from the API under a lock, so deliveries in any order end in Stripe's current state.
- Each event is applied once: its id goes into `stripe_events` in the transaction of its
  effect; a replay finds the id there and changes nothing.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
import stripe

from odavl_pipeline.db.limits import is_storable_text
from odavl_pipeline.db.models import StripeEvent

TIERS = ("FREE", "PRO", "ENTERPRISE")
LIMIT_KEYS = ("analyses_limit", "fixes_limit", "audits_limit", "projects_limit")

# Stripe's subscription statuses onto ours (ACTIVE, PAST_DUE, CANCELED, TRIALING).
STATUSES = {
    "active": "ACTIVE",
    "trialing": "TRIALING",
    "past_due": "PAST_DUE",
    "unpaid": "PAST_DUE",
    "incomplete": "PAST_DUE",  # the first payment has not succeeded yet
    "paused": "PAST_DUE",  # a trial ended without a payment method
    "canceled": "CANCELED",
    "incomplete_expired": "CANCELED",
}

# What `stripe_events` can hold: Stripe's ids are at most 255 characters, as its id column.
EVENT_ID_MAX_LENGTH = StripeEvent.__table__.c.id.type.length
EVENT_TYPE_MAX_LENGTH = StripeEvent.__table__.c.type.type.length
CREATED_MAX = int(
    datetime.max.replace(microsecond=0, tzinfo=UTC).timestamp()
)  # 9999-12-31T23:59:59Z

CUSTOMER_EVENTS = ("customer.created", "customer.updated")
SUBSCRIPTION_EVENT_PREFIX = "customer.subscription."

ProductMetadata = Callable[[str], dict[str, str]]


class MalformedEvent(ValueError):
    """A webhook body that is not a Stripe event."""


@dataclass(frozen=True)
class EventOutcome:
    event_id: str
    type: str
    status: str  # applied, already_applied, ignored
    detail: str = ""


@dataclass(frozen=True)
class Change:
    applied: bool
    detail: str


@dataclass(frozen=True)
class SubscriptionState:
    """What we keep of a Stripe subscription."""

    subscription_id: str
    customer_id: str
    status: str
    price_id: str | None
    tier: str | None  # None: no tier metadata, the organization keeps its tier
    limits: dict[str, int | None]
    current_period_start: datetime
    current_period_end: datetime
    cancel_at: datetime | None
    canceled_at: datetime | None


@dataclass
class SyncReport:
    customers: int = 0
    customers_linked: int = 0
    subscriptions: int = 0
    subscriptions_applied: int = 0
    notes: list[str] = field(default_factory=list)


# --- events ------------------------------------------------------------------------------


def parse_event(event: Any) -> dict[str, Any]:
    """The event as a dict, checked for the fields we rely on; `MalformedEvent` otherwise.

    Every field that reaches the database or the Stripe API is bounded here, so that an
    event we cannot store is refused as malformed rather than failing on the way in.
    """
    if not isinstance(event, dict):
        raise MalformedEvent("an event is a JSON object")
    _check_text(event.get("id"), "id", EVENT_ID_MAX_LENGTH)
    _check_text(event.get("type"), "type", EVENT_TYPE_MAX_LENGTH)
    created = event.get("created")
    if type(created) is not int or not 0 <= created <= CREATED_MAX:
        raise MalformedEvent(f"created: an integer of Unix seconds, 0 to {CREATED_MAX}")
    data = event.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        raise MalformedEvent("data.object: an object")
    if "id" in data["object"]:
        object_id = data["object"]["id"]
        _check_text(object_id, "data.object.id", EVENT_ID_MAX_LENGTH)
        if object_id in (".", ".."):  # a path segment that would fetch another resource
            raise MalformedEvent("data.object.id: not an id (a dot path segment)")
    return event


def _check_text(value: Any, field: str, max_length: int) -> None:
    """A string Postgres and the Stripe API can take: 1 to `max_length` characters, UTF-8
    (no lone surrogate), no NUL."""
    if not isinstance(value, str) or not 0 < len(value) <= max_length:
        raise MalformedEvent(f"{field}: a string of 1 to {max_length} characters")
    if not is_storable_text(value):
        raise MalformedEvent(f"{field}: not storable text (NUL or a lone surrogate)")


def apply_event(
    conn: psycopg.Connection, client: stripe.StripeClient, event: dict[str, Any]
) -> EventOutcome:
    """Apply one Stripe event exactly once, in one transaction with its id."""
    event = parse_event(event)
    event_id, event_type = event["id"], event["type"]
    with conn.transaction():
        inserted = conn.execute(
            "INSERT INTO stripe_events (id, type, created) VALUES (%s, %s, to_timestamp(%s)) "
            "ON CONFLICT (id) DO NOTHING",
            (event_id, event_type, event["created"]),
        ).rowcount
        if not inserted:
            return EventOutcome(event_id, event_type, "already_applied")
        # a plan change takes effect when Stripe made it, not when its event reached us
        conn.execute(
            "SELECT set_config('odavl.plan_effective_at', to_timestamp(%s)::text, true)",
            (event["created"],),
        )
        object_id = event["data"]["object"].get("id")
        if event_type.startswith(SUBSCRIPTION_EVENT_PREFIX) and isinstance(object_id, str):
            _lock(conn)
            change = refresh_subscription(conn, client, object_id)
        elif event_type in CUSTOMER_EVENTS and isinstance(object_id, str):
            _lock(conn)
            change = refresh_customer(conn, client, object_id)
        else:
            return EventOutcome(event_id, event_type, "ignored", "not an event we follow")
        return EventOutcome(
            event_id, event_type, "applied" if change.applied else "ignored", change.detail
        )


# --- initial sync ------------------------------------------------------------------------


def initial_sync(conn: psycopg.Connection, client: stripe.StripeClient) -> SyncReport:
    """Link every customer, then apply every subscription (fetched again under the lock)."""
    report = SyncReport()
    for customer in client.v1.customers.list({"limit": 100}).auto_paging_iter():
        report.customers += 1
        with conn.transaction():
            _lock(conn)
            change = _link(conn, customer.to_dict())
        report.customers_linked += change.applied
        if not change.applied:
            report.notes.append(change.detail)
    listed = list(client.v1.subscriptions.list({"status": "all", "limit": 100}).auto_paging_iter())
    # Ended subscriptions first, live ones last: an organization ends on its live subscription.
    listed.sort(key=lambda sub: (STATUSES.get(sub.status) != "CANCELED", sub.created))
    for subscription in listed:
        report.subscriptions += 1
        with conn.transaction():
            _lock(conn)
            change = refresh_subscription(conn, client, subscription.id)
        report.subscriptions_applied += change.applied
        if not change.applied:
            report.notes.append(change.detail)
    return report


# --- subscriptions -----------------------------------------------------------------------


def refresh_subscription(
    conn: psycopg.Connection, client: stripe.StripeClient, subscription_id: str
) -> Change:
    """Fetch a subscription from Stripe and write it; call under `_lock`, in a transaction."""
    subscription = _retrieve(client.v1.subscriptions, subscription_id)
    if subscription is None:
        return Change(False, f"subscription {subscription_id} does not exist at Stripe")
    customer_id = _id_of(subscription["customer"])
    if _organization_of(conn, customer_id) is None:  # its customer's events may come later
        refresh_customer(conn, client, customer_id)
    return apply_subscription(conn, subscription, _product_metadata_from(client))


def apply_subscription(
    conn: psycopg.Connection, subscription: dict[str, Any], product_metadata: ProductMetadata
) -> Change:
    """Write a subscription's state onto its organization."""
    customer_id = _id_of(subscription["customer"])
    org = _organization_of(conn, customer_id)
    if org is None:
        return Change(
            False,
            f"subscription {subscription['id']}: customer {customer_id} is "
            f"linked to no organization",
        )
    org_id, slug = org
    state = subscription_state(subscription, product_metadata)
    live = _live_subscription_kept(conn, org_id, state)
    if live is not None:
        return Change(
            False,
            f"subscription {state.subscription_id} ended; organization {slug} "
            f"keeps its live subscription {live}",
        )
    _upsert_subscription(conn, org_id, state)
    tier = "FREE" if state.status == "CANCELED" else state.tier
    conn.execute(
        "UPDATE organizations SET stripe_subscription_id = %s, "
        "tier = COALESCE(%s::tier, tier) WHERE id = %s",
        (state.subscription_id, tier, org_id),
    )
    return Change(
        True,
        f"organization {slug}: subscription {state.subscription_id} "
        f"{state.status}, tier {tier or 'unchanged (no tier metadata)'}",
    )


def _live_subscription_kept(
    conn: psycopg.Connection, org_id: int, state: SubscriptionState
) -> str | None:
    """The organization's other subscription, still live, when `state` is an ended one that
    must not replace it; else None."""
    current = conn.execute(
        "SELECT stripe_subscription_id, status FROM subscriptions WHERE organization_id = %s",
        (org_id,),
    ).fetchone()
    if (
        current
        and current[0] not in (None, state.subscription_id)
        and state.status == "CANCELED"
        and current[1] != "CANCELED"
    ):
        return current[0]
    return None


def _upsert_subscription(conn: psycopg.Connection, org_id: int, state: SubscriptionState) -> None:
    """The organization's row of `subscriptions`, created or overwritten with `state`."""
    conn.execute(
        """INSERT INTO subscriptions (organization_id, stripe_subscription_id, stripe_price_id,
               status, analyses_limit, fixes_limit, audits_limit, projects_limit,
               current_period_start, current_period_end, cancel_at, canceled_at)
           VALUES (%s, %s, %s, %s::subscription_status, %s, %s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT (organization_id) DO UPDATE SET
               stripe_subscription_id = excluded.stripe_subscription_id,
               stripe_price_id = excluded.stripe_price_id, status = excluded.status,
               analyses_limit = excluded.analyses_limit, fixes_limit = excluded.fixes_limit,
               audits_limit = excluded.audits_limit, projects_limit = excluded.projects_limit,
               current_period_start = excluded.current_period_start,
               current_period_end = excluded.current_period_end,
               cancel_at = excluded.cancel_at, canceled_at = excluded.canceled_at,
               updated_at = odavl_now()""",
        (
            org_id,
            state.subscription_id,
            state.price_id,
            state.status,
            *(state.limits[key] for key in LIMIT_KEYS),
            state.current_period_start,
            state.current_period_end,
            state.cancel_at,
            state.canceled_at,
        ),
    )


def subscription_state(
    subscription: dict[str, Any], product_metadata: ProductMetadata
) -> SubscriptionState:
    """Our view of a Stripe subscription (any API version: the current period is on the
    subscription in older versions, on its items since 2025-03-31)."""
    items = (subscription.get("items") or {}).get("data") or []
    item, metadata = _plan_item(items, product_metadata)
    start = subscription.get("current_period_start") or item.get("current_period_start")
    end = subscription.get("current_period_end") or item.get("current_period_end")
    if start is None or end is None:
        raise ValueError(f"subscription {subscription['id']} has no current period")
    status = STATUSES.get(subscription["status"])
    if status is None:
        raise ValueError(
            f"subscription {subscription['id']}: unknown status {subscription['status']!r}"
        )
    tier = str(metadata.get("tier", "")).upper()
    price = item.get("price") or item.get("plan") or {}
    canceled_at = subscription.get("canceled_at") or (
        subscription.get("ended_at") if status == "CANCELED" else None
    )
    return SubscriptionState(
        subscription_id=subscription["id"],
        customer_id=_id_of(subscription["customer"]),
        status=status,
        price_id=price.get("id"),
        tier=tier if tier in TIERS else None,
        limits={key: _limit(metadata.get(key)) for key in LIMIT_KEYS},
        current_period_start=_moment(start),
        current_period_end=_moment(end),
        cancel_at=_moment(subscription.get("cancel_at")),
        canceled_at=_moment(canceled_at),
    )


def _plan_item(
    items: list[dict[str, Any]], product_metadata: ProductMetadata
) -> tuple[dict[str, Any], dict[str, str]]:
    """The first item whose price or product names a tier, with their metadata (the price's
    wins); else the first item (metered prices carry no tier)."""
    for item in items:
        price = item.get("price") or item.get("plan") or {}
        metadata = dict(price.get("metadata") or {})
        if "tier" not in metadata and price.get("product"):
            product = price["product"]
            found = (
                product.get("metadata") if isinstance(product, dict) else product_metadata(product)
            )
            metadata = {**(found or {}), **metadata}
        if "tier" in metadata:
            return item, metadata
    return (items[0] if items else {}), {}


def _product_metadata_from(client: stripe.StripeClient) -> ProductMetadata:
    cache: dict[str, dict[str, str]] = {}

    def lookup(product_id: str) -> dict[str, str]:
        if product_id not in cache:
            product = client.v1.products.retrieve(product_id).to_dict()
            cache[product_id] = dict(product.get("metadata") or {})
        return cache[product_id]

    return lookup


# --- customers ---------------------------------------------------------------------------


def link_customer(conn: psycopg.Connection, customer: dict[str, Any]) -> int | None:
    """The organization of a customer, linking it through metadata `org_slug` if needed."""
    org = _organization_of(conn, customer["id"])
    if org is not None:
        return org[0]
    slug = (customer.get("metadata") or {}).get("org_slug")
    if customer.get("deleted") or not slug:
        return None
    row = conn.execute(
        "UPDATE organizations SET stripe_customer_id = %s "
        "WHERE slug = %s AND stripe_customer_id IS NULL RETURNING id",
        (customer["id"], slug),
    ).fetchone()
    return row[0] if row else None


def refresh_customer(
    conn: psycopg.Connection, client: stripe.StripeClient, customer_id: str
) -> Change:
    """Fetch a customer from Stripe and link its organization; call under `_lock`."""
    customer = _retrieve(client.v1.customers, customer_id)
    if customer is None:
        return Change(False, f"customer {customer_id} does not exist at Stripe")
    return _link(conn, customer)


def _link(conn: psycopg.Connection, customer: dict[str, Any]) -> Change:
    org_id = link_customer(conn, customer)
    if org_id is not None:
        return Change(True, f"customer {customer['id']} is organization {org_id}")
    slug = (customer.get("metadata") or {}).get("org_slug")
    if not slug:
        return Change(False, f"customer {customer['id']}: no organization, no metadata org_slug")
    return Change(
        False,
        f"customer {customer['id']}: organization {slug!r} does not exist or "
        f"is linked to another customer",
    )


def _organization_of(conn: psycopg.Connection, customer_id: str) -> tuple[int, str] | None:
    return conn.execute(
        "SELECT id, slug FROM organizations WHERE stripe_customer_id = %s", (customer_id,)
    ).fetchone()


# --- helpers -----------------------------------------------------------------------------


def _lock(conn: psycopg.Connection) -> None:
    """Stripe writes are serialized, so the last to fetch from Stripe is the last to write."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('odavl:stripe:sync'))")


def _retrieve(service: Any, object_id: str) -> dict[str, Any] | None:
    """The object as a dict, or None when Stripe answers 404."""
    try:
        return service.retrieve(object_id).to_dict()
    except stripe.InvalidRequestError as error:
        if error.http_status == 404:
            return None
        raise


def _id_of(value: str | dict[str, Any]) -> str:
    return value["id"] if isinstance(value, dict) else value


def _moment(epoch: int | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def _limit(value: Any) -> int | None:
    text = str(value).strip() if value is not None else ""
    return int(text) if text.isdigit() else None
