"""The HTTP API (CONTRACT.md section 9): records in, for the four sources, with the console's
API keys. FastAPI writes the OpenAPI description (`/openapi.json`) from this module.

Every answer is JSON. A bad request gets a 4xx with `{"error", "detail"}`, never a 5xx; a
database that cannot be reached is 503. The records' work runs in the threadpool, on
connections kept between requests (db.connections).
"""

import re
from typing import Any, Literal

import orjson
import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from odavl_pipeline.api import keys, records
from odavl_pipeline.db.connections import Connections
from odavl_pipeline.settings import Settings

LARGEST_BODY = 1 << 20  # bytes
MOST_RECORDS = 1_000
DEEPEST_JSON = 64  # nesting levels of a body
JSON_TYPE = "application/json"
CLOUDEVENT_TYPE = "application/cloudevents+json"
CLOUDEVENTS_BATCH_TYPE = "application/cloudevents-batch+json"

# path -> (source, scope it needs)
ENDPOINTS = {
    "usage-events": ("usage_events", "usage:write"),
    "error-events": ("error_events", "insight:write"),
    "fix-attestations": ("fix_attestations", "autopilot:write"),
    "audit-results": ("audit_results", "guardian:write"),
}


class ApiError(Exception):
    def __init__(self, status: int, error: str, detail: str, headers: dict | None = None):
        super().__init__(detail)
        self.status, self.error, self.detail, self.headers = status, error, detail, headers


class RecordOutcome(BaseModel):
    index: int
    key: str | None
    status: Literal["accepted", "duplicate", "pending", "rejected"]
    reason: str | None = None
    detail: str | None = None


class RecordsAnswer(BaseModel):
    accepted: int
    duplicate: int
    pending: int
    rejected: int
    results: list[RecordOutcome]


class ErrorAnswer(BaseModel):
    error: str
    detail: str


ERRORS = {
    status: {"model": ErrorAnswer, "description": description}
    for status, description in (
        (400, "The body is not JSON, or not records."),
        (401, "No key, or a key that is unknown, expired or revoked."),
        (403, "The key lacks the endpoint's scope."),
        (413, "More than 1 MiB, or more than 1,000 records."),
        (415, "Another content type."),
        (503, "The database cannot be reached."),
    )
}


def create_app(settings: Settings) -> FastAPI:
    connections = Connections(settings)
    app = FastAPI(
        title="ODAVL pipeline API",
        summary="Records in for the products, with the console's API keys (CONTRACT.md §9).",
        version="1",
        docs_url=None,
        redoc_url=None,
    )
    _answer_errors_as_json(app)

    def holder_of(request: Request, scope: str) -> keys.KeyHolder:
        """The key's holder, or 401 / 403."""
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise ApiError(401, "unauthorized", "send `Authorization: Bearer <key>`", BEARER)
        with connections.connection() as conn:
            holder = keys.holder(conn, key.strip())
        if holder is None:
            raise ApiError(401, "unauthorized", "the key is unknown, expired or revoked", BEARER)
        if scope not in holder.scopes:
            raise ApiError(403, "forbidden", f"the key lacks the scope {scope!r}")
        return holder

    def take(request: Request, source: str, scope: str, body: bytes) -> dict:
        holder = holder_of(request, scope)
        content_type = _content_type(request, source)
        sent = _records(body, content_type)
        with connections.connection() as conn:
            outcome = records.take_records(conn, holder, source, sent, body, content_type)
        return {
            **outcome.counts(),
            "results": [result.__dict__ for result in outcome.results],
        }

    for path, (source, scope) in ENDPOINTS.items():
        _route_records(app, path, source, scope, take)
    return app


BEARER = {"WWW-Authenticate": "Bearer"}


