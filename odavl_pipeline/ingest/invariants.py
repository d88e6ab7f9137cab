"""The invariants ingestion promises, as queries over the files of one ingestion run."""

from dataclasses import dataclass

import psycopg

from odavl_pipeline.ingest.sources import SPECS


@dataclass(frozen=True)
class Finding:
    passed: bool
    description: str
    violations: int


def _count(conn: psycopg.Connection, query: str, params: tuple[object, ...]) -> int:
    """The one number a `SELECT count(*)` returns."""
    row = conn.execute(query, params).fetchone()
    assert row is not None  # an aggregate without GROUP BY returns exactly one row
    return row[0]


def lines_balance(conn: psycopg.Connection, source: str, run_id: str | None) -> Finding:
    """Every file: lines read = accepted + duplicate + pending + rejected."""
    bad = _count(
        conn,
        "SELECT count(*) FROM ingested_files WHERE source = %s AND run_id IS NOT DISTINCT FROM %s "
        "AND lines <> accepted + duplicate + pending + rejected",
        (source, run_id),
    )
    return Finding(bad == 0, f"{bad} file(s) whose line outcomes do not add up", bad)


def rows_match_ledger(conn: psycopg.Connection, source: str, run_id: str | None) -> Finding:
    """Each file's accepted count equals the rows it put in the table: nothing counted twice."""
    table = SPECS[source].table
    bad = _count(
        conn,
        f"""SELECT count(*) FROM ingested_files f
            WHERE f.source = %s AND f.run_id IS NOT DISTINCT FROM %s
              AND f.accepted + f.pending <> (SELECT count(*) FROM {table} t
                                             WHERE t.file_id = f.id)""",
        (source, run_id),
    )
    return Finding(
        bad == 0, f"{bad} file(s) whose table rows differ from their accepted count", bad
    )


def references_resolve(conn: psycopg.Connection, source: str, run_id: str | None) -> Finding:
    """Every row of the run refers to an existing organization, and project of that organization."""
    spec = SPECS[source]
    if spec.scope_column == "organization_id":
        orphan = """NOT EXISTS (SELECT 1 FROM organizations o WHERE o.id = t.organization_id)
                    OR (t.project_id IS NOT NULL AND NOT EXISTS (
                        SELECT 1 FROM projects p
                        WHERE p.id = t.project_id AND p.organization_id = t.organization_id))"""
    else:
        orphan = "NOT EXISTS (SELECT 1 FROM projects p WHERE p.id = t.project_id)"
    bad = _count(
        conn,
        f"""SELECT count(*) FROM {spec.table} t JOIN ingested_files f ON f.id = t.file_id
            WHERE f.source = %s AND f.run_id IS NOT DISTINCT FROM %s AND ({orphan})""",
        (source, run_id),
    )
    return Finding(bad == 0, f"{bad} row(s) referring to a missing organization or project", bad)


def signature_counts(conn: psycopg.Connection, run_id: str | None) -> Finding:
    """Each touched signature's count equals its distinct events: no occurrence counted twice."""
    bad = _count(
        conn,
        """WITH touched AS (
               SELECT DISTINCT e.project_id, e.signature_hash FROM error_events e
               JOIN ingested_files f ON f.id = e.file_id WHERE f.run_id IS NOT DISTINCT FROM %s)
           SELECT count(*) FROM touched t
           JOIN error_signatures s ON s.project_id = t.project_id AND s.hash = t.signature_hash
           WHERE s.count <> (SELECT count(DISTINCT e.event_id) FROM error_events e
                             WHERE e.project_id = t.project_id AND e.signature_hash = t.signature_hash)""",
        (run_id,),
    )
    return Finding(bad == 0, f"{bad} signature(s) whose count differs from their events", bad)


def chains_intact(conn: psycopg.Connection, run_id: str | None) -> Finding:
    """In every touched project: no fork among verified links, every verified parent verified."""
    bad = _count(
        conn,
        """WITH touched AS (
               SELECT DISTINCT a.project_id FROM fix_attestations a
               JOIN ingested_files f ON f.id = a.file_id WHERE f.run_id IS NOT DISTINCT FROM %s)
           SELECT count(*) FROM fix_attestations a JOIN touched USING (project_id)
           WHERE a.chain_status = 'verified'
             AND (EXISTS (SELECT 1 FROM fix_attestations b
                          WHERE b.project_id = a.project_id AND b.prev_hash = a.prev_hash
                            AND b.chain_status = 'verified' AND b.id <> a.id)
                  OR (a.prev_hash <> repeat('0', 64)
                      AND NOT EXISTS (SELECT 1 FROM fix_attestations p
                                      WHERE p.project_id = a.project_id AND p.hash = a.prev_hash
                                        AND p.chain_status = 'verified')))""",
        (run_id,),
    )
    return Finding(
        bad == 0, f"{bad} verified attestation(s) forked or without a verified parent", bad
    )


def no_failed_files(conn: psycopg.Connection, source: str, run_id: str | None) -> Finding:
    """No file of the source is waiting as failed (whichever run failed it): each is retried
    by the next run, and an error that stays needs a person."""
    rows = conn.execute(
        "SELECT path, error FROM ingested_files WHERE source = %s AND status = 'failed' "
        "ORDER BY path",
        (source,),
    ).fetchall()
    shown = "; ".join(f"{path}: {error}" for path, error in rows[:3])
    return Finding(
        not rows,
        f"{len(rows)} file(s) failed and wait for the next run" + (f" ({shown})" if rows else ""),
        len(rows),
    )
