"""Landed records: parsing and validation of one landing line per source (CONTRACT.md section 3).

`parse_record` turns a line into a JSON object PostgreSQL can store whole; each
`validate_*` function then returns a frozen record or raises `Rejected` with the
contract's reason and a detail naming the field. Validators take the source's
`Limits`: the contract's rules (`RULES`) narrowed to what the columns storing the
fields hold, which the database layer derives from the models (ingest/sources.py).
"""

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import orjson

from odavl_pipeline.domain.attestations import attestation_hash
from odavl_pipeline.domain.enums import (
    AuditSuite,
    Device,
    Environment,
    RunStatus,
    Severity,
    Source,
    UsageEventType,
    values,
)
from odavl_pipeline.domain.signatures import error_signature

SOURCES = values(Source)
MAX_STRING = 10_000
MAX_FUTURE = timedelta(minutes=5)
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
INT64 = (-(2**63), 2**63 - 1)  # no field is wider (CONTRACT.md section 3)
NON_NEGATIVE = (0, INT64[1])
PERCENT = (0, 100)


class Reason(StrEnum):
    INVALID_JSON = "invalid_json"
    SCHEMA_VIOLATION = "schema_violation"
    UNKNOWN_ORG = "unknown_org"
    UNKNOWN_PROJECT = "unknown_project"
    CONFLICTING_DUPLICATE = "conflicting_duplicate"
    HASH_MISMATCH = "hash_mismatch"
    SIGNATURE_MISMATCH = "signature_mismatch"
    CHAIN_FORK = "chain_fork"
    FUTURE_TIMESTAMP = "future_timestamp"
    RECORD_TOO_LARGE = "record_too_large"
    UNREADABLE_FILE = "unreadable_file"
    MISPLACED_FILE = "misplaced_file"
    INGEST_ERROR = "ingest_error"


RETRYABLE_REASONS = (Reason.UNKNOWN_ORG, Reason.UNKNOWN_PROJECT)


class Rejected(Exception):
    """A record that cannot be accepted, with the contract's reason."""

    def __init__(self, reason: Reason, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


# the values a field may take: the enums' (domain/enums.py), which the database's types hold too
USAGE_EVENT_TYPES = frozenset(values(UsageEventType))
USAGE_COUNTS = ("duration_ms", "files_analyzed", "lines_analyzed", "files_modified", "tests_run")
SEVERITIES = frozenset(values(Severity))
RUN_STATUSES = frozenset(values(RunStatus))
ENVIRONMENTS = frozenset(values(Environment))
DEVICES = frozenset(values(Device))
AUDIT_SUITES = frozenset(values(AuditSuite))
AUDIT_SCORES = (
    "score_accessibility",
    "score_performance",
    "score_security",
    "score_seo",
    "lighthouse_performance",
    "lighthouse_accessibility",
    "lighthouse_best_practices",
    "lighthouse_seo",
)
ISSUE_TEXTS = ("message", "recommendation", "element", "documentation")

_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
    r"([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"
)
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


