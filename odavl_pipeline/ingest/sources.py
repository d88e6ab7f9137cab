"""How each landing source maps onto its table: staging columns and one insert statement.

Every source stages the same leading columns (file_id, line_no, scope_id, key, and
the raw line as payload) followed by its own. Each `insert_sql` moves the staged rows whose key is
new into the table, does the source's follow-up work in the same statement (audit issues; the
errors it added are noted, and their signatures counted once per file by `after_file`), and
returns the (file_id, line_no) of the rows it inserted.
The staged keys are distinct: the writer keeps the first line of a key per batch. Rows are
inserted in key order, so that two files written at once take their keys' locks in one order.

Each source validates with its limits (`source_limits`): the contract's rules narrowed to the
columns of the models that store its fields. They are derived in the writer's process and sent
to the parser process with each file, so that the parser never loads SQLAlchemy and the models
(a third of a second at every start).
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from odavl_pipeline.domain import records as r

COMMON_STAGE = (
    ("file_id", "bigint"),
    ("line_no", "integer"),
    ("scope_id", "integer"),
    ("key", "text"),
    ("payload", "text"),
)


@dataclass(frozen=True)
class SourceSpec:
    name: str
    table: str
    key_column: str  # event_id or request_id
    scope_column: str  # organization_id or project_id: the dedup scope
    needs_project: bool  # is `project` a required slug of the org
    validator: Callable[[dict, datetime, r.Limits], Any]  # (parsed line, now, limits) -> record
    stage_columns: tuple[tuple[str, str], ...]
    row: Callable[[Any, int | None], tuple]  # (record, project_id) -> source columns
    insert_sql: str  # returns (file_id, line_no) of the inserted rows
    # statements run once per file (or quarantine retry): before its first batch, after its last
    before_file: tuple[str, ...] = ()
    after_file: tuple[str, ...] = ()
    # SQL: true when the staged line `s` equals another version of its key's record (a
    # correction's, CONTRACT.md section 8): then it is a duplicate too
    other_versions: str = "false"

    def validate(self, obj: dict, now: datetime, limits: r.Limits | None = None):
        """The record of a parsed line, or `Rejected`; limits default to the source's own."""
        return self.validator(obj, now, limits or source_limits(self.name))


@cache
def source_limits(source: str) -> r.Limits:
    """The contract's limits of a source narrowed to the columns of the models storing it."""
    from odavl_pipeline.db import models as m  # here, not at import: see the module's docstring
    from odavl_pipeline.db.limits import column_limits

    def same(*names: str) -> dict[str, str]:  # fields stored in columns of the same name
        return {name: name for name in names}

    stored: dict[str, list[tuple[type[m.Base], dict[str, str]]]] = {
        "usage_events": [(m.UsageEvent, {**same("event_id", "quantity"), "user": "user_email"})],
        "error_events": [
            (m.ErrorEvent, same("event_id", "detector", "message", "file", "line", "column")),
            (m.ErrorSignature, same("detector", "message", "file", "line", "column")),
        ],
        "fix_attestations": [
            (
                m.FixAttestation,
                same(
                    "request_id",
                    "files_changed",
                    "lines_added",
                    "lines_removed",
                    "risk_score",
                    "recipes",
                ),
            )
        ],
        "audit_results": [
            (m.AuditResult, same("request_id", "url", *r.AUDIT_SCORES, "duration_ms")),
            (m.AuditIssue, {f"issues.{name}": name for name in r.ISSUE_TEXTS}),
        ],
    }
    limits = r.RULES[source]
    for model, columns in stored[source]:
        limits = limits.within(*column_limits(model, columns))
    return limits


def _usage_row(rec: r.UsageRecord, project_id: int | None) -> tuple:
    return (rec.event_type, rec.occurred_at, rec.quantity, project_id, rec.user)


def _error_row(rec: r.ErrorRecord, project_id: int | None) -> tuple:
    return (
        rec.signature,
        rec.detector,
        rec.severity,
        rec.message,
        rec.file,
        rec.line,
        rec.column,
        rec.occurred_at,
    )


def _attestation_row(rec: r.AttestationRecord, project_id: int | None) -> tuple:
    return (
        rec.status,
        rec.files_changed,
        rec.lines_added,
        rec.lines_removed,
        rec.risk_score,
        list(rec.recipes),
        rec.created_at,
        rec.prev_hash,
        rec.hash,
    )


