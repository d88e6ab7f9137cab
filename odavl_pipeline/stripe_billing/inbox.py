"""The webhook inbox (`stripe_events`): what is stored, claimed, retried and set aside.

- **Received.** A verified event is inserted as it came (its body) before the endpoint answers;
  a second delivery finds its id and changes nothing. Events of the types we follow are
  `pending`; others are stored `processed` at once, without their body.
- **In order per customer.** Each event has an ordering key, its customer (a subscription's
  customer, or the customer itself). Of a key's pending events only the first in Stripe's
  order (`created`; of one second, a customer's and a subscription's creation first, a
  deletion last; then arrival) may be claimed, and only while no other event of its key is.
- **Claimed under a lease**, in a short transaction: `lease_until` and a `lease_token` mark it
  taken; no lock is held while Stripe is called. Whoever finishes it must still hold the lease
  (a lease that ran out was taken by someone else).
- **Retried with backoff** when the database or Stripe failed: 5 s, 10 s, 20 s … at most an
  hour apart; after `MAX_ATTEMPTS` (about three days, as long as Stripe itself retries) the
  event is set aside.
- **Dead letters.** What cannot be processed however often it is retried is set aside with its
  reason (`dead`: `reason` and `detail`), listed by `odavl-pipeline doctor` and the Staff page,
  and processed again after `requeue` (`odavl-pipeline stripe retry`).
"""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import String

from odavl_pipeline.db.limits import is_storable_text
from odavl_pipeline.db.models import StripeEvent
from odavl_pipeline.stripe_billing.subscriptions import EPOCH_MAX


def _declared_length(column: str) -> int:
    """The characters a text column of `stripe_events` holds, as its model declares them."""
    kind = StripeEvent.__table__.c[column].type
    assert isinstance(kind, String) and kind.length is not None  # each is a String(n)
    return kind.length


EVENT_ID_MAX_LENGTH = _declared_length("id")
EVENT_TYPE_MAX_LENGTH = _declared_length("type")
KEY_MAX_LENGTH = _declared_length("ordering_key")
CREATED_MAX = EPOCH_MAX  # 9999-12-31T23:59:59Z

CUSTOMER_EVENTS = ("customer.created", "customer.updated")
SUBSCRIPTION_EVENT_PREFIX = "customer.subscription."

LEASE = timedelta(minutes=5)  # longer than a Stripe call with its retries
FIRST_RETRY = timedelta(seconds=5)
LONGEST_RETRY = timedelta(hours=1)
MAX_ATTEMPTS = 82  # 5 s doubling to an hour, then hourly: three days and an hour

# dead letters' reasons
STRIPE_REFUSED = "stripe_refused"  # Stripe answered 4xx: a key, an account or a mode to fix
INVALID = "invalid_object"  # the subscription or customer cannot be applied as sent
NO_ORGANIZATION = "no_organization"  # its customer is linked to no organization
GAVE_UP = "gave_up"  # the database or Stripe failed every attempt
INTERNAL_ERROR = "internal_error"  # a failure of ours


class MalformedEvent(ValueError):
    """A webhook body that is not a Stripe event we can store."""


@dataclass(frozen=True)
class Claim:
    """A pending event taken under a lease."""

    id: str
    type: str
    created: datetime
    payload: str
    attempts: int  # this one included
    token: uuid.UUID


@dataclass(frozen=True)
class DeadLetter:
    id: str
    type: str
    created: datetime
    received_at: datetime
    reason: str
    detail: str
    attempts: int


@dataclass(frozen=True)
class InboxSummary:
    pending: int
    failing: int  # pending after at least one failed attempt
    overdue: int  # pending and due for longer than `overdue_after`
    dead: int
    last_error: str | None  # of the failing event due first


def follows(event_type: str) -> bool:
    """Whether we process events of this type."""
    return event_type in CUSTOMER_EVENTS or event_type.startswith(SUBSCRIPTION_EVENT_PREFIX)


def parse_event(event: Any) -> dict[str, Any]:
    """The event as a dict, checked for what the inbox stores; `MalformedEvent` otherwise.
    What the event's object holds is checked when it is processed."""
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