# --- limits ----------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """How far a source's fields may go, by field name: integer ranges and string lengths.

    `RULES` holds the contract's; `within` narrows them to what the columns storing the
    fields can hold, so that one check per field covers both.
    """

    ints: Mapping[str, tuple[int, int]]
    lengths: Mapping[str, int]

    def within(
        self, ranges: Mapping[str, tuple[int, int]], lengths: Mapping[str, int | None]
    ) -> "Limits":
        """These limits narrowed to the integer ranges and string lengths (None: unbounded)
        of the columns that store the fields."""
        unknown = (ranges.keys() - self.ints.keys()) | (lengths.keys() - self.lengths.keys())
        if unknown:
            raise ValueError(f"stored fields without a rule: {', '.join(sorted(unknown))}")
        ints = dict(self.ints)
        for field, (low, high) in ranges.items():
            ints[field] = (max(ints[field][0], low), min(ints[field][1], high))
        sizes = dict(self.lengths)
        for field, length in lengths.items():
            if length is not None:
                sizes[field] = min(sizes[field], length)
        return Limits(ints, sizes)


RULES = {
    "usage_events": Limits(
        ints={
            "quantity": (1, 1_000_000),
            "status": INT64,
            **dict.fromkeys(USAGE_COUNTS, NON_NEGATIVE),
        },
        lengths={"event_id": 200, "user": MAX_STRING},
    ),
    "error_events": Limits(
        ints={"line": NON_NEGATIVE, "column": NON_NEGATIVE},
        lengths={"event_id": 200, "detector": 64, "message": MAX_STRING, "file": MAX_STRING},
    ),
    "fix_attestations": Limits(
        ints={
            "files_changed": NON_NEGATIVE,
            "lines_added": NON_NEGATIVE,
            "lines_removed": NON_NEGATIVE,
            "risk_score": PERCENT,
        },
        lengths={"request_id": 200, "recipes": MAX_STRING},
    ),
    "audit_results": Limits(
        ints={**dict.fromkeys(AUDIT_SCORES, PERCENT), "duration_ms": NON_NEGATIVE},
        lengths={
            "request_id": 200,
            "url": MAX_STRING,
            **{f"issues.{name}": MAX_STRING for name in ISSUE_TEXTS},
        },
    ),
}


# --- the line: JSON that PostgreSQL can store -------------------------------------

MAX_DEPTH = 512  # nesting levels, the record itself being the first
NUMERIC_DIGITS_BEFORE = 131_072  # PostgreSQL's numeric, which jsonb numbers are
NUMERIC_DIGITS_AFTER = 16_383
NUMERIC_MAX_EXPONENT = 1_073_741_823
# Longer lines can spell out a number PostgreSQL refuses that orjson reads as a non-zero float.
_LONG_LINE = 16_000
# An exponent of five digits or more, which PostgreSQL may refuse where orjson reads a float.
_LONG_EXPONENT = re.compile(r"[0-9][eE][-+]?[0-9]{5,}")


def parse_record(text: str) -> dict:
    """One landing line as a JSON object whose every key and value PostgreSQL can store: the
    line is cast to jsonb as the payload, and its strings go to text columns.

    orjson reads it. The exact reading takes over for what orjson refuses although it is
    JSON (a number beyond a double, nesting beyond 1,024 levels, a lone surrogate), and
    for what orjson may have read too kindly: a NUL escape, a float zero or a long exponent
    (what orjson makes of an exponent PostgreSQL refuses) and long lines. It checks the
    values of repeated keys too: the dict keeps the last, but PostgreSQL parses them all.
    """
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        obj = _parse_exactly(text, str(error))
    else:
        if type(obj) is dict and (
            len(text) > _LONG_LINE
            or "\\u0000" in text
            or _LONG_EXPONENT.search(text)
            or _holds_float_zero(obj.values(), 2)
        ):
            obj = _parse_exactly(text, None)
    if type(obj) is not dict:
        raise _violation("record", "must be a JSON object")
    return obj


def numeric_holds(literal: str) -> bool:
    """Whether PostgreSQL's numeric holds this JSON number as written: an exponent within
    ±1,073,741,823, then at most 131,072 digits before the decimal point and 16,383 after."""
    mantissa, _, exponent = literal.lower().partition("e")
    whole, _, fraction = mantissa.lstrip("-").partition(".")
    exponent_digits = exponent.lstrip("+-").lstrip("0")
    if len(exponent_digits) > len(str(NUMERIC_MAX_EXPONENT)):
        return False
    shift = int(exponent_digits or 0) * (-1 if exponent.startswith("-") else 1)
    if abs(shift) > NUMERIC_MAX_EXPONENT or len(fraction) - shift > NUMERIC_DIGITS_AFTER:
        return False
    significant = (whole + fraction).lstrip("0")
    leading_zeros = len(whole) + len(fraction) - len(significant)
    return not significant or len(whole) - leading_zeros + shift <= NUMERIC_DIGITS_BEFORE


@dataclass(frozen=True, slots=True)
class _Unstorable:
    """A number PostgreSQL cannot store, as written, until the field holding it is named."""

    literal: str


def _parse_exactly(text: str, orjson_error: str | None) -> Any:
    """The line read by Python's json with every number seen as written (typed as orjson
    types them), then every key and value checked."""
    try:
        obj = json.loads(
            text,
            parse_int=_read_int,
            parse_float=_read_number,
            parse_constant=_not_json,
            object_pairs_hook=_object,
        )
    except RecursionError:
        raise _too_deep() from None
    except ValueError as error:
        raise Rejected(Reason.INVALID_JSON, orjson_error or str(error)) from None
    _check_stored(obj, "", 1)
    return obj


def _object(pairs: list[tuple[str, Any]]) -> dict:
    """A JSON object as jsonb keeps it (the last value of a repeated key); the values it drops
    are checked here, as PostgreSQL still parses them."""
    obj = dict(pairs)
    if len(obj) < len(pairs):
        for key, value in pairs:
            _check_text("record", key, "a key ")  # before the key names anything in a detail
            _check_stored(value, key, 1)
    return obj


def _read_int(literal: str) -> Any:
    """An integer as orjson reads it: exact within [-2**63, 2**64), else a float."""
    if len(literal) <= 20:
        value = int(literal)
        if -(2**63) <= value < 2**64:
            return value
    return _read_number(literal)


def _read_number(literal: str) -> Any:
    return float(literal) if numeric_holds(literal) else _Unstorable(literal)


def _not_json(constant: str) -> None:
    raise ValueError(f"{constant} is not JSON")


def _check_stored(value: Any, path: str, depth: int) -> None:
    """Every string and key is text PostgreSQL takes, every number fits its numeric, the
    nesting stays within MAX_DEPTH levels."""
    kind = type(value)
    if kind is str:
        _check_text(path or "record", value)
    elif kind is _Unstorable:
        raise _violation(
            path or "record",
            f"the number {_shortened(value.literal)} is beyond PostgreSQL's numeric "
            f"(at most {NUMERIC_DIGITS_BEFORE:,} digits before the decimal point "
            f"and {NUMERIC_DIGITS_AFTER:,} after)",
        )
    elif kind is dict or kind is list:
        if depth > MAX_DEPTH:
            raise _too_deep()
        if kind is list:
            for index, item in enumerate(value):
                _check_stored(item, f"{path or 'record'}[{index}]", depth + 1)
            return
        for key, item in value.items():
            _check_text(path or "record", key, "a key ")
            _check_stored(item, f"{path}.{key}" if path else key, depth + 1)


def _check_text(field: str, text: str, what: str = "") -> None:
    """PostgreSQL's text and jsonb hold no NUL, and no lone surrogate (which is not Unicode)."""
    if "\x00" in text:
        raise _violation(
            field, f"{what}contains the NUL character \\u0000, which PostgreSQL cannot store"
        )
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError as error:
            raise Rejected(
                Reason.INVALID_JSON,
                f"{field}: {what}contains the lone surrogate "
                f"\\u{ord(text[error.start]):04x}, which is not Unicode",
            ) from None