def _audit_row(rec: r.AuditRecord, project_id: int | None) -> tuple:
    severities = [issue.severity for issue in rec.issues]
    return (
        rec.url,
        rec.environment,
        rec.device,
        rec.status,
        *rec.scores,
        rec.duration_ms,
        rec.occurred_at,
        len(rec.issues),
        severities.count("CRITICAL"),
        severities.count("HIGH"),
        severities.count("MEDIUM"),
        severities.count("LOW"),
        severities.count("INFO"),
    )


USAGE = SourceSpec(
    name="usage_events",
    table="usage_events",
    key_column="event_id",
    scope_column="organization_id",
    needs_project=False,
    validator=r.validate_usage,
    stage_columns=(
        ("event_type", "usage_event_type"),
        ("occurred_at", "timestamptz"),
        ("quantity", "integer"),
        ("project_id", "integer"),
        ("user_email", "text"),
    ),
    row=_usage_row,
    insert_sql="""
        INSERT INTO usage_events (organization_id, event_id, event_type, occurred_at, quantity,
                                  project_id, user_email, payload, file_id, line_no, ingested_at)
        SELECT scope_id, key, event_type, occurred_at, quantity, project_id, user_email,
               payload::jsonb, file_id, line_no, (SELECT odavl_now())  -- read once, not per row
        FROM stage
        WHERE NOT EXISTS (  -- a key a correction added is taken (CONTRACT.md section 8)
            SELECT 1 FROM usage_corrections AS v
            WHERE v.organization_id = stage.scope_id AND v.event_id = stage.key)
        ORDER BY scope_id, key
        ON CONFLICT DO NOTHING
        RETURNING file_id, line_no""",
    other_versions="""EXISTS (
        SELECT 1 FROM usage_corrections AS v
        WHERE v.organization_id = s.scope_id AND v.event_id = s.key
          AND v.sign = 1 AND v.payload = s.payload::jsonb)""",
)

# The error signatures of the events a file added, counted once per file, in one statement that
# takes the signatures' rows in key order: two files of one project written at once then wait
# for each other at most once, and never in a cycle.
COUNT_SIGNATURES = """
    INSERT INTO error_signatures AS sig (project_id, hash, detector, severity, message, file, line,
                                         "column", count, first_seen, last_seen, status)
    SELECT e.project_id, e.signature_hash, min(e.detector), max(e.severity),
           (array_agg(e.message ORDER BY e.occurred_at DESC, e.event_id))[1], min(e.file),
           (array_agg(e.line ORDER BY e.occurred_at DESC, e.event_id))[1],
           (array_agg(e."column" ORDER BY e.occurred_at DESC, e.event_id))[1],
           count(*), min(e.occurred_at), max(e.occurred_at), 'open'
    FROM new_error_events AS n
    JOIN error_events AS e ON e.project_id = n.project_id AND e.event_id = n.event_id
    GROUP BY e.project_id, e.signature_hash
    ORDER BY e.project_id, e.signature_hash
    ON CONFLICT (project_id, hash) DO UPDATE SET
        count = sig.count + excluded.count,
        severity = GREATEST(sig.severity, excluded.severity),
        message = CASE WHEN excluded.last_seen >= sig.last_seen
                       THEN excluded.message ELSE sig.message END,
        line = CASE WHEN excluded.last_seen >= sig.last_seen THEN excluded.line ELSE sig.line END,
        "column" = CASE WHEN excluded.last_seen >= sig.last_seen
                        THEN excluded."column" ELSE sig."column" END,
        first_seen = LEAST(sig.first_seen, excluded.first_seen),
        last_seen = GREATEST(sig.last_seen, excluded.last_seen),
        -- a resolved signature seen again after its resolution has regressed
        status = CASE WHEN sig.status = 'resolved'
                       AND excluded.last_seen > COALESCE(sig.resolved_at, '-infinity')
                      THEN 'regressed'::signature_status ELSE sig.status END
"""

