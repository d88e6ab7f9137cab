"""The HTTP API (CONTRACT.md section 9): records in, for the four sources, and quota as it
stands, with the console's API keys. FastAPI writes the OpenAPI description (`/openapi.json`)
from this module.

Every answer is JSON. A bad request gets a 4xx with `{"error", "detail"}`, never a 5xx; a
database that cannot be reached is 503. A key is looked up on every request (a revoked key
stops at once on every process) and counted against its rate in PostgreSQL, which every API
process shares (api.keys.admit). The work runs in the threadpool, on connections kept between
requests (db.connections).
"""

import json
import math
import re
from collections.abc import Mapping
from typing import Any, Literal

import orjson
import psycopg
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from odavl_pipeline import clock
from odavl_pipeline.api import keys, records
from odavl_pipeline.billing.catalogue import QUOTA_METRICS, QuotaMetric
from odavl_pipeline.billing.live_quota import PublishedQuota, live_quota
from odavl_pipeline.db.connections import Connections
from odavl_pipeline.settings import Settings

LARGEST_BODY = 1 << 20  # bytes
MOST_RECORDS = 1_000
LARGEST_QUANTITY = 2**63 - 1  # what a quota check may ask for: a BIGINT's range
DEEPEST_JSON = 64  # nesting levels of a body
JSON_TYPE = "application/json"
REQUEST_HEADER = "ODAVL-Request-Id"
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


class MetricQuota(BaseModel):
    used: int
    quota: int
    remaining: int
    status: Literal["ok", "warning", "exceeded"]
    projected: int
    projected_exhaustion: str | None


class QuotaAnswer(BaseModel):
    org: str
    tier: str
    period_start: str
    period_end: str
    as_of: str
    metrics: dict[QuotaMetric, MetricQuota]


class CheckAnswer(BaseModel):
    allowed: bool
    used: int
    quota: int
    remaining: int


class HealthAnswer(BaseModel):
    status: Literal["ok"]


class ErrorAnswer(BaseModel):
    error: str
    detail: str


ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorAnswer, "description": description}
    for status, description in (
        (400, "The body is not JSON, or not records."),
        (401, "No key, or a key that is unknown, expired or revoked."),
        (403, "The key lacks the endpoint's scope."),
        (413, "More than 1 MiB, or more than 1,000 records."),
        (415, "Another content type."),
        (429, "The key is over ODAVL_API_RATE_PER_SECOND; `Retry-After` says when to retry."),
        (503, "The database cannot be reached."),
    )
}
QUOTA_ERRORS: dict[int | str, dict[str, Any]] = {
    **{status: ERRORS[status] for status in (400, 401, 403, 429, 503)},
    404: {"model": ErrorAnswer, "description": "No organization of that slug the key may read."},
}

# the organization of a slug, if the key's user is a member of it (any role may read quota)
READABLE_ORG = """
    SELECT o.id FROM organizations AS o
    JOIN organization_members AS m ON m.organization_id = o.id
    WHERE o.slug = %s AND m.user_id = %s
"""


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
        """The key's holder, or 401 / 429 / 403."""
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise ApiError(401, "unauthorized", "send `Authorization: Bearer <key>`", BEARER)
        with connections.connection() as conn:
            admission = keys.admit(conn, key.strip(), settings.api_rate_per_second)
        if admission.holder is None:
            raise ApiError(401, "unauthorized", "the key is unknown, expired or revoked", BEARER)
        if admission.wait_seconds is not None:
            wait = max(1, math.ceil(admission.wait_seconds))
            raise ApiError(
                429,
                "rate_limited",
                f"this key is over {settings.api_rate_per_second:,} requests per second; "
                f"retry in {wait} s",
                {"Retry-After": str(wait)},
            )
        if scope not in admission.holder.scopes:
            raise ApiError(403, "forbidden", f"the key lacks the scope {scope!r}")
        return admission.holder

    def take(request: Request, source: str, scope: str, body: bytes) -> tuple[dict, str]:
        holder = holder_of(request, scope)
        content_type = _content_type(request, source)
        sent, texts = _records(body, content_type)
        with connections.connection() as conn:
            outcome = records.take_records(conn, holder, source, sent, body, content_type, texts)
        answer = {**outcome.counts(), "results": [result.__dict__ for result in outcome.results]}
        return answer, outcome.request_id

    for path, (source, scope) in ENDPOINTS.items():
        _route_records(app, path, source, scope, take)

    published = PublishedQuota(settings.marts_path)

    def quota_of(holder: keys.KeyHolder, org: str):
        with connections.connection() as conn:
            found = conn.execute(READABLE_ORG, (org, holder.user_id)).fetchone()
            if found is None:
                raise ApiError(404, "not_found", f"no organization {org!r} for this key")
            return live_quota(conn, found[0], org, published.period_of(org), clock.now())

    def quota_now(request: Request, org: str) -> dict:
        return quota_of(holder_of(request, "quota:read"), org).as_json()

    def check(request: Request, org: str, body: bytes) -> dict:
        holder = holder_of(request, "quota:read")
        metric, quantity = quota_check(request.headers.get("content-type", ""), body)
        quota = quota_of(holder, org)
        used, limit = quota.used[metric], quota.quota[metric]
        return {
            "allowed": used + quantity <= limit,
            "used": used,
            "quota": limit,
            "remaining": quota.remaining(metric),
        }

    @app.get(
        "/v1/organizations/{org}/quota",
        summary="Quota as it stands (scope quota:read)",
        description="The current billing period's usage against its quota per metric, by the "
        "rules of `quota_status` (CONTRACT.md section 6), with `used` counting every usage "
        "event accepted before the request, by the API or from files.",
        response_model=QuotaAnswer,
        responses=QUOTA_ERRORS,
    )
    async def get_quota(request: Request, org: str) -> dict:
        return await run_in_threadpool(quota_now, request, org)

    @app.post(
        "/v1/organizations/{org}/quota/check",
        summary="May the organization use this much more? (scope quota:read)",
        description="`allowed` when `used + quantity <= quota`, `used` as `GET …/quota` counts "
        "it. Records nothing.",
        response_model=CheckAnswer,
        responses={**QUOTA_ERRORS, 415: ERRORS[415]},
        openapi_extra={"requestBody": {"required": True, "content": {JSON_TYPE: CHECK_BODY}}},
    )
    async def check_quota(request: Request, org: str) -> dict:
        return await run_in_threadpool(check, request, org, await request.body())

    @app.get(
        "/healthz", summary="Whether the API can reach its database", response_model=HealthAnswer
    )
    def health() -> dict:
        with connections.connection() as conn:
            conn.execute("SELECT 1")
        return {"status": "ok"}

    return app