def _holds_float_zero(values: Iterable, depth: int) -> bool:
    """Whether a float zero is among these values, at any depth; raises past MAX_DEPTH."""
    for value in values:
        kind = type(value)
        if kind is str or kind is int:  # the most common, first
            continue
        if kind is dict or kind is list:
            if depth > MAX_DEPTH:
                raise _too_deep()
            if _holds_float_zero(value.values() if kind is dict else value, depth + 1):
                return True
        elif kind is float and not value:
            return True
    return False


def _too_deep() -> Rejected:
    return _violation("record", f"nested deeper than {MAX_DEPTH} levels")


def _shortened(literal: str) -> str:
    return literal if len(literal) <= 40 else f"{literal[:20]}… ({len(literal):,} characters)"


# --- field rules ---------------------------------------------------------------


def _missing(field: str) -> Rejected:
    return Rejected(Reason.SCHEMA_VIOLATION, f"{field}: required field is missing")


def _violation(field: str, rule: str) -> Rejected:
    return Rejected(Reason.SCHEMA_VIOLATION, f"{field}: {rule}")


def req_str(obj: dict, field: str, max_len: int = MAX_STRING) -> str:
    value = obj.get(field)
    if value is None:
        raise _missing(field)
    return _check_str(field, value, max_len)


def opt_str(obj: dict, field: str, max_len: int = MAX_STRING) -> str | None:
    value = obj.get(field)
    return None if value is None else _check_str(field, value, max_len)


