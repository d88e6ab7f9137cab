"""Stripe's subscriptions into Postgres in Stripe's order, whatever the order they reach us in.

- Each state of a subscription Stripe reported is kept in `stripe_subscription_states` with the
  time it is the state of: an event's `created`, or the moment a sync fetched it. Of two states
  of one time, a subscription's creation comes first and its deletion last, then the order they
  were recorded in.
- An organization's plan at any instant follows from the states of its customer's
  subscriptions at that instant: each subscription's latest state by then; of those, the live
  one that changed last, else (all ended) the one that changed last. So an ended subscription
  never replaces a live one.
- Its plan history (`plan_versions`, migration 0006) has a version wherever that plan changes,
  dated when Stripe changed it. A state that arrives late (an event delivered or retried after
  later ones) is placed at its own time, and the instants after it are checked again: where the
  plan in force is no longer what the states say, a version of the same instant is appended
  (versions are never updated; of two at one instant, the one recorded last counts). A version
  takes the tier in force before it when its subscription names none, and keeps the anchor in
  force when Stripe only moved to the next period of the same monthly series, as the trigger
  of migration 0006 does for other writers.
- The organization's current rows (`subscriptions`, `organizations.tier` and
  `stripe_subscription_id`) are the plan now: the latest state.

Call these in a transaction holding `db.locks.lock_stripe_sync`; they make no Stripe call.
"""

from dataclasses import dataclass
from datetime import datetime

import psycopg

from odavl_pipeline.stripe_billing.subscriptions import (
    LIMIT_KEYS,
    CustomerLink,
    SubscriptionState,
)

SYNC = "sync"  # the source of a state a sync fetched
# Of two states of one instant: a subscription's creation first, its deletion last.
RANKS = {"customer.subscription.created": 0, "customer.subscription.deleted": 2}


@dataclass(frozen=True)
class Change:
    applied: bool
    detail: str


@dataclass(frozen=True)
class RecordedState:
    """A state as kept, with what orders it among the states of one instant."""

    state: SubscriptionState
    observed_at: datetime
    rank: int
    id: int

    @property
    def order(self) -> tuple[datetime, int, int]:
        return (self.observed_at, self.rank, self.id)


# --- customers -----------------------------------------------------------------------------


def organization_of(conn: psycopg.Connection, customer_id: str) -> tuple[int, str] | None:
    return conn.execute(
        "SELECT id, slug FROM organizations WHERE stripe_customer_id = %s", (customer_id,)
    ).fetchone()


def link_customer(conn: psycopg.Connection, customer: CustomerLink) -> tuple[Change, bool]:
    """Link the customer's organization through its metadata `org_slug` unless it is linked
    already; an organization linked to another customer is never relinked. Returns what was
    done and whether the link is new."""
    org = organization_of(conn, customer.customer_id)
    if org is not None:
        return Change(True, f"customer {customer.customer_id} is organization {org[1]}"), False
    if customer.deleted or not customer.org_slug:
        reason = "deleted" if customer.deleted else "no metadata org_slug"
        return Change(False, f"customer {customer.customer_id}: no organization ({reason})"), False
    row = conn.execute(
        "UPDATE organizations SET stripe_customer_id = %s "
        "WHERE slug = %s AND stripe_customer_id IS NULL RETURNING slug",
        (customer.customer_id, customer.org_slug),
    ).fetchone()
    if row is None:
        return Change(
            False,
            f"customer {customer.customer_id}: organization {customer.org_slug!r} does not "
            f"exist or is linked to another customer",
        ), False
    return Change(True, f"customer {customer.customer_id} is organization {row[0]}"), True


# --- subscription states -------------------------------------------------------------------


