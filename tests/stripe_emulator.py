"""localstripe on loopback in a thread of the test process, extended with Stripe's billing meter
event route it lacks; and our webhook endpoint served by uvicorn on loopback.

localstripe signs and delivers its own webhooks (`/_config/webhooks/<id>`); the emulator can
hold them back and deliver them later in a chosen order, or deliver one again (a replay), signed
when delivered as Stripe signs each attempt. It also sends `customer.subscription.updated` when
a subscription is updated, as Stripe does (localstripe does not), and can make Stripe's API
answer a chosen status, or hold requests until released (`StripeFaults`).
Stripe's clock is ours (`clock.now()`): objects' and events' creation times (so the signatures
of its deliveries), subscription periods and the meter events' 35-day window follow the clock
a test sets, as the code under test does.
Also the test data: two plans, and a marts file of billing periods for the usage report.
"""

import asyncio
import hashlib
import hmac
import json
import socket
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import requests
from aiohttp import web

from odavl_pipeline import clock
from odavl_pipeline.stripe_billing import webhooks

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # localstripe's sync handlers, for aiohttp
    from localstripe import resources as localstripe_resources
    from localstripe import server as localstripe_server
    from localstripe import webhooks as localstripe_webhooks

STRIPE_BACKDATE_LIMIT = 35 * 24 * 3600
STRIPE_FUTURE_LIMIT = 300
WAIT_SECONDS = 15


def stripe_now() -> int:
    """Stripe's clock in tests, in Unix seconds: ours."""
    return int(clock.now().timestamp())


class _OurTime:
    """localstripe's `time` module, with `time()` read from our clock."""

    def time(self) -> float:
        return clock.now().timestamp()

    def __getattr__(self, name: str):
        return getattr(time, name)


localstripe_resources.time = _OurTime()


@dataclass
class MeterEventFault:
    status: int
    after_storing: bool  # the event is kept, but the answer is lost


@dataclass
class MeterEvents:
    """Stripe's `POST /v1/billing/meter_events`: validated, deduplicated by identifier, stored."""

    stored: dict[str, dict] = field(default_factory=dict)  # identifier -> event
    accepted: list[str] = field(default_factory=list)  # identifiers, each time one was stored
    requests: int = 0
    faults: dict[int, MeterEventFault] = field(default_factory=dict)  # by request number

    def fail_request(self, number: int, status: int, after_storing: bool = False) -> None:
        """Make the `number`-th request from now fail with `status` (Stripe-Should-Retry: false)."""
        self.faults[self.requests + number] = MeterEventFault(status, after_storing)

    async def create(self, request: web.Request) -> web.Response:
        self.requests += 1
        data = await localstripe_server.get_post_data(request) or {}
        fault = self.faults.pop(self.requests, None)
        if fault and not fault.after_storing:
            return _error(fault.status, "api_error", "An unexpected error occurred.")
        error = self._invalid(data)
        if error:
            return _error(400, "invalid_request_error", error)
        identifier = data.get("identifier") or f"emulated-{uuid.uuid4().hex}"
        if identifier in self.stored:
            return _error(
                400,
                "invalid_request_error",
                f"An event already exists with identifier {identifier}.",
            )
        event = {
            "object": "billing.meter_event",
            "created": stripe_now(),
            "event_name": data["event_name"],
            "identifier": identifier,
            "livemode": False,
            "payload": data["payload"],
            "timestamp": int(data.get("timestamp") or stripe_now()),
        }
        self.stored[identifier] = event
        self.accepted.append(identifier)
        if fault:
            return _error(fault.status, "api_error", "An unexpected error occurred.")
        return web.json_response(event)

    @staticmethod
    def _invalid(data: dict) -> str | None:
        unknown = set(data) - {"event_name", "payload", "identifier", "timestamp"}
        if unknown:
            return f"Received unknown parameter: {sorted(unknown)[0]}"
        name, payload = data.get("event_name"), data.get("payload")
        if not isinstance(name, str) or not 0 < len(name) <= 100:
            return "Missing required param: event_name."
        if not isinstance(payload, dict) or not isinstance(payload.get("stripe_customer_id"), str):
            return "Missing required param: payload[stripe_customer_id]."
        if not str(payload.get("value", "")).lstrip("-").isdigit():
            return "payload[value] must be an integer."
        identifier = data.get("identifier")
        if identifier is not None and not 0 < len(str(identifier)) <= 100:
            return "identifier must be 1 to 100 characters."
        if "timestamp" in data:
            timestamp = str(data["timestamp"])
            if not timestamp.isdigit():
                return "Invalid integer: timestamp."
            age = stripe_now() - int(timestamp)
            if age > STRIPE_BACKDATE_LIMIT or age < -STRIPE_FUTURE_LIMIT:
                return (
                    "Timestamp must be within the past 35 calendar days or up to 5 minutes "
                    "in the future."
                )
        return None


