"""Property-based fuzzing of the webhook endpoint: whatever arrives, no 5xx while the database
and the Stripe emulator are up; a 4xx carries a JSON reason and stores nothing. And of its
inbox: whatever a signed subscription or customer holds, processing it ends `processed`, or
set aside with a reason that says what is wrong with it, never as a failure of ours.

The Starlette app of `create_app` is called in-process, as uvicorn calls it, with generated
`Stripe-Signature` headers (random bytes and text, unicode digits, many `v1=`, huge or
negative `t`, empty parts) and bodies (JSON of any shape and depth, random bytes, non-UTF-8,
huge integers, floats and booleans where integers are expected, long strings, lone
surrogates, event-shaped objects with odd fields), unsigned or signed with the test secret
at the time of the call.

Each property runs 150 examples; for a longer run set ODAVL_FUZZ_EXAMPLES, e.g.
`ODAVL_FUZZ_EXAMPLES=5000 .venv/bin/python -m pytest tests/test_webhook_fuzz.py -q`.
"""

import asyncio
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import hypothesis
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odavl_pipeline.db.server import connect
from odavl_pipeline.stripe_billing import inbox
from odavl_pipeline.stripe_billing.client import stripe_client
from odavl_pipeline.stripe_billing.subscriptions import STATUSES
from odavl_pipeline.stripe_billing.sync import process_due
from odavl_pipeline.stripe_billing.webhooks import MAX_BODY_BYTES, create_app

from .stripe_emulator import TEST_WEBHOOK_SECRET, create_plans
from .stripe_signing import signature, signed_now

pytestmark = pytest.mark.stripe

EXAMPLES = int(os.environ.get("ODAVL_FUZZ_EXAMPLES", "150"))


@dataclass(frozen=True)
class Signed:
    """A header signed at the time of the call: `t` is now unless given, `extra` parts
    before the `v1` (stripe compares every `v1` until one matches)."""

    secret: str = TEST_WEBHOOK_SECRET
    t: str | None = None
    extra: tuple[str, ...] = ()

    def header(self, body: bytes) -> bytes:
        t = str(signed_now()) if self.t is None else self.t
        parts = [f"t={t}", *self.extra, f"v1={signature(self.secret, t, body)}"]
        return ",".join(parts).encode("utf-8", "surrogatepass")


class Endpoint:
    """The webhook app called in-process on one event loop, as uvicorn calls it."""

    def __init__(self, app):
        self.app = app
        self.loop = asyncio.new_event_loop()

    def post(self, body: bytes, header: bytes | None) -> tuple[int, object]:
        return self.loop.run_until_complete(self._post(body, header))

    async def _post(self, body: bytes, header: bytes | None) -> tuple[int, object]:
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        if header is not None:
            headers.append((b"stripe-signature", header))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/stripe/webhook",
            "raw_path": b"/stripe/webhook",
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 80),
        }
        incoming = [{"type": "http.request", "body": body, "more_body": False}]
        status, chunks = [], []

        async def receive() -> dict:
            return incoming.pop() if incoming else {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return status[0], json.loads(b"".join(chunks))

    def close(self) -> None:
        self.loop.close()


@pytest.fixture
def webhook_endpoint(stripe_settings) -> Iterator[Endpoint]:
    endpoint = Endpoint(create_app(stripe_settings))
    yield endpoint
    endpoint.close()


@pytest.fixture
def stripe_objects(stripe_settings) -> list[str]:
    """Ids of objects that exist at Stripe: a customer of an organization and its
    subscription, and a customer of none."""
    client = stripe_client(stripe_settings)
    plans = create_plans(client)
    customer = client.v1.customers.create({"metadata": {"org_slug": "odavl-test-org"}})
    subscription = client.v1.subscriptions.create(
        {"customer": customer.id, "items": [{"plan": plans.pro}]}
    )
    stranger = client.v1.customers.create({})
    return [customer.id, subscription.id, stranger.id]


def stored_events(app_settings) -> list[tuple]:
    with connect(app_settings) as conn:
        return conn.execute("SELECT id, type, created FROM stripe_events ORDER BY id").fetchall()


# --- what arrives ----------------------------------------------------------------------------

LONG_TEXT = st.builds(
    lambda char, n: char * n,
    st.sampled_from(["e", "é", "\x00", "\ud800"]),
    st.sampled_from([99, 100, 101, 254, 255, 256, 10_000]),
)
TEXT = (
    st.text()
    | LONG_TEXT
    | st.sampled_from(["", ".", "..", "/", "?", "%", "#", " ", "cus_1", "sub_1", "evt_1"])
)
NUMBERS = (
    st.integers()
    | st.integers(-(10**30), 10**30)
    | st.sampled_from([0, -1, 253402300799, 253402300800, 2**63, -(2**63) - 1])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.booleans()
)
SCALARS = st.none() | NUMBERS | TEXT
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(TEXT, inner, max_size=5),
    max_leaves=20,
)

