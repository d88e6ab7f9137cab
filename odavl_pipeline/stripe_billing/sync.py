"""Stripe into Postgres: the initial sync, and the processing of the webhook inbox's events.

Stripe is called first, outside any transaction; what it answered is then written in one short
transaction under `lock_stripe_sync` (db/locks.py), so a slow Stripe delays only the event that waits for it.

- **An organization** is linked by `organizations.stripe_customer_id`: a customer whose
  metadata `org_slug` names an organization without a customer id links it, once.
- **A subscription event** carries the subscription as it was when the event happened: that
  state, at the event's `created`, goes into the organization's plan history in Stripe's
  order (`timeline`). Stripe is asked for a product's metadata when a price names its product
  by id, and for the customer when it is linked to no organization yet.
- **A customer event** links its organization, and requeues the customer's events that were
  set aside for want of one.
- **The initial sync** (`stripe sync`, the hourly `stripe_subscriptions` asset) links every
  customer and writes every subscription as Stripe holds it when the sync starts.

`process_next` processes one event of the inbox: `processed`; retried later when the database
or Stripe failed (connection, 5xx, 429, 409); set aside with its reason when retrying cannot
help (Stripe answered 400, 401, 403 or 404; the subscription cannot be applied as sent; its
customer has no organization); a failure of ours is set aside too, logged with its traceback.
"""

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
import stripe

from odavl_pipeline import clock
from odavl_pipeline.db.locks import lock_stripe_sync
from odavl_pipeline.db.server import connect
from odavl_pipeline.settings import Settings
from odavl_pipeline.stripe_billing import inbox, timeline
from odavl_pipeline.stripe_billing.inbox import CUSTOMER_EVENTS, Claim
from odavl_pipeline.stripe_billing.subscriptions import (
    STATUSES,
    InvalidSubscription,
    ProductMetadata,
    customer_link,
    subscription_state,
)

# The database or Stripe failed, not the event: it is retried.
RETRIABLE = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    stripe.APIConnectionError,
    stripe.APIError,
    stripe.RateLimitError,
)
ANOTHER_KEY = (
    " (not found with this API key: a key of another Stripe account, or a test key for live "
    "events or the reverse?)"
)

log = logging.getLogger("odavl_pipeline.stripe.sync")


