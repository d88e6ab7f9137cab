"""Landed records: validation of one parsed JSON object per source (CONTRACT.md section 3).

Each `validate_*` function returns a frozen record or raises `Rejected` with the
contract's reason and a detail naming the field.
"""

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Callable

from odavl_pipeline.domain.attestations import attestation_hash
from odavl_pipeline.domain.signatures import error_signature

SOURCES = ("usage_events", "error_events", "fix_attestations", "audit_results")
MAX_STRING = 10_000
MAX_FUTURE = timedelta(minutes=5)


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


USAGE_EVENT_TYPES = frozenset({"insight_analysis", "autopilot_job", "guardian_test_run", "api_call"})
USAGE_METRICS = {"insight_analysis": "analyses", "autopilot_job": "fixes",
                 "guardian_test_run": "audits", "api_call": "api_calls"}
SEVERITIES = frozenset({"CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO"})
RUN_STATUSES = frozenset({"SUCCESS", "PARTIAL", "FAILED"})
ENVIRONMENTS = frozenset({"development", "staging", "production"})
DEVICES = frozenset({"desktop", "mobile", "tablet"})
AUDIT_SUITES = frozenset({"accessibility", "performance", "security", "seo", "best_practices"})
AUDIT_SCORES = ("score_accessibility", "score_performance", "score_security", "score_seo",
                "lighthouse_performance", "lighthouse_accessibility",
                "lighthouse_best_practices", "lighthouse_seo")

_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})")
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


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


def req_int(obj: dict, field: str, low: int = 0, high: int | None = None) -> int:
    value = obj.get(field)
    if value is None:
        raise _missing(field)
    return _check_int(field, value, low, high)


def opt_int(obj: dict, field: str, low: int = 0, high: int | None = None) -> int | None:
    value = obj.get(field)
    return None if value is None else _check_int(field, value, low, high)


def _check_int(field: str, value: Any, low: int, high: int | None) -> int:
    if type(value) is not int:
        raise _violation(field, f"must be an integer, got {_json_type(value)}")
    if value < low or (high is not None and value > high):
        bound = f"between {low:,} and {high:,}" if high is not None else f"at least {low:,}"
        raise _violation(field, f"must be {bound}, got {value}")
    return value


def req_choice(obj: dict, field: str, choices: frozenset[str]) -> str:
    value = obj.get(field)
    if value is None:
        raise _missing(field)
    if value not in choices:
        raise _violation(field, f"must be one of {', '.join(sorted(choices))}, got {value!r}")
    return value


def req_timestamp(obj: dict, field: str, now: datetime) -> datetime:
    """An RFC 3339 timestamp with an offset, at most five minutes after `now`."""
    value = obj.get(field)
    if value is None:
        raise _missing(field)
    if type(value) is not str or not _RFC3339.fullmatch(value):
        raise _violation(field, f"must be an RFC 3339 timestamp with an offset, got {value!r}")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _violation(field, f"is not a valid date and time: {value!r}") from None
    if moment - now > MAX_FUTURE:
        raise Rejected(Reason.FUTURE_TIMESTAMP,
                       f"{field}: {value} is more than 5 minutes after ingestion ({now:%Y-%m-%dT%H:%M:%SZ})")
    return moment


def req_hex64(obj: dict, field: str) -> str:
    value = obj.get(field)
    if value is None:
        raise _missing(field)
    if type(value) is not str or not _HEX64.fullmatch(value):
        raise _violation(field, "must be 64 hexadecimal digits")
    return value.lower()


def _json_type(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array",
            dict: "object", type(None): "null"}.get(type(value), type(value).__name__)


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


def _usage_status(obj: dict, field: str) -> None:
    """An HTTP status code or a word: both are seen."""
    if type(obj[field]) is not int:
        opt_str(obj, field)


_USAGE_OPTIONAL_RULES: dict[str, Callable[[dict, str], Any]] = {
    "endpoint": opt_str, "request_id": opt_str, "status": _usage_status,
    "duration_ms": opt_int, "files_analyzed": opt_int, "lines_analyzed": opt_int,
    "files_modified": opt_int, "tests_run": opt_int,
    "metadata": lambda obj, field: _check_object(field, obj[field]),
}


def validate_usage(obj: dict, now: datetime) -> UsageRecord:
    for field in obj.keys() & _USAGE_OPTIONAL_RULES.keys():  # only the fields present
        _USAGE_OPTIONAL_RULES[field](obj, field)
    return UsageRecord(
        event_id=req_str(obj, "event_id", 200),
        org=req_str(obj, "org"),
        event_type=req_choice(obj, "event_type", USAGE_EVENT_TYPES),
        occurred_at=req_timestamp(obj, "occurred_at", now),
        quantity=1 if obj.get("quantity") is None else req_int(obj, "quantity", 1, 1_000_000),
        user=opt_str(obj, "user"),
        project=opt_str(obj, "project"),
    )