def _check_str(field: str, value: Any, max_len: int) -> str:
    if type(value) is not str:
        raise _violation(field, f"must be a string, got {_json_type(value)}")
    if not value:
        raise _violation(field, "must not be empty")
    if len(value) > max_len:
        raise _violation(field, f"must be at most {max_len:,} characters, got {len(value):,}")
    return value


def req_int(obj: dict, field: str, bounds: tuple[int, int]) -> int:
    value = obj.get(field)
    if value is None:
        raise _missing(field)
    return _check_int(field, value, bounds)


def opt_int(obj: dict, field: str, bounds: tuple[int, int]) -> int | None:
    value = obj.get(field)
    return None if value is None else _check_int(field, value, bounds)


def _check_int(field: str, value: Any, bounds: tuple[int, int]) -> int:
    if type(value) is not int:
        raise _violation(field, f"must be an integer, got {_json_type(value)}")
    low, high = bounds
    if not low <= value <= high:
        raise _violation(field, f"must be between {low:,} and {high:,}, got {value}")
    return value


def req_choice(obj: dict, field: str, choices: frozenset[str]) -> str:
    value = obj.get(field)
    if value is None:
        raise _missing(field)
    if type(value) is not str or value not in choices:
        raise _violation(field, f"must be one of {', '.join(sorted(choices))}, got {value!r}")
    return value


def req_timestamp(obj: dict, field: str, now: datetime) -> datetime:
    """An RFC 3339 timestamp with an offset, from 1970-01-01T00:00:00Z to five minutes after
    `now`. Compared, never converted: years 1 and 9999 in UTC would leave datetime's range."""
    value = obj.get(field)
    if value is None:
        raise _missing(field)
    if type(value) is not str or not _RFC3339.fullmatch(value):
        raise _violation(field, f"must be an RFC 3339 timestamp with an offset, got {value!r}")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _violation(field, f"is not a valid date and time: {value!r}") from None
    if moment < EARLIEST:
        raise _violation(field, f"must be at or after 1970-01-01T00:00:00Z, got {value}")
    if moment - now > MAX_FUTURE:
        raise Rejected(
            Reason.FUTURE_TIMESTAMP,
            f"{field}: {value} is more than 5 minutes after ingestion ({now:%Y-%m-%dT%H:%M:%SZ})",
        )
    return moment


def req_hex64(obj: dict, field: str) -> str:
    value = obj.get(field)
    if value is None:
        raise _missing(field)
    if type(value) is not str or not _HEX64.fullmatch(value):
        raise _violation(field, "must be 64 hexadecimal digits")
    return value.lower()