def receive(conn: psycopg.Connection, event: dict[str, Any], body: str) -> bool:
    """Store a verified event (`parse_event`'s) with its body; False when it was already."""
    followed = follows(event["type"])
    with conn.transaction():
        return bool(
            conn.execute(
                "INSERT INTO stripe_events (id, type, created, payload, ordering_key, status, "
                "next_attempt_at, processed_at, detail) VALUES (%(id)s, %(type)s, "
                "to_timestamp(%(created)s), %(payload)s, %(key)s, %(status)s, "
                "CASE WHEN %(followed)s THEN odavl_now() END, "
                "CASE WHEN NOT %(followed)s THEN odavl_now() END, %(detail)s) "
                "ON CONFLICT (id) DO NOTHING",
                {
                    "id": event["id"],
                    "type": event["type"],
                    "created": event["created"],
                    "payload": body if followed else None,
                    "key": ordering_key(event),
                    "status": "pending" if followed else "processed",
                    "followed": followed,
                    "detail": None if followed else "not a type we follow",
                },
            ).rowcount
        )


def ordering_key(event: dict[str, Any]) -> str:
    """The customer an event is about, which orders it; the event's own id when it names none
    we could store (it is then processed on its own, and set aside)."""
    obj = event["data"]["object"]
    customer = obj.get("id") if event["type"] in CUSTOMER_EVENTS else obj.get("customer")
    if isinstance(customer, dict):
        customer = customer.get("id")
    if isinstance(customer, str) and 0 < len(customer) <= KEY_MAX_LENGTH:
        if is_storable_text(customer):
            return customer
    return event["id"]


# The first pending event of each key, in Stripe's order; one that is due, of a key none of
# whose events is claimed.
NEXT_DUE = """
SELECT h.id FROM (
    SELECT DISTINCT ON (ordering_key) id, ordering_key, next_attempt_at
    FROM stripe_events WHERE status = 'pending'
    ORDER BY ordering_key, created,
             CASE type WHEN 'customer.created' THEN 0
                       WHEN 'customer.subscription.created' THEN 1
                       WHEN 'customer.subscription.deleted' THEN 3 ELSE 2 END,
             received_at, id
) AS h
WHERE h.next_attempt_at <= odavl_now()
  AND NOT EXISTS (SELECT 1 FROM stripe_events AS c WHERE c.status = 'pending'
                  AND c.ordering_key = h.ordering_key AND c.lease_until > odavl_now())
ORDER BY h.next_attempt_at, h.id
LIMIT 1
"""


def claim_next(conn: psycopg.Connection) -> Claim | None:
    """Take the next due event under a lease (committed at once); None when none is due."""
    for _ in range(10):  # another worker may take the same event first: look again
        with conn.transaction():
            candidate = conn.execute(NEXT_DUE).fetchone()
            if candidate is None:
                return None
            token = uuid.uuid4()
            row = conn.execute(
                "UPDATE stripe_events SET lease_until = odavl_now() + %s, lease_token = %s, "
                "attempts = attempts + 1 WHERE id = %s AND status = 'pending' "
                "AND (lease_until IS NULL OR lease_until <= odavl_now()) "
                "RETURNING id, type, created, payload, attempts",
                (LEASE, token, candidate[0]),
            ).fetchone()
        if row is not None:
            event_id, event_type, created, payload, attempts = row
            return Claim(event_id, event_type, created, payload, attempts, token)
    return None


class LeaseLost(RuntimeError):
    """The lease ran out and another worker took the event: this one leaves it alone."""


def hold(conn: psycopg.Connection, claim: Claim) -> None:
    """Lock the claimed event for this transaction; `LeaseLost` when it is no longer ours."""
    row = conn.execute(
        "SELECT 1 FROM stripe_events WHERE id = %s AND lease_token = %s AND status = 'pending' "
        "FOR UPDATE",
        (claim.id, claim.token),
    ).fetchone()
    if row is None:
        raise LeaseLost(f"event {claim.id}: its lease ran out")


def mark_processed(conn: psycopg.Connection, claim: Claim, detail: str) -> None:
    """In the transaction of the event's effect, after `hold`."""
    conn.execute(
        "UPDATE stripe_events SET status = 'processed', processed_at = odavl_now(), "
        "detail = %s, lease_until = NULL, lease_token = NULL, next_attempt_at = NULL "
        "WHERE id = %s AND lease_token = %s",
        (detail, claim.id, claim.token),
    )