def _error(status: int, kind: str, message: str) -> web.Response:
    return web.json_response(
        {"error": {"type": kind, "message": message}},
        status=status,
        headers={"Stripe-Should-Retry": "false"},
    )


METER_EVENTS = MeterEvents()
localstripe_server.app.router.add_post("/v1/billing/meter_events", METER_EVENTS.create)
localstripe_resources.store.dump_to_disk = lambda: None  # keep the store in memory only


@dataclass
class FaultRule:
    path_prefix: str
    status: int | None  # the status to answer, or None to hold the request until released
    times: int | None  # how many requests it takes, None for all


@dataclass
class StripeFaults:
    """Stripe's API answering a chosen status (with Stripe's error body), or holding requests
    until `release`; and the API requests seen, as (method, path)."""

    rules: list[FaultRule] = field(default_factory=list)
    seen: list[tuple[str, str]] = field(default_factory=list)
    held: int = 0
    gate: asyncio.Event | None = None

    def answer(self, path_prefix: str, status: int, times: int | None = None) -> None:
        self.rules.append(FaultRule(path_prefix, status, times))

    def hold(self, path_prefix: str) -> None:
        self.rules.append(FaultRule(path_prefix, None, None))

    @web.middleware
    async def middleware(self, request: web.Request, handler):
        if not request.path.startswith("/v1/"):
            return await handler(request)
        self.seen.append((request.method, request.path))
        for rule in self.rules:
            if request.path.startswith(rule.path_prefix) and rule.times != 0:
                if rule.times is not None:
                    rule.times -= 1
                if rule.status is None:
                    self.gate = self.gate or asyncio.Event()
                    self.held += 1
                    await self.gate.wait()
                    break
                kind = {401: "authentication_error", 403: "permission_error"}.get(
                    rule.status, "invalid_request_error" if rule.status < 500 else "api_error"
                )
                return _error(rule.status, kind, f"Emulated answer {rule.status}.")
        return await handler(request)


FAULTS = StripeFaults()
localstripe_server.app.middlewares.append(FAULTS.middleware)


def _updated_with_event(update):
    """localstripe's Subscription._update, then Stripe's `customer.subscription.updated`."""

    def updating(self, **data):
        update(self, **data)
        localstripe_resources.schedule_webhook(
            localstripe_resources.Event("customer.subscription.updated", self)
        )

    return updating


localstripe_resources.Subscription._update = _updated_with_event(
    localstripe_resources.Subscription._update
)


class _Deliveries:
    """localstripe's webhook scheduling (one task per event, sent after a second), with a switch
    to hold events back, and the tasks kept so that a reset cancels what is still to be sent."""

    def __init__(self):
        self.holding = False
        self.held: list = []
        self.pending: set[asyncio.Task] = set()

    def __call__(self, event) -> None:
        if self.holding:
            self.held.append(event)
            return
        task = asyncio.ensure_future(localstripe_webhooks._send_webhook(event))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def cancel_pending(self) -> None:
        for task in list(self.pending):
            task.cancel()


DELIVERIES = _Deliveries()
localstripe_resources.schedule_webhook = DELIVERIES