EVENT_TYPES = st.sampled_from(
    [
        "customer.created",
        "customer.updated",
        "customer.deleted",
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "invoice.paid",
    ]
)


def routable(object_id) -> bool:
    """Not an id holding "{", "}" or "/": localstripe (aiohttp) routes no such path segment
    and answers a plain-text 404, which the stripe package reads as an API failure (retried),
    where Stripe answers its JSON 404 (the event is then set aside)."""
    return not (isinstance(object_id, str) and {"{", "}", "/"} & set(object_id))


@st.composite
def events(draw, object_ids: list[str]) -> dict:
    """Event-shaped objects: each field sensible (five times in seven), odd or missing; the
    object one of `object_ids` (objects that exist at Stripe) or any other."""
    sensible = {
        "id": st.builds(lambda: f"evt_{uuid.uuid4().hex}"),  # new each time: applied, not replayed
        "type": EVENT_TYPES,
        "created": st.integers(0, 253402300799),
        "data": st.fixed_dictionaries(
            {
                "object": st.fixed_dictionaries(
                    {
                        "id": st.sampled_from([*object_ids, "cus_missing", "sub_missing"])
                        | TEXT.filter(routable)
                    },
                    optional={"object": TEXT},
                )
            }
        ),
    }
    odd = {
        "id": TEXT | JSON,
        "type": TEXT | JSON,
        "created": NUMBERS | JSON,
        "data": st.fixed_dictionaries(
            {"object": st.fixed_dictionaries({}, optional={"id": JSON.filter(routable)})}
        )
        | JSON,
    }
    drawn: dict = {}
    for key in sensible:
        kind = draw(st.sampled_from(["sensible"] * 5 + ["odd", "missing"]))
        if kind != "missing":
            drawn[key] = draw((sensible if kind == "sensible" else odd)[key])
    drawn.update(draw(st.dictionaries(TEXT, JSON, max_size=3)))
    return drawn


@st.composite
def json_bodies(draw, values) -> bytes:
    """Serialised as Stripe does, or with non-ASCII unescaped: lone surrogates then make the
    body not UTF-8."""
    text = json.dumps(draw(values), ensure_ascii=draw(st.booleans()))
    return text.encode("utf-8", "surrogatepass")


def nested(opening: str, closing: str, inner: str = "1") -> st.SearchStrategy[bytes]:
    return st.integers(1, 300_000).map(
        lambda depth: (opening * depth + inner + closing * depth).encode()
    )


def huge_integer(digits: int) -> bytes:
    """An event whose `created` has more digits than Python's int() reads."""
    return (
        f'{{"id": "evt_big", "type": "customer.updated", "created": {"7" * digits}, '
        f'"data": {{"object": {{}}}}}}'
    ).encode()


def bodies(object_ids: list[str]) -> st.SearchStrategy[bytes]:
    """Half of them event-shaped."""
    others = st.one_of(
        json_bodies(JSON),
        st.binary(max_size=500),
        st.text().map(lambda text: text.encode("utf-8", "surrogatepass")),
        nested("[", "]", ""),
        nested('{"a":', "}"),
        st.integers(4000, 5000).map(huge_integer),
        st.just(MAX_BODY_BYTES + 1).map(b" ".__mul__),
    )
    return st.sampled_from([json_bodies(events(object_ids)), others]).flatmap(lambda kind: kind)


