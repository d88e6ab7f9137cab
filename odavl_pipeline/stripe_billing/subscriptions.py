"""What we keep of Stripe's subscriptions and customers, read from their JSON (an event's
snapshot or the API's answer) field by field.

Whatever a field holds, the result is either a state our tables can store and apply, or
`InvalidSubscription` saying which field and why: an unknown status, no items, a period end
past the year 9999, a limit beyond PostgreSQL's integer, a tier that is not one of ours, an id
that is not text. Such an object cannot be applied however often it is retried.

- The plan tier is the metadata `tier` (FREE, PRO or ENTERPRISE, any case) of the first
  subscription item whose price, or else the price's product, carries one; the same metadata
  may carry `analyses_limit`, `fixes_limit`, `audits_limit`, `projects_limit` (whole numbers),
  and a limit it lacks is None (the tier's plan limit). Without a tier the organization keeps
  the tier it had.
- The current period is on the subscription in API versions before 2025-03-31, on its items
  since.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from odavl_pipeline.db.limits import is_storable_text

TIERS = ("FREE", "PRO", "ENTERPRISE")
LIMIT_KEYS = ("analyses_limit", "fixes_limit", "audits_limit", "projects_limit")
LIMIT_MAX = 2**31 - 1  # the limits' columns are PostgreSQL integers
ID_MAX_LENGTH = 255  # Stripe's ids, as our columns keep them
EPOCH_MAX = int(datetime.max.replace(microsecond=0, tzinfo=UTC).timestamp())  # 9999-12-31

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

ProductMetadata = Callable[[str], dict[str, Any]]


class InvalidSubscription(ValueError):
    """A subscription or customer we cannot apply as Stripe sent it; the message says why."""


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

    @property
    def live(self) -> bool:
        return self.status != "CANCELED"


@dataclass(frozen=True)
class CustomerLink:
    """What links a Stripe customer to an organization: its metadata `org_slug`."""

    customer_id: str
    org_slug: str | None
    deleted: bool


def subscription_state(subscription: Any, product_metadata: ProductMetadata) -> SubscriptionState:
    """Our view of a Stripe subscription; `product_metadata` fetches a product's metadata when
    a price names its product by id."""
    subscription = _object(subscription, "the subscription")
    subscription_id = stripe_id(subscription.get("id"), "subscription id")
    where = f"subscription {subscription_id}"
    customer = subscription.get("customer")
    customer_id = stripe_id(
        customer.get("id") if isinstance(customer, dict) else customer, f"{where}: customer"
    )
    stripe_status = subscription.get("status")
    status = STATUSES.get(stripe_status) if isinstance(stripe_status, str) else None
    if status is None:
        raise InvalidSubscription(f"{where}: unknown status {_shown(stripe_status)}")
    items = _object(subscription.get("items") or {}, f"{where}: items").get("data")
    if not isinstance(items, list) or not items:
        raise InvalidSubscription(f"{where}: no items (a subscription has at least one)")
    item, metadata = _plan_item(items, product_metadata, where)
    start = _first(subscription, item, "current_period_start")
    end = _first(subscription, item, "current_period_end")
    if start is None or end is None:
        raise InvalidSubscription(f"{where}: no current period")
    tier = _tier(metadata.get("tier"), where)
    price = item.get("price") or item.get("plan") or {}
    price_id = price.get("id")
    ended_at = subscription.get("ended_at") if status == "CANCELED" else None
    return SubscriptionState(
        subscription_id=subscription_id,
        customer_id=customer_id,
        status=status,
        price_id=None if price_id is None else stripe_id(price_id, f"{where}: price id"),
        tier=tier,
        limits={key: _limit(metadata.get(key), f"{where}: {key}") for key in LIMIT_KEYS},
        current_period_start=_moment(start, f"{where}: current_period_start"),
        current_period_end=_moment(end, f"{where}: current_period_end"),
        cancel_at=_optional_moment(subscription.get("cancel_at"), f"{where}: cancel_at"),
        canceled_at=_optional_moment(
            subscription.get("canceled_at") or ended_at, f"{where}: canceled_at"
        ),
    )


def customer_link(customer: Any) -> CustomerLink:
    """The customer's id, metadata `org_slug` and whether Stripe deleted it."""
    customer = _object(customer, "the customer")
    customer_id = stripe_id(customer.get("id"), "customer id")
    slug = _metadata(customer.get("metadata"), f"customer {customer_id}").get("org_slug")
    if slug is not None and not (isinstance(slug, str) and is_storable_text(slug)):
        raise InvalidSubscription(f"customer {customer_id}: metadata org_slug is not text")
    return CustomerLink(customer_id, slug or None, bool(customer.get("deleted")))


