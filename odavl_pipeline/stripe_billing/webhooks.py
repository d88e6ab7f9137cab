"""The webhook endpoint (`odavl-pipeline stripe listen`): a Starlette app on a bounded uvicorn.

POST /stripe/webhook verifies the `Stripe-Signature` header against the raw body (see
`signatures`), stores the event in the inbox (`inbox.receive`) and answers; the inbox's worker
threads, in the same process, process it apart from the request (`sync.process_next`). Its
answers:

- 200 `{"event", "outcome": "received"}` once the event is stored, `"duplicate"` when it was
  already; nothing waits for Stripe;
- 400 with `{"error": reason, "detail": …}` for what we can prove bad: a missing or invalid
  signature, a stale timestamp, a body that is not UTF-8 or not JSON Python can read (nested
  too deep, an integer too long), an event whose id, type, created or object id we cannot
  store (`malformed_event`, the detail names the field). Nothing is stored.
- 413 for a body over 1 MiB (at once when its Content-Length says so), 408 for a body that
  does not arrive within `BODY_SECONDS`;
- 503 `not_stored` when the database failed: Stripe delivers the event again;
- 500 `internal_error` for any other failure while storing, logged with the event id.

Bounded, whoever connects: a request's head must arrive within `HEAD_SECONDS` and hold at most
`MAX_HEAD_BYTES`, its body within `BODY_SECONDS`; at most `MAX_CONNECTIONS` connections are
open (others are answered 503 and closed); a body is kept in memory up to `SPOOL_BYTES` and on
disk beyond, so a thousand slow clients cost little memory and others are still served. The
deadlines and the cap are the connection's (`odavl_pipeline.bounded_http`, as the dashboards').

GET /healthz answers 200. Neither secrets nor bodies are logged.
"""

import asyncio
import json
import logging
import resource
import tempfile
import threading
import time
from contextlib import asynccontextmanager

import psycopg
import stripe
import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from odavl_pipeline.bounded_http import Bounds, bounded_protocol
from odavl_pipeline.db.connections import Connections
from odavl_pipeline.settings import Settings, secret_value
from odavl_pipeline.stripe_billing import inbox
from odavl_pipeline.stripe_billing.client import stripe_client
from odavl_pipeline.stripe_billing.signatures import SignatureError, parse_secrets, verify_signature
from odavl_pipeline.stripe_billing.sync import process_next

