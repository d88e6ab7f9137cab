"""The webhook endpoint: a small Starlette app served by uvicorn (`odavl-pipeline stripe listen`).

POST /stripe/webhook verifies the `Stripe-Signature` header against the raw body (see
`signatures`), then applies the event once. Its answers:

- 200 when the event is applied, ignored or already applied;
- 413 for a body over 1 MiB;
- 400 with `{"error": reason, "detail": …}` for what we can prove bad: a missing or invalid
  signature, a stale timestamp, a body that is not UTF-8 or not JSON Python can read (nested
  too deep, an integer too long), an event whose fields have the wrong type or do not fit
  our columns (`malformed_event`, the detail names the field). Nothing is applied.
- 503 `not_applied` when the database or Stripe failed (connection, Stripe's 5xx, rate
  limit): the transaction is rolled back and Stripe delivers the event again.
- 500 `internal_error` for any other exception while applying: a bug of ours or an input we
  did not foresee. It is logged with the event id and traceback, and Stripe delivers the
  event again, so a fixed release applies it instead of the event being dropped.

GET /healthz answers 200. Neither secrets nor bodies are logged.
"""

import json
import logging

import psycopg
import stripe
import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from odavl_pipeline.db.server import connect
from odavl_pipeline.settings import Settings
from odavl_pipeline.stripe_billing.client import stripe_client
from odavl_pipeline.stripe_billing.signatures import SignatureError, parse_secrets, verify_signature
from odavl_pipeline.stripe_billing.sync import EventOutcome, apply_event, parse_event

MAX_BODY_BYTES = 1 << 20  # Stripe's events are far smaller

# The database or Stripe failed, not the event: Stripe delivers it again.
INFRASTRUCTURE_ERRORS = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    stripe.APIConnectionError,
    stripe.APIError,
    stripe.RateLimitError,
)

log = logging.getLogger("odavl_pipeline.stripe.webhooks")


class WebhookSecretMissing(RuntimeError):
    """STRIPE_WEBHOOK_SECRET is unset: no delivery could be verified."""

    def __init__(self) -> None:
        super().__init__(
            "STRIPE_WEBHOOK_SECRET is not set (the endpoint secret, `whsec_…`; "
            "several separated by commas while a secret is rotated)"
        )


def create_app(settings: Settings, client: stripe.StripeClient | None = None) -> Starlette:
    """The webhook app."""
    secrets = parse_secrets(settings.stripe_webhook_secret)
    if not secrets:
        raise WebhookSecretMissing()
    client = client or stripe_client(settings)

    def apply(event: dict) -> EventOutcome:
        with connect(settings) as conn:
            return apply_event(conn, client, event)

    async def webhook(request: Request) -> JSONResponse:
        body = await _read_body(request)
        if body is None:
            return JSONResponse({"error": "body_too_large"}, status_code=413)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return _refused("malformed_event", "the body is not UTF-8")
        try:
            verify_signature(text, request.headers.get("stripe-signature"), secrets)
        except SignatureError as error:
            return _refused(error.reason, error.detail)
        try:
            event = parse_event(json.loads(text))
        except (ValueError, RecursionError) as error:  # also JSON errors and integers too long
            return _refused("malformed_event", str(error))
        try:
            outcome = await run_in_threadpool(apply, event)
        except INFRASTRUCTURE_ERRORS as error:
            log.error(
                "event %r (%r) not applied (%s: %s); Stripe will deliver it again",
                event["id"],
                event["type"],
                type(error).__name__,
                error,
            )
            return JSONResponse({"error": "not_applied", "event": event["id"]}, status_code=503)
        except Exception:
            log.exception(
                "event %r (%r) failed; Stripe will deliver it again", event["id"], event["type"]
            )
            return JSONResponse({"error": "internal_error", "event": event["id"]}, status_code=500)
        log.info(
            "event %r (%r): %s %s", outcome.event_id, outcome.type, outcome.status, outcome.detail
        )
        return JSONResponse(
            {"event": outcome.event_id, "outcome": outcome.status, "detail": outcome.detail}
        )

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/stripe/webhook", webhook, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )


def serve(settings: Settings, host: str, port: int) -> None:
    """Serve the webhook endpoint until interrupted."""
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")


def _refused(reason: str, detail: str) -> JSONResponse:
    log.warning("webhook refused: %s (%s)", reason, detail)
    return JSONResponse({"error": reason, "detail": detail}, status_code=400)


async def _read_body(request: Request) -> bytes | None:
    """The raw body, or None past MAX_BODY_BYTES."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