class StripeEmulator:
    """localstripe served on 127.0.0.1 from its own event loop thread."""

    def __init__(self):
        self.meter_events = METER_EVENTS
        self.faults = FAULTS
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self.runner = web.AppRunner(localstripe_server.app)
        self._call(self._start(sock))

    async def _start(self, sock: socket.socket) -> None:
        await self.runner.setup()
        await web.SockSite(self.runner, sock).start()

    def _call(self, coroutine, timeout: float = WAIT_SECONDS):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def reset(self) -> None:
        """Forget every object, webhook, held event and meter event."""
        localstripe_webhooks._webhooks.clear()
        self._call(DELIVERIES.cancel_pending())
        requests.delete(f"{self.url}/_config/data", timeout=5).raise_for_status()
        DELIVERIES.holding, DELIVERIES.held = False, []
        METER_EVENTS.stored.clear()
        METER_EVENTS.accepted.clear()
        METER_EVENTS.faults.clear()
        METER_EVENTS.requests = 0
        self.release()
        FAULTS.rules.clear()
        FAULTS.seen.clear()
        FAULTS.held = 0

    def release(self) -> None:
        """Let every held API request through, and stop holding."""
        FAULTS.rules[:] = [rule for rule in FAULTS.rules if rule.status is not None]
        gate, FAULTS.gate = FAULTS.gate, None
        if gate is not None:
            self.loop.call_soon_threadsafe(gate.set)

    def register_webhook(self, url: str, secret: str, name: str = "odavl") -> None:
        """Point localstripe's signed webhook deliveries at `url` (its `_config` route)."""
        requests.post(
            f"{self.url}/_config/webhooks/{name}", data={"url": url, "secret": secret}, timeout=5
        ).raise_for_status()

    def hold_webhooks(self) -> None:
        DELIVERIES.holding = True

    def held(self, event_type: str | None) -> list:
        """The events held back, of one type or all, in the order Stripe made them."""
        return [event for event in DELIVERIES.held if event_type in (None, event.type)]

    def deliver(self, *events) -> list[requests.Response]:
        """Deliver these events now, one after the other, to every registered endpoint; their
        answers."""
        return [
            answer
            for event in events
            for webhook in list(localstripe_webhooks._webhooks.values())
            for answer in self.deliver_to(webhook.url, webhook.secret, event)
        ]

    def deliver_to(self, url: str, secret: str, *events) -> list[requests.Response]:
        """Deliver these events to `url`, each signed with `secret` at the time of its delivery,
        as Stripe signs each attempt; their answers."""
        answers = []
        for event in events:
            payload = json.dumps(event._export(), indent=2, sort_keys=True).encode()
            signed_at = stripe_now()
            signature = hmac.new(
                secret.encode(), b"%d.%s" % (signed_at, payload), hashlib.sha256
            ).hexdigest()
            answers.append(
                requests.post(
                    url,
                    data=payload,
                    headers={
                        "Content-Type": "application/json; charset=utf-8",
                        "Stripe-Signature": f"t={signed_at},v1={signature}",
                    },
                    timeout=WAIT_SECONDS,
                )
            )
        return answers

    def events(self, event_type: str | None = None) -> list:
        """The events localstripe created, of one type or all."""
        return [
            value
            for key, value in list(localstripe_resources.store.items())
            if key.startswith("event:") and event_type in (None, value.type)
        ]

    def close(self) -> None:
        self._call(self.runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(WAIT_SECONDS)
        self.loop.close()


class WebhookServer:
    """The webhook app served by its bounded uvicorn (`webhooks.server`) on 127.0.0.1 from a
    thread, its inbox workers running (the app's lifespan); keeps each (status, JSON body) it
    answered, so a test sees what a delivery by the emulator got."""

    def __init__(self, app):
        self.app = app
        self.responses: list[tuple[int, dict]] = []
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self.url = f"{self.base}/stripe/webhook"
        self.server = webhooks.server(
            self._recording, interface="asgi3", log_level="warning", lifespan="on"
        )
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self.thread.start()
        wait_until(lambda: self.server.started, "the webhook server to start")

    async def _recording(self, scope, receive, send) -> None:
        status, body = [], []

        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def record(message) -> None:  # kept before it is sent: no race with the reader
            if message["type"] == "http.response.start":
                status.append(message["status"])
            elif message["type"] == "http.response.body":
                body.append(message.get("body", b""))
                if not message.get("more_body"):
                    self.responses.append((status[0], json.loads(b"".join(body))))
            await send(message)

        await self.app(scope, receive, record)

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(WAIT_SECONDS)


@contextmanager
def endpoint(settings, **options) -> Iterator[WebhookServer]:
    """The webhook endpoint of `settings` (`create_app`'s `options`), served until the block
    ends."""
    server = WebhookServer(webhooks.create_app(settings, **options))
    try:
        yield server
    finally:
        server.close()


def wait_until(condition: Callable[[], object], what: str, seconds: float = WAIT_SECONDS):
    """Poll `condition` until it is true (returned), for at most `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        time.sleep(0.05)


TEST_API_KEY = "sk_test_odavl"
TEST_WEBHOOK_SECRET = "whsec_odavl_test"


@dataclass(frozen=True)
class Plans:
    pro: str
    enterprise: str


def create_plans(client) -> Plans:
    """Two monthly plans: PRO names its tier on the product, ENTERPRISE on the price itself."""
    pro_product = client.v1.products.create({"name": "ODAVL Pro", "metadata": {"tier": "PRO"}})
    pro = client.v1.plans.create(
        {"amount": 0, "currency": "eur", "interval": "month", "product": pro_product.id}
    )
    enterprise_product = client.v1.products.create({"name": "ODAVL Enterprise"})
    enterprise = client.v1.plans.create(
        {
            "amount": 0,
            "currency": "eur",
            "interval": "month",
            "product": enterprise_product.id,
            "metadata": {"tier": "enterprise", "analyses_limit": "9000"},
        }
    )
    return Plans(pro=pro.id, enterprise=enterprise.id)


# --- the report's input: a marts file with `billing_periods` (CONTRACT.md section 6) -------

BILLED = 5  # closed periods of SAMPLE that a report sends


def sample_billing_periods(now: datetime) -> list[tuple]:
    """(org, period_start, period_end, metric, used, quota, overage, closed) rows: five to bill
    (a recent closed period of each demo organization), and what must not be billed."""

    def day(days_ago: int) -> datetime:
        return (now - timedelta(days=days_ago)).replace(hour=0, minute=0, second=0, microsecond=0)

    recent, old, current = (day(40), day(10)), (day(100), day(70)), (day(10), day(-20))
    return [
        ("enterprise-corp", *recent, "analyses", 4000, 5000, 0, True),
        ("enterprise-corp", *recent, "audits", 3, 1000, 0, True),
        ("enterprise-corp", *recent, "fixes", 15, 2000, 0, True),
        ("odavl-test-org", *recent, "analyses", 620, 500, 120, True),
        ("odavl-test-org", *recent, "audits", 0, 100, 0, True),  # nothing to bill
        ("odavl-test-org", *recent, "fixes", 7, 200, 0, True),
        ("odavl-test-org", *recent, "api_calls", 999, 0, 0, True),  # not a billed metric
        ("odavl-test-org", *old, "analyses", 50, 500, 0, True),  # older than Stripe accepts
        ("odavl-test-org", *current, "analyses", 10, 500, 0, False),  # still open
        ("no-such-org", *recent, "analyses", 5, 100, 0, True),  # no Stripe customer
    ]


def write_billing_periods(path: Path, rows: list[tuple]) -> None:
    """Publish a marts file holding `billing_periods` only, replacing any previous one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    building = path.with_name(f".{path.name}.building")
    building.unlink(missing_ok=True)
    with duckdb.connect(str(building)) as con:
        con.execute(
            "CREATE TABLE billing_periods (org VARCHAR, period_start TIMESTAMPTZ, "
            "period_end TIMESTAMPTZ, metric VARCHAR, used BIGINT, quota BIGINT, "
            "overage BIGINT, closed BOOLEAN)"
        )
        con.executemany("INSERT INTO billing_periods VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    building.rename(path)