ERRORS = SourceSpec(
    name="error_events",
    table="error_events",
    key_column="event_id",
    scope_column="project_id",
    needs_project=True,
    validator=r.validate_error,
    stage_columns=(
        ("signature_hash", "text"),
        ("detector", "text"),
        ("severity", "severity"),
        ("message", "text"),
        ("file", "text"),
        ("line", "integer"),
        ("column", "integer"),
        ("occurred_at", "timestamptz"),
    ),
    row=_error_row,
    before_file=(
        "DROP TABLE IF EXISTS new_error_events",
        "CREATE TEMPORARY TABLE new_error_events (project_id integer, event_id text) "
        "ON COMMIT DROP",
    ),
    after_file=(COUNT_SIGNATURES, "TRUNCATE new_error_events"),
    insert_sql="""
        WITH inserted AS (
            INSERT INTO error_events (project_id, event_id, signature_hash, detector, severity,
                                      message, file, line, "column", occurred_at, payload,
                                      file_id, line_no)
            SELECT scope_id, key, signature_hash, detector, severity, message, file, line,
                   "column", occurred_at, payload::jsonb, file_id, line_no
            FROM stage
            ORDER BY scope_id, key
            ON CONFLICT DO NOTHING
            RETURNING project_id, event_id, file_id, line_no
        ), noted AS (
            INSERT INTO new_error_events (project_id, event_id)
            SELECT project_id, event_id FROM inserted
        )
        SELECT file_id, line_no FROM inserted""",
)

ATTESTATIONS = SourceSpec(
    name="fix_attestations",
    table="fix_attestations",
    key_column="request_id",
    scope_column="project_id",
    needs_project=True,
    validator=r.validate_attestation,
    stage_columns=(
        ("status", "run_status"),
        ("files_changed", "integer"),
        ("lines_added", "integer"),
        ("lines_removed", "integer"),
        ("risk_score", "integer"),
        ("recipes", "text[]"),
        ("created_at", "timestamptz"),
        ("prev_hash", "text"),
        ("hash", "text"),
    ),
    row=_attestation_row,
    insert_sql="""
        INSERT INTO fix_attestations (project_id, request_id, status, files_changed,
                                      lines_added, lines_removed, risk_score, recipes,
                                      created_at, prev_hash, hash, chain_status, payload,
                                      file_id, line_no)
        SELECT scope_id, key, status, files_changed, lines_added, lines_removed, risk_score,
               recipes, created_at, prev_hash, hash, 'pending', payload::jsonb, file_id, line_no
        FROM stage
        ORDER BY scope_id, key
        ON CONFLICT DO NOTHING
        RETURNING file_id, line_no""",
)

AUDITS = SourceSpec(
    name="audit_results",
    table="audit_results",
    key_column="request_id",
    scope_column="project_id",
    needs_project=True,
    validator=r.validate_audit,
    stage_columns=(
        ("url", "text"),
        ("environment", "audit_environment"),
        ("device", "audit_device"),
        ("status", "run_status"),
        *((score, "integer") for score in r.AUDIT_SCORES),
        ("duration_ms", "bigint"),
        ("occurred_at", "timestamptz"),
        ("total_issues", "integer"),
        ("critical_issues", "integer"),
        ("high_issues", "integer"),
        ("medium_issues", "integer"),
        ("low_issues", "integer"),
        ("info_issues", "integer"),
    ),
    row=_audit_row,
    insert_sql=f"""
        WITH inserted AS (
            INSERT INTO audit_results (project_id, request_id, url, environment, device, status,
                                       {", ".join(r.AUDIT_SCORES)}, duration_ms, occurred_at,
                                       total_issues, critical_issues, high_issues, medium_issues,
                                       low_issues, info_issues, payload, file_id, line_no)
            SELECT scope_id, key, url, environment, device, status, {", ".join(r.AUDIT_SCORES)},
                   duration_ms, occurred_at, total_issues, critical_issues, high_issues,
                   medium_issues, low_issues, info_issues, payload::jsonb, file_id, line_no
            FROM stage
            ORDER BY scope_id, key
            ON CONFLICT DO NOTHING
            RETURNING id, file_id, line_no
        ), issues AS (
            INSERT INTO audit_issues (audit_id, position, suite, severity, message,
                                      recommendation, element, documentation)
            SELECT inserted.id, issue.ord - 1, (issue.value->>'suite')::audit_suite,
                   upper(issue.value->>'severity')::severity, issue.value->>'message',
                   issue.value->>'recommendation', issue.value->>'element',
                   issue.value->>'documentation'
            FROM inserted
            JOIN stage s ON s.file_id = inserted.file_id AND s.line_no = inserted.line_no
            CROSS JOIN LATERAL jsonb_array_elements(
                 COALESCE(NULLIF(s.payload::jsonb->'issues', 'null'), '[]'))  -- null: no issue
                 WITH ORDINALITY AS issue(value, ord)
        )
        SELECT file_id, line_no FROM inserted""",
)

SPECS = {spec.name: spec for spec in (USAGE, ERRORS, ATTESTATIONS, AUDITS)}