CHECK_BODY = {
    "schema": {
        "type": "object",
        "required": ["metric", "quantity"],
        "properties": {
            "metric": {"enum": list(QUOTA_METRICS)},
            "quantity": {"type": "integer", "minimum": 0, "maximum": LARGEST_QUANTITY},
        },
    }
}


def quota_check(content_type: str, body: bytes) -> tuple[str, int]:
    """The metric and quantity of a quota check's body; 415 or 400 otherwise."""
    media = content_type.split(";")[0].strip().lower()
    if media != JSON_TYPE:
        raise ApiError(415, "unsupported_media_type", f"send {JSON_TYPE}, not {media or 'none'}")
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise ApiError(400, "invalid_json", f"the body is not JSON: {error}") from None
    if not isinstance(value, dict):
        raise ApiError(400, "bad_request", 'send {"metric": …, "quantity": …}')
    metric, quantity = value.get("metric"), value.get("quantity")
    if metric not in QUOTA_METRICS:
        raise ApiError(400, "bad_request", f"metric must be one of {', '.join(QUOTA_METRICS)}")
    if type(quantity) is not int or not 0 <= quantity <= LARGEST_QUANTITY:
        raise ApiError(
            400, "bad_request", f"quantity must be a whole number from 0 to {LARGEST_QUANTITY}"
        )
    return metric, quantity


BEARER = {"WWW-Authenticate": "Bearer"}


def _route_records(app: FastAPI, path: str, source: str, scope: str, take) -> None:
    async def send_records(request: Request, response: Response) -> dict:
        body = await request.body()
        if len(body) > LARGEST_BODY:
            raise ApiError(413, "too_large", f"the body is over {LARGEST_BODY:,} bytes")
        answer, request_id = await run_in_threadpool(take, request, source, scope, body)
        response.headers[REQUEST_HEADER] = request_id  # as the drill-down names the request
        return answer

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


def _records(body: bytes, content_type: str) -> tuple[list[Any], list[bytes] | None]:
    """The records of a body (one value, or the members of an array), each with its text as
    sent; CloudEvents mapped to usage records (their texts written anew: None). 400 for a body
    that is not JSON, 413 past MOST_RECORDS."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise ApiError(400, "invalid_json", f"the body is not JSON: {error}") from None
    if _depth(value) > DEEPEST_JSON:
        raise ApiError(400, "too_deep", f"the body nests deeper than {DEEPEST_JSON} levels")
    batch = content_type == CLOUDEVENTS_BATCH_TYPE
    if batch != isinstance(value, list) and content_type != JSON_TYPE:
        raise ApiError(
            400,
            "not_records",
            f"a CloudEvents batch ({CLOUDEVENTS_BATCH_TYPE}) is a JSON array of events, a "
            f"structured CloudEvent ({CLOUDEVENT_TYPE}) one JSON object",
        )
    if isinstance(value, list) and not value:
        raise ApiError(400, "not_records", "the array holds no record")
    if isinstance(value, list) and len(value) > MOST_RECORDS:
        raise ApiError(413, "too_many_records", f"{len(value):,} records, over {MOST_RECORDS:,}")
    text = body.decode()
    sent = _members(text) if isinstance(value, list) else [(json.loads(text), text.strip())]
    if content_type in (CLOUDEVENT_TYPE, CLOUDEVENTS_BATCH_TYPE):
        return [from_cloudevent(event) for event, _ in sent], None
    # a line of the ledger file: JSON whitespace only, as no string holds a raw line break
    return [member for member, _ in sent], [
        member_text.replace("\n", " ").replace("\r", " ").encode() for _, member_text in sent
    ]


JSON_SPACE = " \t\n\r"


def _members(text: str) -> list[tuple[Any, str]]:
    """Each member of the JSON array `text` (valid JSON) with its own text, read exactly (an
    integer of any size stays one)."""
    decoder, members = json.JSONDecoder(), []
    index = _after_space(text, text.index("[") + 1)
    while text[index] != "]":
        member, end = decoder.raw_decode(text, index)
        members.append((member, text[index:end]))
        index = _after_space(text, end)
        if text[index] == ",":
            index = _after_space(text, index + 1)
    return members


def _after_space(text: str, index: int) -> int:
    while text[index] in JSON_SPACE:
        index += 1
    return index


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
    metadata = record.get("metadata", {})
    if "source" in event and isinstance(metadata, dict):  # else the rules reject the metadata
        record["metadata"] = {**metadata, "source": event["source"]}
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

    def answer(status: int, error: str, detail: str, headers: Mapping[str, str] | None = None):
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