def stripe_id(value: Any, field: str) -> str:
    """An id of Stripe's: text of 1 to 255 characters we can store and put in an API path."""
    if not isinstance(value, str) or not 0 < len(value) <= ID_MAX_LENGTH:
        raise InvalidSubscription(f"{field}: not an id (text of 1 to {ID_MAX_LENGTH} characters)")
    if not is_storable_text(value) or value in (".", ".."):
        raise InvalidSubscription(f"{field}: not an id (NUL, a lone surrogate or a dot segment)")
    return value


# --- helpers -------------------------------------------------------------------------------


def _plan_item(
    items: list[Any], product_metadata: ProductMetadata, where: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The first item whose price or product names a tier, with their metadata (the price's
    wins); else the first item (metered prices carry no tier)."""
    items = [_object(item, f"{where}: an item") for item in items]
    for item in items:
        price = _object(item.get("price") or item.get("plan") or {}, f"{where}: a price")
        metadata = _metadata(price.get("metadata"), f"{where}: a price")
        product = price.get("product")
        if "tier" not in metadata and product:
            found = (
                _metadata(product.get("metadata"), f"{where}: a product")
                if isinstance(product, dict)
                else _metadata(
                    product_metadata(stripe_id(product, f"{where}: product")),
                    f"{where}: product {product}",
                )
            )
            metadata = {**found, **metadata}
        if "tier" in metadata:
            return item, metadata
    return items[0], {}


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidSubscription(f"{what}: not an object")
    return value


def _metadata(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidSubscription(f"{where}: metadata is not an object")
    return value


def _first(subscription: dict[str, Any], item: dict[str, Any], key: str) -> Any:
    value = subscription.get(key)
    return item.get(key) if value is None else value


def _optional_moment(epoch: Any, field: str) -> datetime | None:
    return None if epoch is None else _moment(epoch, field)


def _moment(epoch: Any, field: str) -> datetime:
    if type(epoch) is not int or not 0 <= epoch <= EPOCH_MAX:
        raise InvalidSubscription(
            f"{field}: {_shown(epoch)} is not a time (Unix seconds, 0 to {EPOCH_MAX})"
        )
    return datetime.fromtimestamp(epoch, UTC)


def _tier(value: Any, where: str) -> str | None:
    """The metadata's tier in capitals; absent or empty is None."""
    tier = value.strip().upper() if isinstance(value, str) else value
    if tier is None or tier == "":
        return None
    if tier not in TIERS:
        raise InvalidSubscription(f"{where}: tier {_shown(value)} is not one of {', '.join(TIERS)}")
    return tier


def _limit(value: Any, field: str) -> int | None:
    """A limit of the metadata: absent or empty is None, else a whole number we can store."""
    text = value.strip() if isinstance(value, str) else value
    if text is None or text == "":
        return None
    if isinstance(text, str) and re.fullmatch(r"[0-9]+", text):
        number = int(text) if len(text) <= 20 else LIMIT_MAX + 1
    elif type(text) is int and text >= 0:
        number = text
    else:
        raise InvalidSubscription(f"{field}: {_shown(value)} is not a whole number")
    if number > LIMIT_MAX:
        raise InvalidSubscription(f"{field}: {_shown(value)} is beyond {LIMIT_MAX:,}")
    return number


def _shown(value: Any) -> str:
    """A value for a reason: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