MAX_BODY_BYTES = 1 << 20  # Stripe's events are far smaller
SPOOL_BYTES = 16 << 10  # a body beyond this waits on disk, not in memory
MAX_HEAD_BYTES = 16 << 10
HEAD_SECONDS = 10
BODY_SECONDS = 10
KEEP_ALIVE_SECONDS = 5
# Two file descriptors a connection at most (its socket, a spooled body), some to spare.
MAX_CONNECTIONS = max(1, min(2048, (resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 64) // 2))
# the connection's own deadlines: the app answers a slow body 408 first (`_read_body`)
BOUNDS = Bounds(HEAD_SECONDS, BODY_SECONDS + 2, MAX_BODY_BYTES, MAX_CONNECTIONS)
WORKERS = 4  # threads processing the inbox, each on one customer's events at a time
POLL_SECONDS = 2  # how often idle workers look for retries due and other servers' events
STOP_SECONDS = 10

# The database failed, not the event: Stripe delivers it again.
INFRASTRUCTURE_ERRORS = (psycopg.OperationalError, psycopg.InterfaceError)
CLOSE = {"connection": "close"}

log = logging.getLogger("odavl_pipeline.stripe.webhooks")


class WebhookSecretMissing(RuntimeError):
    """STRIPE_WEBHOOK_SECRET is unset: no delivery could be verified."""

    def __init__(self) -> None:
        super().__init__(
            "STRIPE_WEBHOOK_SECRET is not set (the endpoint secret, `whsec_…`; "
            "several separated by commas while a secret is rotated)"
        )


class BodyTooLarge(Exception):
    """A body past MAX_BODY_BYTES."""


def create_app(
    settings: Settings, client: stripe.StripeClient | None = None, workers: int = WORKERS
) -> Starlette:
    """The webhook app; while it runs (its lifespan), `workers` threads process the inbox."""
    secrets = parse_secrets(secret_value(settings.stripe_webhook_secret))
    if not secrets:
        raise WebhookSecretMissing()
    connections = Connections(settings)
    processing = InboxWorkers(settings, client or stripe_client(settings), workers, connections)

    def store(event: dict, body: str) -> bool:
        with connections.connection() as conn:
            return inbox.receive(conn, event, body)

    async def webhook(request: Request) -> JSONResponse:
        try:
            body = await _read_body(request)
        except BodyTooLarge:
            return JSONResponse({"error": "body_too_large"}, status_code=413, headers=CLOSE)
        except TimeoutError:
            return JSONResponse({"error": "body_timeout"}, status_code=408, headers=CLOSE)
        except ClientDisconnect:
            return JSONResponse({"error": "client_disconnected"}, status_code=400, headers=CLOSE)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return _refused("malformed_event", "the body is not UTF-8")
        try:
            verify_signature(text, request.headers.get("stripe-signature"), secrets)
        except SignatureError as error:
            return _refused(error.reason, error.detail)
        try:
            event = inbox.parse_event(json.loads(text))
        except (ValueError, RecursionError) as error:  # also JSON errors and integers too long
            return _refused("malformed_event", str(error))
        try:
            stored = await run_in_threadpool(store, event, text)
        except INFRASTRUCTURE_ERRORS as error:
            log.error(
                "event %r (%r) not stored (%s: %s); Stripe will deliver it again",
                event["id"],
                event["type"],
                type(error).__name__,
                error,
            )
            return JSONResponse({"error": "not_stored", "event": event["id"]}, status_code=503)
        except Exception:
            log.exception("event %r (%r) not stored", event["id"], event["type"])
            return JSONResponse({"error": "internal_error", "event": event["id"]}, status_code=500)
        if stored:
            processing.wake()
        log.info("event %r (%r) %s", event["id"], event["type"], "received" if stored else "again")
        return JSONResponse(
            {"event": event["id"], "outcome": "received" if stored else "duplicate"}
        )

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @asynccontextmanager
    async def lifespan(app: Starlette):
        processing.start()
        try:
            yield
        finally:
            await run_in_threadpool(processing.stop)

    return Starlette(
        routes=[
            Route("/stripe/webhook", webhook, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


def server(app, **options) -> uvicorn.Server:
    """A uvicorn server of `app` with the bounds above (`options` as uvicorn.Config's)."""
    return uvicorn.Server(
        uvicorn.Config(
            app,
            http=bounded_protocol(BOUNDS),
            h11_max_incomplete_event_size=MAX_HEAD_BYTES,
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
            **options,
        )
    )


def serve(settings: Settings, host: str, port: int) -> None:
    """Serve the webhook endpoint, and process its inbox, until interrupted."""
    server(create_app(settings), host=host, port=port, log_level="info").run()


class InboxWorkers:
    """Threads that process the inbox: woken when an event is stored, and every
    `POLL_SECONDS` for retries coming due and events stored by other servers."""

    def __init__(
        self,
        settings: Settings,
        client: stripe.StripeClient,
        count: int,
        connections: Connections,
    ):
        self.settings, self.client, self.count = settings, client, count
        self.connections = connections
        self.threads: list[threading.Thread] = []
        self.stopping = threading.Event()
        self.condition = threading.Condition()
        self.signals = 0

    def start(self) -> None:
        self.stopping.clear()
        self.threads = [
            threading.Thread(target=self._run, name=f"stripe-inbox-{n}", daemon=True)
            for n in range(self.count)
        ]
        for thread in self.threads:
            thread.start()

    def wake(self) -> None:
        with self.condition:
            self.signals += 1
            self.condition.notify_all()

    def stop(self) -> None:
        """Stop taking events; an event being processed is finished, or its lease runs out."""
        self.stopping.set()
        self.wake()
        deadline = time.monotonic() + STOP_SECONDS
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _run(self) -> None:
        while not self.stopping.is_set():
            seen = self.signals
            try:
                with self.connections.connection() as conn:
                    outcome = process_next(self.settings, self.client, conn)
            except Exception:
                log.exception("the inbox could not be processed; trying again")
                outcome = None
            if outcome is None:
                with self.condition:
                    if self.signals == seen and not self.stopping.is_set():
                        self.condition.wait(POLL_SECONDS)


def _refused(reason: str, detail: str) -> JSONResponse:
    log.warning("webhook refused: %s (%s)", reason, detail)
    return JSONResponse({"error": reason, "detail": detail}, status_code=400)


async def _read_body(request: Request) -> bytes:
    """The raw body within `BODY_SECONDS`, kept on disk beyond `SPOOL_BYTES`; `BodyTooLarge`
    past `MAX_BODY_BYTES`."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise BodyTooLarge()
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
        async with asyncio.timeout(BODY_SECONDS):
            async for chunk in request.stream():
                if spool.tell() + len(chunk) > MAX_BODY_BYTES:
                    raise BodyTooLarge()
                spool.write(chunk)
        spool.seek(0)
        return spool.read()