def _json_type(value: Any) -> str:
    return {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "array",
        dict: "object",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def _check_object(field: str, value: Any) -> None:
    if value is not None and type(value) is not dict:
        raise _violation(field, f"must be an object, got {_json_type(value)}")


# --- records -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UsageRecord:
    event_id: str
    org: str
    event_type: str
    occurred_at: datetime
    quantity: int
    user: str | None
    project: str | None


@dataclass(frozen=True, slots=True)
class ErrorRecord:
    event_id: str
    org: str
    project: str
    detector: str
    severity: str
    message: str
    file: str
    line: int
    column: int | None
    occurred_at: datetime
    signature: str


@dataclass(frozen=True, slots=True)
class AttestationRecord:
    request_id: str
    org: str
    project: str
    status: str
    files_changed: int
    lines_added: int
    lines_removed: int
    risk_score: int
    recipes: tuple[str, ...]
    created_at: datetime
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class AuditIssueRecord:
    suite: str
    severity: str
    message: str
    recommendation: str
    element: str | None
    documentation: str | None


@dataclass(frozen=True, slots=True)
class AuditRecord:
    request_id: str
    org: str
    project: str
    url: str
    environment: str
    device: str
    scores: tuple[int | None, ...]
    status: str
    duration_ms: int
    occurred_at: datetime
    issues: tuple[AuditIssueRecord, ...]


def _usage_text(obj: dict, field: str, limits: Limits) -> None:
    opt_str(obj, field)


def _usage_count(obj: dict, field: str, limits: Limits) -> None:
    opt_int(obj, field, limits.ints[field])


def _usage_status(obj: dict, field: str, limits: Limits) -> None:
    """An HTTP status code or a word: both are seen."""
    if type(obj[field]) is int:
        _usage_count(obj, field, limits)
    else:
        _usage_text(obj, field, limits)


def _usage_metadata(obj: dict, field: str, limits: Limits) -> None:
    _check_object(field, obj[field])


_USAGE_OPTIONAL_RULES: dict[str, Callable[[dict, str, Limits], None]] = {
    "endpoint": _usage_text,
    "request_id": _usage_text,
    "status": _usage_status,
    **dict.fromkeys(USAGE_COUNTS, _usage_count),
    "metadata": _usage_metadata,
}


def validate_usage(obj: dict, now: datetime, limits: Limits) -> UsageRecord:
    for field in obj.keys() & _USAGE_OPTIONAL_RULES.keys():  # only the fields present
        _USAGE_OPTIONAL_RULES[field](obj, field, limits)
    lengths = limits.lengths
    return UsageRecord(
        event_id=req_str(obj, "event_id", lengths["event_id"]),
        org=req_str(obj, "org"),
        event_type=req_choice(obj, "event_type", USAGE_EVENT_TYPES),
        occurred_at=req_timestamp(obj, "occurred_at", now),
        quantity=1
        if obj.get("quantity") is None
        else req_int(obj, "quantity", limits.ints["quantity"]),
        user=opt_str(obj, "user", lengths["user"]),
        project=opt_str(obj, "project"),
    )


def validate_error(obj: dict, now: datetime, limits: Limits) -> ErrorRecord:
    ints, lengths = limits.ints, limits.lengths
    detector = req_str(obj, "detector", lengths["detector"])
    file = req_str(obj, "file", lengths["file"])
    message = req_str(obj, "message", lengths["message"])
    opt_str(obj, "code")
    opt_str(obj, "suggestion")
    record = ErrorRecord(
        event_id=req_str(obj, "event_id", lengths["event_id"]),
        org=req_str(obj, "org"),
        project=req_str(obj, "project"),
        detector=detector,
        severity=req_choice(obj, "severity", SEVERITIES),
        message=message,
        file=file,
        line=req_int(obj, "line", ints["line"]),
        column=opt_int(obj, "column", ints["column"]),
        occurred_at=req_timestamp(obj, "occurred_at", now),
        signature=error_signature(detector, file, message),
    )
    claimed = obj.get("signature")
    if claimed is not None:
        claimed = req_hex64(obj, "signature")
        if claimed != record.signature:
            raise Rejected(
                Reason.SIGNATURE_MISMATCH,
                f"signature: {claimed} given, {record.signature} computed",
            )
    return record


def validate_attestation(obj: dict, now: datetime, limits: Limits) -> AttestationRecord:
    ints, lengths = limits.ints, limits.lengths
    recipes = obj.get("recipes")
    if recipes is None:
        raise _missing("recipes")
    longest = lengths["recipes"]
    if type(recipes) is not list or any(type(r) is not str or len(r) > longest for r in recipes):
        raise _violation(
            "recipes", f"must be an array of strings of at most {longest:,} characters"
        )
    opt_str(obj, "error")
    opt_str(obj, "undo_snapshot")
    _reject_floats(obj)
    record = AttestationRecord(
        request_id=req_str(obj, "request_id", lengths["request_id"]),
        org=req_str(obj, "org"),
        project=req_str(obj, "project"),
        status=req_choice(obj, "status", RUN_STATUSES),
        files_changed=req_int(obj, "files_changed", ints["files_changed"]),
        lines_added=req_int(obj, "lines_added", ints["lines_added"]),
        lines_removed=req_int(obj, "lines_removed", ints["lines_removed"]),
        risk_score=req_int(obj, "risk_score", ints["risk_score"]),
        recipes=tuple(recipes),
        created_at=req_timestamp(obj, "created_at", now),
        prev_hash=req_hex64(obj, "prev_hash"),
        hash=req_hex64(obj, "hash"),
    )
    computed = attestation_hash(obj)
    if computed != record.hash:
        raise Rejected(Reason.HASH_MISMATCH, f"hash: {record.hash} given, {computed} computed")
    return record


def _reject_floats(value: Any, path: str = "record") -> None:
    """Attestations hold no floats: their canonical JSON would not be well defined."""
    if type(value) is float:
        raise _violation(path, "floating-point numbers are not allowed in attestations")
    if type(value) is dict:
        for key, item in value.items():
            _reject_floats(item, key if path == "record" else f"{path}.{key}")
    elif type(value) is list:
        for index, item in enumerate(value):
            _reject_floats(item, f"{path}[{index}]")


def validate_audit(obj: dict, now: datetime, limits: Limits) -> AuditRecord:
    ints, lengths = limits.ints, limits.lengths
    url = req_str(obj, "url", lengths["url"])
    if not url.startswith(("http://", "https://")):
        raise _violation("url", f"must start with http:// or https://, got {url[:80]!r}")
    issues = obj.get("issues")
    if issues is None:
        issues = []
    if type(issues) is not list:
        raise _violation("issues", f"must be an array, got {_json_type(issues)}")
    return AuditRecord(
        request_id=req_str(obj, "request_id", lengths["request_id"]),
        org=req_str(obj, "org"),
        project=req_str(obj, "project"),
        url=url,
        environment=req_choice(obj, "environment", ENVIRONMENTS),
        device=req_choice(obj, "device", DEVICES),
        scores=tuple(opt_int(obj, field, ints[field]) for field in AUDIT_SCORES),
        status=req_choice(obj, "status", RUN_STATUSES),
        duration_ms=req_int(obj, "duration_ms", ints["duration_ms"]),
        occurred_at=req_timestamp(obj, "occurred_at", now),
        issues=tuple(_audit_issue(issue, index, lengths) for index, issue in enumerate(issues)),
    )


def _audit_issue(issue: Any, index: int, lengths: Mapping[str, int]) -> AuditIssueRecord:
    field = f"issues[{index}]"
    if type(issue) is not dict:
        raise _violation(field, f"must be an object, got {_json_type(issue)}")
    severity = issue.get("severity")
    # any ASCII case: PostgreSQL's upper() may not map other letters as Python's does
    if type(severity) is not str or not severity.isascii() or severity.upper() not in SEVERITIES:
        raise _violation(
            f"{field}.severity",
            f"must be one of {', '.join(sorted(SEVERITIES))} (any case), got {severity!r}",
        )
    return AuditIssueRecord(
        suite=_nested(req_choice, issue, field, "suite", AUDIT_SUITES),
        severity=severity.upper(),
        message=_nested(req_str, issue, field, "message", lengths["issues.message"]),
        recommendation=_nested(
            req_str, issue, field, "recommendation", lengths["issues.recommendation"]
        ),
        element=_nested(opt_str, issue, field, "element", lengths["issues.element"]),
        documentation=_nested(
            opt_str, issue, field, "documentation", lengths["issues.documentation"]
        ),
    )


def _nested(rule: Callable, issue: dict, prefix: str, name: str, bound: Any):
    """Apply a field rule (with its choices or length) inside an issue, naming the field by
    its full path."""
    try:
        return rule(issue, name, bound)
    except Rejected as rejected:
        raise Rejected(rejected.reason, f"{prefix}.{rejected.detail}") from None
