"""How each landing source maps onto its table: staging columns, insert and follow-ups.

Every source stages the same leading columns (file_id, line_no, scope_id, key,
payload) followed by its own; `INSERT_SQL` moves new keys into the target table.
"""

from dataclasses import dataclass
from typing import Any, Callable

from odavl_pipeline.domain import records as r

COMMON_STAGE = (("file_id", "bigint"), ("line_no", "integer"), ("scope_id", "integer"),
                ("key", "text"), ("payload", "jsonb"))


@dataclass(frozen=True)
class SourceSpec:
    name: str
    table: str
    key_column: str       # event_id or request_id
    scope_column: str     # organization_id or project_id: the dedup scope
    needs_project: bool   # is `project` a required slug of the org
    validate: Callable[[dict, Any], Any]
    stage_columns: tuple[tuple[str, str], ...]
    row: Callable[[Any, int | None], tuple]   # (record, project_id) -> source columns
    insert_sql: str


def _usage_row(rec: r.UsageRecord, project_id: int | None) -> tuple:
    return (rec.event_type, rec.occurred_at, rec.quantity, project_id, rec.user)


def _error_row(rec: r.ErrorRecord, project_id: int | None) -> tuple:
    return (rec.signature, rec.detector, rec.severity, rec.message, rec.file, rec.line,
            rec.column, rec.occurred_at)


def _attestation_row(rec: r.AttestationRecord, project_id: int | None) -> tuple:
    return (rec.status, rec.files_changed, rec.lines_added, rec.lines_removed, rec.risk_score,
            list(rec.recipes), rec.created_at, rec.prev_hash, rec.hash)


def _audit_row(rec: r.AuditRecord, project_id: int | None) -> tuple:
    severities = [issue.severity for issue in rec.issues]
    return (rec.url, rec.environment, rec.device, rec.status, *rec.scores, rec.duration_ms,
            rec.occurred_at, len(rec.issues), severities.count("CRITICAL"),
            severities.count("HIGH"), severities.count("MEDIUM"), severities.count("LOW"),
            severities.count("INFO"))


USAGE = SourceSpec(
    name="usage_events", table="usage_events", key_column="event_id",
    scope_column="organization_id", needs_project=False, validate=r.validate_usage,
    stage_columns=(("event_type", "usage_event_type"), ("occurred_at", "timestamptz"),
                   ("quantity", "integer"), ("project_id", "integer"), ("user_email", "text")),
    row=_usage_row,
    insert_sql="""
        INSERT INTO usage_events (organization_id, event_id, event_type, occurred_at, quantity,
                                  project_id, user_email, payload, file_id, line_no)
        SELECT scope_id, key, event_type, occurred_at, quantity, project_id, user_email,
               payload, file_id, line_no
        FROM stage ORDER BY scope_id, key, file_id, line_no
        ON CONFLICT DO NOTHING""",
)

ERRORS = SourceSpec(
    name="error_events", table="error_events", key_column="event_id",
    scope_column="project_id", needs_project=True, validate=r.validate_error,
    stage_columns=(("signature_hash", "text"), ("detector", "text"), ("severity", "severity"),
                   ("message", "text"), ("file", "text"), ("line", "integer"),
                   ("column", "integer"), ("occurred_at", "timestamptz")),
    row=_error_row,
    insert_sql="""
        INSERT INTO error_events (project_id, event_id, signature_hash, detector, severity,
                                  message, file, line, "column", occurred_at, payload,
                                  file_id, line_no)
        SELECT scope_id, key, signature_hash, detector, severity, message, file, line, "column",
               occurred_at, payload, file_id, line_no
        FROM stage ORDER BY scope_id, key, file_id, line_no
        ON CONFLICT DO NOTHING""",
)

ATTESTATIONS = SourceSpec(
    name="fix_attestations", table="fix_attestations", key_column="request_id",
    scope_column="project_id", needs_project=True, validate=r.validate_attestation,
    stage_columns=(("status", "run_status"), ("files_changed", "integer"),
                   ("lines_added", "integer"), ("lines_removed", "integer"),
                   ("risk_score", "integer"), ("recipes", "text[]"),
                   ("created_at", "timestamptz"), ("prev_hash", "text"), ("hash", "text")),
    row=_attestation_row,
    insert_sql="""
        INSERT INTO fix_attestations (project_id, request_id, status, files_changed,
                                      lines_added, lines_removed, risk_score, recipes,
                                      created_at, prev_hash, hash, chain_status, payload,
                                      file_id, line_no)
        SELECT scope_id, key, status, files_changed, lines_added, lines_removed, risk_score,
               recipes, created_at, prev_hash, hash, 'pending', payload, file_id, line_no
        FROM stage ORDER BY scope_id, key, file_id, line_no
        ON CONFLICT DO NOTHING""",
)

AUDITS = SourceSpec(
    name="audit_results", table="audit_results", key_column="request_id",
    scope_column="project_id", needs_project=True, validate=r.validate_audit,
    stage_columns=(("url", "text"), ("environment", "audit_environment"),
                   ("device", "audit_device"), ("status", "run_status"),
                   *((score, "integer") for score in r.AUDIT_SCORES),
                   ("duration_ms", "bigint"), ("occurred_at", "timestamptz"),
                   ("total_issues", "integer"), ("critical_issues", "integer"),
                   ("high_issues", "integer"), ("medium_issues", "integer"),
                   ("low_issues", "integer"), ("info_issues", "integer")),
    row=_audit_row,
    insert_sql=f"""
        INSERT INTO audit_results (project_id, request_id, url, environment, device, status,
                                   {", ".join(r.AUDIT_SCORES)}, duration_ms, occurred_at,
                                   total_issues, critical_issues, high_issues, medium_issues,
                                   low_issues, info_issues, payload, file_id, line_no)
        SELECT scope_id, key, url, environment, device, status, {", ".join(r.AUDIT_SCORES)},
               duration_ms, occurred_at, total_issues, critical_issues, high_issues,
               medium_issues, low_issues, info_issues, payload, file_id, line_no
        FROM stage ORDER BY scope_id, key, file_id, line_no
        ON CONFLICT DO NOTHING""",
)

SPECS = {spec.name: spec for spec in (USAGE, ERRORS, ATTESTATIONS, AUDITS)}
