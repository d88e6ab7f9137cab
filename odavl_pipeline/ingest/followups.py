"""Set-based work after a batch lands: signatures, audit issues, attestation chains."""

from psycopg import Cursor

from odavl_pipeline.domain.attestations import GENESIS_HASH

# Rows this batch inserted are those whose provenance is a staged line.
_INSERTED_NOW = "t.file_id = s.file_id AND t.line_no = s.line_no"

UPSERT_SIGNATURES = f"""
    INSERT INTO error_signatures AS sig (project_id, hash, detector, severity, message, file,
                                         line, "column", count, first_seen, last_seen, status)
    SELECT t.project_id, t.signature_hash, min(t.detector), max(t.severity),
           (array_agg(t.message ORDER BY t.occurred_at DESC, t.event_id))[1],
           min(t.file),
           (array_agg(t.line ORDER BY t.occurred_at DESC, t.event_id))[1],
           (array_agg(t."column" ORDER BY t.occurred_at DESC, t.event_id))[1],
           count(*), min(t.occurred_at), max(t.occurred_at), 'open'
    FROM stage s JOIN error_events t ON t.project_id = s.scope_id AND t.event_id = s.key
    WHERE {_INSERTED_NOW}
    GROUP BY t.project_id, t.signature_hash
    ORDER BY t.project_id, t.signature_hash
    ON CONFLICT (project_id, hash) DO UPDATE SET
        count = sig.count + excluded.count,
        severity = GREATEST(sig.severity, excluded.severity),
        message = CASE WHEN excluded.last_seen >= sig.last_seen THEN excluded.message ELSE sig.message END,
        line = CASE WHEN excluded.last_seen >= sig.last_seen THEN excluded.line ELSE sig.line END,
        "column" = CASE WHEN excluded.last_seen >= sig.last_seen THEN excluded."column" ELSE sig."column" END,
        first_seen = LEAST(sig.first_seen, excluded.first_seen),
        last_seen = GREATEST(sig.last_seen, excluded.last_seen),
        status = CASE WHEN sig.status = 'resolved'
                       AND excluded.last_seen > COALESCE(sig.resolved_at, '-infinity')
                      THEN 'regressed'::signature_status ELSE sig.status END
"""

INSERT_AUDIT_ISSUES = f"""
    INSERT INTO audit_issues (audit_id, position, suite, severity, message, recommendation,
                              element, documentation)
    SELECT t.id, issue.ord - 1, (issue.value->>'suite')::audit_suite,
           upper(issue.value->>'severity')::severity, issue.value->>'message',
           issue.value->>'recommendation', issue.value->>'element', issue.value->>'documentation'
    FROM stage s
    JOIN audit_results t ON t.project_id = s.scope_id AND t.request_id = s.key
    CROSS JOIN LATERAL jsonb_array_elements(COALESCE(s.payload->'issues', '[]'))
         WITH ORDINALITY AS issue(value, ord)
    WHERE {_INSERTED_NOW}
"""

# A pending attestation becomes verified when its parent is verified (or it is a
# genesis). Among pending siblings of one parent, the earliest created_at, then the
# smallest hash, is the candidate; a sibling of a verified child never is.
LINK_PENDING_ATTESTATIONS = f"""
    WITH RECURSIVE candidate AS (
        SELECT DISTINCT ON (p.project_id, p.prev_hash) p.id, p.project_id, p.prev_hash, p.hash
        FROM fix_attestations p
        WHERE p.chain_status = 'pending'
          AND NOT EXISTS (SELECT 1 FROM fix_attestations v
                          WHERE v.project_id = p.project_id AND v.prev_hash = p.prev_hash
                            AND v.chain_status = 'verified')
        ORDER BY p.project_id, p.prev_hash, p.created_at, p.hash
    ), linked AS (
        SELECT c.id, c.project_id, c.hash FROM candidate c
        WHERE c.prev_hash = '{GENESIS_HASH}'
           OR EXISTS (SELECT 1 FROM fix_attestations v
                      WHERE v.project_id = c.project_id AND v.hash = c.prev_hash
                        AND v.chain_status = 'verified')
        UNION
        SELECT c.id, c.project_id, c.hash
        FROM candidate c JOIN linked l ON c.project_id = l.project_id AND c.prev_hash = l.hash
    )
    UPDATE fix_attestations f SET chain_status = 'verified', verified_at = now()
    FROM linked WHERE f.id = linked.id
    RETURNING f.file_id
"""

# A pending attestation whose parent already has a verified child is a fork: it
# leaves the table for the quarantine, naming the child that stays.
REJECT_FORKS = """
    WITH fork AS (
        DELETE FROM fix_attestations p
        USING fix_attestations v
        WHERE p.chain_status = 'pending' AND v.chain_status = 'verified'
          AND v.project_id = p.project_id AND v.prev_hash = p.prev_hash
        RETURNING p.file_id, p.line_no, p.payload, p.prev_hash, v.request_id AS kept
    )
    INSERT INTO quarantine (source, file_id, line_no, reason, detail, raw)
    SELECT 'fix_attestations', file_id, line_no, 'chain_fork',
           'prev_hash ' || prev_hash || ' is already continued by verified request_id ' || kept,
           payload::text
    FROM fork
    RETURNING file_id
"""


def upsert_signatures(cur: Cursor) -> None:
    cur.execute(UPSERT_SIGNATURES)


def insert_audit_issues(cur: Cursor) -> None:
    cur.execute(INSERT_AUDIT_ISSUES)


def settle_attestation_chains(cur: Cursor) -> set[int]:
    """Link what can be linked, reject forks; return the files whose lines changed outcome."""
    cur.execute("SELECT pg_advisory_xact_lock(hashtext('odavl:attestation-chains'))")
    touched = {file_id for (file_id,) in cur.execute(LINK_PENDING_ATTESTATIONS).fetchall()}
    touched.update(file_id for (file_id,) in cur.execute(REJECT_FORKS).fetchall())
    return touched