def validate_error(obj: dict, now: datetime) -> ErrorRecord:
    detector = req_str(obj, "detector", 64)
    file = req_str(obj, "file")
    message = req_str(obj, "message")
    opt_str(obj, "code")
    opt_str(obj, "suggestion")
    record = ErrorRecord(
        event_id=req_str(obj, "event_id", 200),
        org=req_str(obj, "org"),
        project=req_str(obj, "project"),
        detector=detector,
        severity=req_choice(obj, "severity", SEVERITIES),
        message=message,
        file=file,
        line=req_int(obj, "line"),
        column=opt_int(obj, "column"),
        occurred_at=req_timestamp(obj, "occurred_at", now),
        signature=error_signature(detector, file, message),
    )
    claimed = obj.get("signature")
    if claimed is not None:
        claimed = req_hex64(obj, "signature")
        if claimed != record.signature:
            raise Rejected(Reason.SIGNATURE_MISMATCH,
                           f"signature: {claimed} given, {record.signature} computed")
    return record


def validate_attestation(obj: dict, now: datetime) -> AttestationRecord:
    recipes = obj.get("recipes")
    if recipes is None:
        raise _missing("recipes")
    if type(recipes) is not list or any(type(r) is not str for r in recipes):
        raise _violation("recipes", "must be an array of strings")
    opt_str(obj, "error")
    opt_str(obj, "undo_snapshot")
    _reject_floats(obj)
    record = AttestationRecord(
        request_id=req_str(obj, "request_id", 200),
        org=req_str(obj, "org"),
        project=req_str(obj, "project"),
        status=req_choice(obj, "status", RUN_STATUSES),
        files_changed=req_int(obj, "files_changed"),
        lines_added=req_int(obj, "lines_added"),
        lines_removed=req_int(obj, "lines_removed"),
        risk_score=req_int(obj, "risk_score", 0, 100),
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


def validate_audit(obj: dict, now: datetime) -> AuditRecord:
    url = req_str(obj, "url")
    if not url.startswith(("http://", "https://")):
        raise _violation("url", f"must start with http:// or https://, got {url[:80]!r}")
    issues = obj.get("issues")
    if issues is None:
        issues = []
    if type(issues) is not list:
        raise _violation("issues", f"must be an array, got {_json_type(issues)}")
    return AuditRecord(
        request_id=req_str(obj, "request_id", 200),
        org=req_str(obj, "org"),
        project=req_str(obj, "project"),
        url=url,
        environment=req_choice(obj, "environment", ENVIRONMENTS),
        device=req_choice(obj, "device", DEVICES),
        scores=tuple(opt_int(obj, field, 0, 100) for field in AUDIT_SCORES),
        status=req_choice(obj, "status", RUN_STATUSES),
        duration_ms=req_int(obj, "duration_ms"),
        occurred_at=req_timestamp(obj, "occurred_at", now),
        issues=tuple(_audit_issue(issue, index) for index, issue in enumerate(issues)),
    )


def _audit_issue(issue: Any, index: int) -> AuditIssueRecord:
    field = f"issues[{index}]"
    if type(issue) is not dict:
        raise _violation(field, f"must be an object, got {_json_type(issue)}")
    severity = issue.get("severity")
    if type(severity) is not str or severity.upper() not in SEVERITIES:
        raise _violation(f"{field}.severity",
                         f"must be one of {', '.join(sorted(SEVERITIES))} (any case), got {severity!r}")
    return AuditIssueRecord(
        suite=_nested(lambda obj, name: req_choice(obj, name, AUDIT_SUITES), issue, field, "suite"),
        severity=severity.upper(),
        message=_nested(req_str, issue, field, "message"),
        recommendation=_nested(req_str, issue, field, "recommendation"),
        element=_nested(opt_str, issue, field, "element"),
        documentation=_nested(opt_str, issue, field, "documentation"),
    )


def _nested(rule: Callable, issue: dict, prefix: str, name: str):
    """Apply a field rule inside an issue, naming the field by its full path."""
    try:
        return rule(issue, name)
    except Rejected as rejected:
        raise Rejected(rejected.reason, f"{prefix}.{rejected.detail}") from None


VALIDATORS: dict[str, Callable[[dict, datetime], Any]] = {
    "usage_events": validate_usage,
    "error_events": validate_error,
    "fix_attestations": validate_attestation,
    "audit_results": validate_audit,
}