def apply_state(
    conn: psycopg.Connection,
    state: SubscriptionState,
    observed_at: datetime,
    source: str,
    event_id: str | None = None,
) -> Change | None:
    """Keep `state` as of `observed_at`, then bring its organization's plan history and current
    rows in line; None when its customer is linked to no organization (nothing is kept)."""
    org = organization_of(conn, state.customer_id)
    if org is None:
        return None
    org_id, slug = org
    _record(conn, state, observed_at, source, event_id)
    states = states_of(conn, state.customer_id)
    latest = apply_history(conn, org_id, states, since=observed_at)
    own = [s for s in states if s.state.subscription_id == state.subscription_id]
    as_of = f"{observed_at:%Y-%m-%d %H:%M:%S}"
    if latest.state.subscription_id != state.subscription_id:
        if latest.state.live and not state.live:
            detail = f"keeps its live subscription {latest.state.subscription_id}"
        else:
            detail = f"is on subscription {latest.state.subscription_id}"
        return Change(
            False,
            f"subscription {state.subscription_id} {state.status} as of {as_of}; "
            f"organization {slug} {detail}",
        )
    late = max(own, key=lambda s: s.order).observed_at > observed_at
    return Change(
        True,
        f"organization {slug}: subscription {state.subscription_id} {state.status}, tier "
        f"{state.tier or 'unchanged (no tier metadata)'}, as of {as_of}"
        + (" (an older state: placed in the plan history at its time)" if late else ""),
    )


def apply_history(
    conn: psycopg.Connection,
    org_id: int,
    states: list[RecordedState],
    since: datetime | None = None,
) -> RecordedState:
    """Check the plan history of `org_id` at every instant of `states` (not empty) from `since`
    (all when None), then write its current rows; returns the state the organization is on now."""
    for moment in sorted(
        {s.observed_at for s in states if since is None or s.observed_at >= since}
    ):
        chosen = chosen_at(states, moment)
        assert chosen is not None  # a state observed at `moment` is one of `states`
        _record_version(conn, org_id, moment, chosen.state)
    latest = chosen_at(states, None)
    assert latest is not None  # `states` is not empty
    _write_current(conn, org_id, latest)
    return latest


def chosen_at(states: list[RecordedState], moment: datetime | None) -> RecordedState | None:
    """The state an organization is on at `moment` (now when None): each subscription's
    latest state by then; the live one that changed last, else the one that changed last."""
    latest: dict[str, RecordedState] = {}
    for recorded in sorted(states, key=lambda s: s.order):
        if moment is None or recorded.observed_at <= moment:
            latest[recorded.state.subscription_id] = recorded
    live = [s for s in latest.values() if s.state.live]
    return max(live or latest.values(), key=lambda s: s.order, default=None)


def states_of(conn: psycopg.Connection, customer_id: str) -> list[RecordedState]:
    """Every state kept of the customer's subscriptions."""
    rows = conn.execute(
        "SELECT id, observed_at, source, subscription_id, customer_id, status::text, "
        "tier::text, price_id, analyses_limit, fixes_limit, audits_limit, projects_limit, "
        "current_period_start, current_period_end, cancel_at, canceled_at "
        "FROM stripe_subscription_states WHERE customer_id = %s",
        (customer_id,),
    ).fetchall()
    return [
        RecordedState(
            SubscriptionState(
                subscription_id=row[3],
                customer_id=row[4],
                status=row[5],
                price_id=row[7],
                tier=row[6],
                limits=dict(zip(LIMIT_KEYS, row[8:12], strict=True)),
                current_period_start=row[12],
                current_period_end=row[13],
                cancel_at=row[14],
                canceled_at=row[15],
            ),
            observed_at=row[1],
            rank=RANKS.get(row[2], 1),
            id=row[0],
        )
        for row in rows
    ]


def _record(
    conn: psycopg.Connection,
    state: SubscriptionState,
    observed_at: datetime,
    source: str,
    event_id: str | None,
) -> None:
    """Keep the state; a sync's state only when it differs from the subscription's latest."""
    if event_id is None:
        kept = [
            s
            for s in states_of(conn, state.customer_id)
            if s.state.subscription_id == state.subscription_id
        ]
        if kept and max(kept, key=lambda s: s.order).state == state:
            return
    conn.execute(
        "INSERT INTO stripe_subscription_states (subscription_id, customer_id, observed_at, "
        "source, event_id, status, tier, price_id, analyses_limit, fixes_limit, audits_limit, "
        "projects_limit, current_period_start, current_period_end, cancel_at, canceled_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (event_id) DO NOTHING",
        (
            state.subscription_id,
            state.customer_id,
            observed_at,
            source,
            event_id,
            state.status,
            state.tier,
            state.price_id,
            *(state.limits[key] for key in LIMIT_KEYS),
            state.current_period_start,
            state.current_period_end,
            state.cancel_at,
            state.canceled_at,
        ),
    )