class Unprocessable(Exception):
    """An event that retrying cannot process; `reason` is one of the inbox's reasons."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True)
class Outcome:
    event_id: str
    type: str
    status: str  # processed, pending (to be retried), dead, lost (another worker has it)
    detail: str


@dataclass
class SyncReport:
    customers: int = 0
    customers_linked: int = 0
    subscriptions: int = 0
    subscriptions_applied: int = 0
    notes: list[str] = field(default_factory=list)


# --- the inbox's events --------------------------------------------------------------------


def process_due(settings: Settings, client: stripe.StripeClient) -> list[Outcome]:
    """Process events until none is due."""
    outcomes = []
    while (outcome := process_next(settings, client)) is not None:
        outcomes.append(outcome)
    return outcomes


def process_next(
    settings: Settings, client: stripe.StripeClient, conn: psycopg.Connection | None = None
) -> Outcome | None:
    """Claim the next due event and process it, on `conn` (in autocommit) or a connection of
    its own; None when none is due."""
    if conn is None:
        with connect(settings) as own:
            own.autocommit = True
            return process_next(settings, client, own)
    claim = inbox.claim_next(conn)
    if claim is None:
        return None
    try:
        outcome = Outcome(claim.id, claim.type, "processed", _process(conn, client, claim))
    except inbox.LeaseLost as error:
        outcome = Outcome(claim.id, claim.type, "lost", str(error))
    except Unprocessable as error:
        inbox.set_aside(conn, claim, error.reason, str(error))
        outcome = Outcome(claim.id, claim.type, "dead", f"{error.reason}: {error}")
    except RETRIABLE as error:
        outcome = _retry(settings, claim, _described(error))
    except Exception as error:
        log.exception("event %r (%r): a failure of ours", claim.id, claim.type)
        detail = _redacted(f"{type(error).__name__}: {error}")
        inbox.set_aside(conn, claim, inbox.INTERNAL_ERROR, detail)
        outcome = Outcome(claim.id, claim.type, "dead", f"{inbox.INTERNAL_ERROR}: {detail}")
    log.log(
        logging.WARNING if outcome.status == "dead" else logging.INFO,
        "event %r (%r): %s, %s",
        outcome.event_id,
        outcome.type,
        outcome.status,
        outcome.detail,
    )
    return outcome


def _process(conn: psycopg.Connection, client: stripe.StripeClient, claim: Claim) -> str:
    obj = json.loads(claim.payload)["data"]["object"]
    if claim.type in CUSTOMER_EVENTS:
        return _process_customer(conn, claim, obj)
    return _process_subscription(conn, client, claim, obj)


def _process_subscription(
    conn: psycopg.Connection, client: stripe.StripeClient, claim: Claim, obj: dict[str, Any]
) -> str:
    try:
        state = subscription_state(obj, product_metadata(client))
    except InvalidSubscription as error:
        raise Unprocessable(inbox.INVALID, str(error)) from None
    customer = None
    if timeline.organization_of(conn, state.customer_id) is None:  # its customer's event may
        customer = _customer(client, state.customer_id)  # come later: ask Stripe
    with conn.transaction():
        inbox.hold(conn, claim)
        lock_stripe_sync(conn)
        link = _link(conn, customer) if customer else None
        change = timeline.apply_state(conn, state, claim.created, claim.type, claim.id)
        if change is None:
            raise Unprocessable(
                inbox.NO_ORGANIZATION,
                f"subscription {state.subscription_id}: "
                + (link.detail if link else f"customer {state.customer_id} has no organization"),
            )
        inbox.mark_processed(conn, claim, change.detail)
    return change.detail


def _process_customer(conn: psycopg.Connection, claim: Claim, obj: dict[str, Any]) -> str:
    try:
        customer = customer_link(obj)
    except InvalidSubscription as error:
        raise Unprocessable(inbox.INVALID, str(error)) from None
    with conn.transaction():
        inbox.hold(conn, claim)
        lock_stripe_sync(conn)
        change = _link(conn, customer)
        if not change.applied and customer.org_slug and not customer.deleted:
            raise Unprocessable(inbox.NO_ORGANIZATION, change.detail)
        inbox.mark_processed(conn, claim, change.detail)
    return change.detail


def _link(conn: psycopg.Connection, customer) -> timeline.Change:
    """Link the customer; when the link is new, its events set aside for want of an
    organization are pending again."""
    change, new = timeline.link_customer(conn, customer)
    if new:
        requeued = inbox.requeue_customer(conn, customer.customer_id)
        if requeued:
            return timeline.Change(True, f"{change.detail}; {requeued} event(s) requeued")
    return change


def _retry(settings: Settings, claim: Claim, error: str) -> Outcome:
    """Due again after the backoff, recorded on a connection of its own (the failure may have
    broken the event's)."""
    with connect(settings) as conn:
        conn.autocommit = True
        status, due = inbox.retry_later(conn, claim, error)
    when = f"; next attempt at {due:%Y-%m-%d %H:%M:%S}" if due else ""
    return Outcome(claim.id, claim.type, status, f"attempt {claim.attempts} failed: {error}{when}")


# --- Stripe calls --------------------------------------------------------------------------


def product_metadata(client: stripe.StripeClient) -> ProductMetadata:
    """A product's metadata, fetched once per product."""
    cache: dict[str, dict[str, Any]] = {}

    def lookup(product_id: str) -> dict[str, Any]:
        if product_id not in cache:
            product = _asked(lambda: client.v1.products.retrieve(product_id), "product", product_id)
            cache[product_id] = dict(product.get("metadata") or {})
        return cache[product_id]

    return lookup


def _customer(client: stripe.StripeClient, customer_id: str):
    customer = _asked(lambda: client.v1.customers.retrieve(customer_id), "customer", customer_id)
    try:
        return customer_link(customer)
    except InvalidSubscription as error:
        raise Unprocessable(inbox.INVALID, str(error)) from None


def _asked(call: Callable[[], Any], kind: str, object_id: str) -> dict[str, Any]:
    """Stripe's answer as a dict; what Stripe refuses (4xx) is `Unprocessable`."""
    try:
        return call().to_dict()
    except RETRIABLE:
        raise
    except stripe.StripeError as error:
        raise Unprocessable(
            inbox.STRIPE_REFUSED,
            f"{kind} {object_id}: {_described(error)}"
            + (ANOTHER_KEY if error.http_status == 404 else ""),
        ) from None


def _described(error: Exception) -> str:
    """An error for the log and the inbox: its kind, Stripe's status and message, no secret."""
    status = getattr(error, "http_status", None)
    message = getattr(error, "user_message", None) or str(error) or type(error).__name__
    answered = f"Stripe answered {status} " if status else ""
    return _redacted(f"{answered}({type(error).__name__}): {message}".strip())


def _redacted(text: str) -> str:
    """Keys and secrets cut to their kind."""
    return re.sub(r"\b(sk|rk|pk|whsec)_[A-Za-z0-9_]+", r"\1_…", text)


# --- initial sync --------------------------------------------------------------------------


def initial_sync(conn: psycopg.Connection, client: stripe.StripeClient) -> SyncReport:
    """Link every customer, then write every subscription as Stripe holds it now."""
    report = SyncReport()
    observed_at = clock.now()  # what the lists show is Stripe's state from this moment at least
    for customer in client.v1.customers.list({"limit": 100}).auto_paging_iter():
        report.customers += 1
        try:
            link = customer_link(customer.to_dict())
        except InvalidSubscription as error:
            report.notes.append(str(error))
            continue
        with conn.transaction():
            lock_stripe_sync(conn)
            change = _link(conn, link)
        report.customers_linked += change.applied
        if not change.applied:
            report.notes.append(change.detail)
    listed = list(client.v1.subscriptions.list({"status": "all", "limit": 100}).auto_paging_iter())
    # Ended subscriptions first, live ones last, as they happened.
    listed.sort(key=lambda sub: (STATUSES.get(sub.status) != "CANCELED", sub.created))
    lookup = product_metadata(client)
    for subscription in listed:
        report.subscriptions += 1
        try:
            state = subscription_state(subscription.to_dict(), lookup)
        except (InvalidSubscription, Unprocessable) as error:
            report.notes.append(str(error))
            continue
        with conn.transaction():
            lock_stripe_sync(conn)
            applied = timeline.apply_state(conn, state, observed_at, timeline.SYNC)
        if applied is None:
            report.notes.append(
                f"subscription {state.subscription_id}: customer {state.customer_id} is "
                f"linked to no organization"
            )
            continue
        report.subscriptions_applied += applied.applied
        if not applied.applied:
            report.notes.append(applied.detail)
    return report