T_VALUES = (
    st.integers().map(str)
    | st.integers(-(10**40), 10**40).map(str)
    | st.text(st.characters(categories=["Nd", "No"]), min_size=1, max_size=12)
    | st.sampled_from(["", " ", "+1", "1_000", "1e9", "²", "9" * 5000])
)
V1_VALUES = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64) | st.text(max_size=70)
PARTS = (
    T_VALUES.map("t={}".format)
    | V1_VALUES.map("v1={}".format)
    | st.sampled_from(["", "=", "t", "v1", "v0=abc", "t==", "v1=="])
    | st.text(max_size=10)
)
UNSIGNED = st.one_of(
    st.none(),
    st.binary(max_size=300),
    st.text(max_size=300).map(lambda text: text.encode("utf-8", "surrogatepass")),
    st.text(st.characters(max_codepoint=255), max_size=300).map(
        lambda text: text.encode("latin-1")
    ),
    st.lists(PARTS, max_size=12).map(
        lambda parts: ",".join(parts).encode("utf-8", "surrogatepass")
    ),
    st.integers(0, 3000).map(lambda n: ("t=1," + ",".join(["v1=" + "0" * 64] * n)).encode()),
)
SIGNED = st.builds(
    Signed,
    secret=st.sampled_from([TEST_WEBHOOK_SECRET, "whsec_other"]),
    t=st.none() | T_VALUES,
    extra=st.lists(PARTS, max_size=4).map(tuple),
)
# A third unsigned, a third signed oddly or with another secret, a third signed now with ours.
HEADERS = st.sampled_from([UNSIGNED, SIGNED, st.just(Signed())]).flatmap(lambda kind: kind)


# --- what a subscription or a customer holds ---------------------------------------------------


def sometimes_odd(sensible: st.SearchStrategy) -> st.SearchStrategy:
    """Sensible 15 times in 16, else any JSON (ids among it routable)."""
    return st.sampled_from([sensible] * 15 + [JSON.filter(routable)]).flatmap(lambda kind: kind)


EPOCHS = st.integers(0, 253402300799) | st.sampled_from([-1, 10**13, 2**63, 1.5e9, True])
TIER_VALUES = st.sampled_from(["PRO", "enterprise", " Free ", "GOLD", ""])
LIMIT_VALUES = st.sampled_from(["9000", "0", " 12 ", "-1", "1e3", "2147483647", "2147483648", ""])


@st.composite
def subscription_objects(draw, customers: list[str], products: list[str]) -> dict:
    metadata = st.fixed_dictionaries(
        {},
        optional={
            "tier": sometimes_odd(TIER_VALUES),
            "analyses_limit": sometimes_odd(LIMIT_VALUES),
            "fixes_limit": sometimes_odd(LIMIT_VALUES),
        },
    )
    price = st.fixed_dictionaries(
        {"id": sometimes_odd(st.just("price_fuzz")), "metadata": sometimes_odd(metadata)},
        optional={"product": sometimes_odd(st.sampled_from([*products, "prod_missing"]))},
    )
    item = st.fixed_dictionaries(
        {
            "price": sometimes_odd(price),
            "current_period_start": sometimes_odd(EPOCHS),
            "current_period_end": sometimes_odd(EPOCHS),
        }
    )
    customer = st.sampled_from([*customers, "cus_missing"])
    return draw(
        st.fixed_dictionaries(
            {
                "id": sometimes_odd(st.builds(lambda: f"sub_{uuid.uuid4().hex}")),
                "customer": sometimes_odd(customer | customer.map(lambda c: {"id": c})),
                "status": sometimes_odd(st.sampled_from([*STATUSES, "frozen"])),
                "items": sometimes_odd(
                    st.fixed_dictionaries(
                        {"data": sometimes_odd(st.lists(item, min_size=1, max_size=3))}
                    )
                ),
            },
            optional={
                "current_period_start": sometimes_odd(EPOCHS),
                "current_period_end": sometimes_odd(EPOCHS),
                "cancel_at": sometimes_odd(st.none() | EPOCHS),
                "canceled_at": sometimes_odd(st.none() | EPOCHS),
                "ended_at": sometimes_odd(st.none() | EPOCHS),
            },
        )
    )