# The plan a state gives at an instant, appended unless it is the version in force there: the
# tier in force before when the state names none, the anchor in force when on its series.
RECORD_VERSION = """
WITH before AS (
    SELECT tier, anchor FROM plan_versions
    WHERE organization_id = %(org)s AND effective_at < %(at)s
    ORDER BY effective_at DESC, id DESC LIMIT 1
), in_force AS (
    SELECT tier, status, anchor, analyses_limit, fixes_limit, audits_limit, projects_limit,
           cancel_at
    FROM plan_versions WHERE organization_id = %(org)s AND effective_at <= %(at)s
    ORDER BY effective_at DESC, id DESC LIMIT 1
), plan AS (
    SELECT coalesce(%(tier)s::tier, b.tier, 'FREE') AS tier,
           %(status)s::subscription_status AS status,
           CASE WHEN odavl_on_series(b.anchor, %(anchor)s::timestamptz) THEN b.anchor
                ELSE %(anchor)s::timestamptz END AS anchor,
           %(analyses_limit)s::integer AS analyses_limit,
           %(fixes_limit)s::integer AS fixes_limit,
           %(audits_limit)s::integer AS audits_limit,
           %(projects_limit)s::integer AS projects_limit,
           %(cancel_at)s::timestamptz AS cancel_at
    FROM (SELECT) AS one LEFT JOIN before AS b ON true
)
INSERT INTO plan_versions (organization_id, effective_at, tier, status, anchor, analyses_limit,
                           fixes_limit, audits_limit, projects_limit, cancel_at)
SELECT %(org)s, %(at)s, p.tier, p.status, p.anchor, p.analyses_limit, p.fixes_limit,
       p.audits_limit, p.projects_limit, p.cancel_at
FROM plan AS p
WHERE NOT EXISTS (
    SELECT 1 FROM in_force AS c
    WHERE (c.tier, c.status, c.anchor, c.analyses_limit, c.fixes_limit, c.audits_limit,
           c.projects_limit, c.cancel_at)
          IS NOT DISTINCT FROM (p.tier, p.status, p.anchor, p.analyses_limit, p.fixes_limit,
                                p.audits_limit, p.projects_limit, p.cancel_at))
"""


def _record_version(
    conn: psycopg.Connection, org_id: int, moment: datetime, state: SubscriptionState
) -> None:
    """The version of `state` at `moment`, unless it is in force there already. Without a live
    subscription an organization is on FREE, with calendar months."""
    live = state.live
    conn.execute(
        RECORD_VERSION,
        {
            "org": org_id,
            "at": moment,
            "tier": state.tier if live else "FREE",
            "status": state.status,
            "anchor": state.current_period_start if live else None,
            **{key: state.limits[key] if live else None for key in LIMIT_KEYS},
            "cancel_at": state.cancel_at if live else None,
        },
    )


def _write_current(conn: psycopg.Connection, org_id: int, recorded: RecordedState) -> None:
    """The organization's subscription row and tier: the state it is on now."""
    state = recorded.state
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
    conn.execute(
        """UPDATE organizations AS o SET stripe_subscription_id = %(subscription)s,
               tier = CASE WHEN %(live)s THEN coalesce(%(tier)s::tier, (
                   SELECT v.tier FROM plan_versions AS v
                   WHERE v.organization_id = o.id AND v.effective_at <= %(at)s
                   ORDER BY v.effective_at DESC, v.id DESC LIMIT 1), o.tier)
               ELSE 'FREE' END
           WHERE o.id = %(org)s""",
        {
            "subscription": state.subscription_id,
            "live": state.live,
            "tier": state.tier,
            "at": recorded.observed_at,
            "org": org_id,
        },
    )