def _route_records(app: FastAPI, path: str, source: str, scope: str, take) -> None:
    async def send_records(request: Request) -> dict:
        body = await request.body()
        if len(body) > LARGEST_BODY:
            raise ApiError(413, "too_large", f"the body is over {LARGEST_BODY:,} bytes")
        return await run_in_threadpool(take, request, source, scope, body)

    app.add_api_route(
        f"/v1/{path}",
        send_records,
        methods=["POST"],
        name=f"send_{source}",
        summary=f"Send {source.replace('_', ' ')} (scope {scope})",
        description="One record or an array of up to 1,000, at most 1 MiB, in the format of "
        "CONTRACT.md section 3; one result per record, in order. Accepted means committed and "
        "counted once: the same request again answers `duplicate` for each record.",
        response_model=RecordsAnswer,
        responses=ERRORS,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    kind: {"schema": {"type": ["object", "array"]}} for kind in _media_types(source)
                },
            }
        },
    )


def _media_types(source: str) -> tuple[str, ...]:
    """What an endpoint of `source` takes: JSON, and CloudEvents for usage events."""
    if source == "usage_events":
        return (JSON_TYPE, CLOUDEVENT_TYPE, CLOUDEVENTS_BATCH_TYPE)
    return (JSON_TYPE,)


def _content_type(request: Request, source: str) -> str:
    """The request's media type, if this endpoint takes it; else 415."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    taken = _media_types(source)
    if media not in taken:
        raise ApiError(
            415,
            "unsupported_media_type",
            f"send {' or '.join(sorted(taken))}, not {media or 'no content type'}",
        )
    return media


def _records(body: bytes, content_type: str) -> list[Any]:
    """The records of a body: one value, or the members of an array; CloudEvents mapped to
    usage records. 400 for a body that is not JSON, 413 past MOST_RECORDS."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise ApiError(400, "invalid_json", f"the body is not JSON: {error}") from None
    if _depth(value) > DEEPEST_JSON:
        raise ApiError(400, "too_deep", f"the body nests deeper than {DEEPEST_JSON} levels")
    if content_type == CLOUDEVENTS_BATCH_TYPE and not isinstance(value, list):
        raise ApiError(400, "not_records", "a CloudEvents batch is a JSON array of events")
    sent = value if isinstance(value, list) else [value]
    if not sent:
        raise ApiError(400, "not_records", "the array holds no record")
    if len(sent) > MOST_RECORDS:
        raise ApiError(413, "too_many_records", f"{len(sent):,} records, over {MOST_RECORDS:,}")
    if content_type in (CLOUDEVENT_TYPE, CLOUDEVENTS_BATCH_TYPE):
        return [from_cloudevent(event) for event in sent]
    return sent


def from_cloudevent(event: Any) -> Any:
    """The usage record of a CloudEvents 1.0 event (section 9): `id` → event_id, `subject` →
    org, `type` → event_type, `time` → occurred_at, the members of `data` → the other fields,
    `source` kept in `metadata`. What is not an event is passed on, for the rules to reject."""
    if not isinstance(event, dict):
        return event
    data = event.get("data")
    record = {
        name: value
        for name, value in (data.items() if isinstance(data, dict) else ())
        if name not in ("event_id", "org", "event_type", "occurred_at")
    }
    for field, attribute in (
        ("event_id", "id"),
        ("org", "subject"),
        ("event_type", "type"),
        ("occurred_at", "time"),
    ):
        if attribute in event:
            record[field] = event[attribute]
    if "source" in event:
        metadata = record.get("metadata")
        record["metadata"] = {
            **(metadata if isinstance(metadata, dict) else {}),
            "source": event["source"],
        }
    return record


def _depth(value: Any) -> int:
    """How deeply `value` nests (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = (
            item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        )
        if children is None:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children)
    return deepest


def _answer_errors_as_json(app: FastAPI) -> None:
    """Every refusal as `{"error", "detail"}` with its status, never a 5xx for a bad request."""

    def answer(status: int, error: str, detail: str, headers: dict | None = None):
        return JSONResponse({"error": error, "detail": detail}, status, headers=headers)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError):
        return answer(error.status, error.error, error.detail, error.headers)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException):
        name = re.sub(r"\W+", "_", str(error.detail)).strip("_").lower() or "error"
        return answer(error.status_code, name, str(error.detail), error.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError):
        return answer(400, "bad_request", str(error.errors()[:3]))

    @app.exception_handler(psycopg.OperationalError)
    async def database_down(request: Request, error: psycopg.OperationalError):
        return answer(503, "database_unavailable", "the database cannot be reached; retry later")