@st.composite
def customer_objects(draw, customers: list[str]) -> dict:
    return draw(
        st.fixed_dictionaries(
            {"id": sometimes_odd(st.sampled_from(customers))},
            optional={
                "metadata": sometimes_odd(
                    st.fixed_dictionaries(
                        {}, optional={"org_slug": sometimes_odd(st.sampled_from(ORG_SLUGS))}
                    )
                ),
                "deleted": sometimes_odd(st.booleans()),
            },
        )
    )


ORG_SLUGS = ["odavl-test-org", "enterprise-corp", "no-such-org", ""]


@st.composite
def processed_events(draw, catalog: "Catalog") -> dict:
    kind = draw(EVENT_TYPES.filter(inbox.follows))
    obj = draw(
        customer_objects(catalog.customers)
        if kind.startswith("customer.") and not kind.startswith("customer.subscription.")
        else subscription_objects(catalog.customers, catalog.products)
    )
    event = {
        "id": f"evt_{uuid.uuid4().hex}",
        "type": kind,
        "created": draw(st.integers(1_700_000_000, 2_000_000_000)),
        "data": {"object": obj},
    }
    try:
        return inbox.parse_event(event)
    except inbox.MalformedEvent:  # an object id the endpoint refuses: another one
        return {**event, "data": {"object": {**obj, "id": f"odd_{uuid.uuid4().hex}"}}}


@dataclass(frozen=True)
class Catalog:
    """What exists at Stripe: customers (of an organization, and of none) and products."""

    customers: list[str]
    products: list[str]


@pytest.fixture
def stripe_catalog(stripe_settings) -> Catalog:
    client = stripe_client(stripe_settings)
    plans = create_plans(client)
    linked = client.v1.customers.create({"metadata": {"org_slug": "odavl-test-org"}})
    stranger = client.v1.customers.create({})
    products = [client.v1.plans.retrieve(plan).product for plan in (plans.pro, plans.enterprise)]
    return Catalog([linked.id, stranger.id], products)


FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)


@FUZZ
@given(data=st.data(), header=HEADERS)
def test_no_delivery_is_answered_5xx_and_a_refused_one_applies_nothing(
    webhook_endpoint, stripe_objects, stripe_settings, data, header
):
    check(
        webhook_endpoint, stripe_settings, data.draw(bodies(stripe_objects), label="body"), header
    )


@FUZZ
@given(data=st.data())
def test_no_validly_signed_event_is_answered_5xx_and_a_refused_one_applies_nothing(
    webhook_endpoint, stripe_objects, stripe_settings, data
):
    body = data.draw(json_bodies(events(stripe_objects)), label="body")
    check(webhook_endpoint, stripe_settings, body, Signed())


def check(endpoint: Endpoint, app_settings, body: bytes, header: bytes | Signed | None) -> None:
    before = stored_events(app_settings)
    status, answer = endpoint.post(
        body, header.header(body) if isinstance(header, Signed) else header
    )
    assert isinstance(answer, dict), answer
    outcome = f"{status} {answer.get('error') or answer.get('outcome')}"
    hypothesis.event(outcome)  # counted by --hypothesis-show-statistics
    assert status < 500, answer
    if status >= 400:
        assert isinstance(answer.get("error"), str), answer
        assert stored_events(app_settings) == before


@FUZZ
@given(data=st.data())
def test_processing_any_stored_event_ends_processed_or_set_aside_with_its_reason(
    webhook_endpoint, stripe_catalog, stripe_settings, data
):
    body = json.dumps(data.draw(processed_events(stripe_catalog), label="event")).encode()
    status, answer = webhook_endpoint.post(body, Signed().header(body))
    assert (status, answer.get("outcome")) == (200, "received"), answer
    # a customer linked now brings back its events set aside before: they are processed too
    outcomes = process_due(stripe_settings, stripe_client(stripe_settings))
    assert answer["event"] in [outcome.event_id for outcome in outcomes]
    for outcome in outcomes:
        hypothesis.event(f"{outcome.status} {outcome.detail.split(':')[0]}")
        assert outcome.status in ("processed", "dead"), outcome
        assert not outcome.detail.startswith("internal_error"), outcome
