"""Attestation chains, settled set-based after new attestations land."""

from psycopg import Cursor

from odavl_pipeline.db.locks import lock_attestation_chains
from odavl_pipeline.domain.attestations import GENESIS_HASH

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
    UPDATE fix_attestations f SET chain_status = 'verified', verified_at = odavl_now()
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
    INSERT INTO quarantine (source, file_id, line_no, reason, detail, raw, org_slug, project_slug)
    SELECT 'fix_attestations', file_id, line_no, 'chain_fork',
           'prev_hash ' || prev_hash || ' is already continued by verified request_id ' || kept,
           payload::text, payload ->> 'org', payload ->> 'project'
    FROM fork
    RETURNING file_id
"""


def settle_attestation_chains(cur: Cursor) -> set[int]:
    """Link what can be linked, reject forks; return the files whose lines changed outcome."""
    lock_attestation_chains(cur)
    touched = {file_id for (file_id,) in cur.execute(LINK_PENDING_ATTESTATIONS).fetchall()}
    touched.update(file_id for (file_id,) in cur.execute(REJECT_FORKS).fetchall())
    return touched