def retry_later(conn: psycopg.Connection, claim: Claim, error: str) -> tuple[str, datetime | None]:
    """After a failure the database or Stripe may recover from: due again after the backoff,
    or set aside once `MAX_ATTEMPTS` failed. Returns the status and when it is due."""
    if claim.attempts >= MAX_ATTEMPTS:
        set_aside(conn, claim, GAVE_UP, f"{claim.attempts} attempts failed; the last: {error}")
        return "dead", None
    with conn.transaction():
        row = conn.execute(
            "UPDATE stripe_events SET next_attempt_at = odavl_now() + %s, last_error = %s, "
            "lease_until = NULL, lease_token = NULL WHERE id = %s AND lease_token = %s "
            "AND status = 'pending' RETURNING next_attempt_at",
            (backoff(claim.attempts), error, claim.id, claim.token),
        ).fetchone()
    return "pending", row[0] if row else None


def backoff(attempts: int) -> timedelta:
    """The wait after `attempts` failed attempts: 5 s, doubling, at most an hour."""
    return min(FIRST_RETRY * 2 ** min(attempts - 1, 20), LONGEST_RETRY)


def set_aside(conn: psycopg.Connection, claim: Claim, reason: str, detail: str) -> None:
    """A dead letter: not processed, with why."""
    with conn.transaction():
        conn.execute(
            "UPDATE stripe_events SET status = 'dead', reason = %s, detail = %s, "
            "processed_at = odavl_now(), lease_until = NULL, lease_token = NULL, "
            "next_attempt_at = NULL WHERE id = %s AND lease_token = %s AND status = 'pending'",
            (reason, detail, claim.id, claim.token),
        )


def requeue(conn: psycopg.Connection, event_ids: list[str] | None = None) -> list[str]:
    """Dead letters (all, or these) pending again, due now; their reason kept as last error.
    Returns the ids requeued."""
    with conn.transaction():
        rows = conn.execute(
            "UPDATE stripe_events SET status = 'pending', next_attempt_at = odavl_now(), "
            "attempts = 0, last_error = reason || ': ' || detail, reason = NULL, detail = NULL, "
            "processed_at = NULL WHERE status = 'dead' "
            "AND (%(all)s OR id = ANY(%(ids)s)) RETURNING id",
            {"all": event_ids is None, "ids": event_ids or []},
        ).fetchall()
    return sorted(row[0] for row in rows)


def requeue_customer(conn: psycopg.Connection, customer_id: str) -> int:
    """In a caller's transaction: the customer's events set aside for want of an organization,
    pending again (it has one now)."""
    return conn.execute(
        "UPDATE stripe_events SET status = 'pending', next_attempt_at = odavl_now(), "
        "attempts = 0, last_error = reason || ': ' || detail, reason = NULL, detail = NULL, "
        "processed_at = NULL WHERE status = 'dead' AND reason = %s AND ordering_key = %s",
        (NO_ORGANIZATION, customer_id),
    ).rowcount


def dead_letters(conn: psycopg.Connection, limit: int = 1000) -> list[DeadLetter]:
    """The events set aside, oldest first."""
    rows = conn.execute(
        "SELECT id, type, created, received_at, reason, detail, attempts FROM stripe_events "
        "WHERE status = 'dead' ORDER BY received_at, id LIMIT %s",
        (limit,),
    ).fetchall()
    return [DeadLetter(*row) for row in rows]


def summary(conn: psycopg.Connection, overdue_after: timedelta) -> InboxSummary:
    row = conn.execute(
        "SELECT count(*) FILTER (WHERE status = 'pending'), "
        "count(*) FILTER (WHERE status = 'pending' AND attempts > 0), "
        "count(*) FILTER (WHERE status = 'pending' AND next_attempt_at < odavl_now() - %s), "
        "count(*) FILTER (WHERE status = 'dead'), "
        "(SELECT last_error FROM stripe_events WHERE status = 'pending' AND attempts > 0 "
        " ORDER BY next_attempt_at LIMIT 1) "
        "FROM stripe_events WHERE status <> 'processed'",
        (overdue_after,),
    ).fetchone()
    assert row is not None  # an aggregate without GROUP BY returns exactly one row
    return InboxSummary(*row)


def _check_text(value: Any, field: str, max_length: int) -> None:
    """A string Postgres and the Stripe API can take: 1 to `max_length` characters, UTF-8
    (no lone surrogate), no NUL."""
    if not isinstance(value, str) or not 0 < len(value) <= max_length:
        raise MalformedEvent(f"{field}: a string of 1 to {max_length} characters")
    if not is_storable_text(value):
        raise MalformedEvent(f"{field}: not storable text (NUL or a lone surrogate)")
