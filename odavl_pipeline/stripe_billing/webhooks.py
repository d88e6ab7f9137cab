"""The webhook endpoint: a small Starlette app served by uvicorn (`odavl-pipeline stripe listen`).

POST /stripe/webhook verifies the `Stripe-Signature` header against the raw body, then applies
the event once: 200 when applied, ignored or already applied; 400 with the reason when the
signature or the body is bad; 500 when the database or Stripe failed, so Stripe delivers the
event again. GET /healthz answers 200. Neither secrets nor bodies are logged.
"""

import json
import logging
import time
from collections.abc import Callable

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

log = logging.getLogger("odavl_pipeline.stripe.webhooks")


class WebhookSecretMissing(RuntimeError):
    """STRIPE_WEBHOOK_SECRET is unset: no delivery could be verified."""

    def __init__(self) -> None:
        super().__init__("STRIPE_WEBHOOK_SECRET is not set (the endpoint secret, `whsec_…`; "
                         "several separated by commas while a secret is rotated)")


def create_app(settings: Settings, client: stripe.StripeClient | None = None,
               clock: Callable[[], float] = time.time) -> Starlette:
    """The webhook app; `clock` is the time signatures are checked against."""
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
            verify_signature(body, request.headers.get("stripe-signature"), secrets, clock=clock)
        except SignatureError as error:
            log.warning("webhook refused: %s", error.reason)
            return JSONResponse({"error": error.reason}, status_code=400)
        try:
            event = parse_event(json.loads(body))
        except ValueError as error:  # also JSON and UTF-8 errors
            return JSONResponse({"error": "malformed_event", "detail": str(error)}, status_code=400)
        try:
            outcome = await run_in_threadpool(apply, event)
        except Exception:
            log.exception("event %s (%s) not applied; Stripe will deliver it again",
                          event["id"], event["type"])
            return JSONResponse({"error": "not_applied", "event": event["id"]}, status_code=500)
        log.info("event %s (%s): %s %s", outcome.event_id, outcome.type, outcome.status, outcome.detail)
        return JSONResponse({"event": outcome.event_id, "outcome": outcome.status,
                             "detail": outcome.detail})

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route("/stripe/webhook", webhook, methods=["POST"]),
                             Route("/healthz", healthz, methods=["GET"])])


def serve(settings: Settings, host: str, port: int) -> None:
    """Serve the webhook endpoint until interrupted."""
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")


async def _read_body(request: Request) -> bytes | None:
    """The raw body, or None past MAX_BODY_BYTES."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
