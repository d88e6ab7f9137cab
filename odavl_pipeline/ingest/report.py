"""What a run did, and what the quarantine holds, read back from the ledger."""

import psycopg

from odavl_pipeline.ingest.landing import SOURCES
from odavl_pipeline.ingest.writer import Counts


def run_counts(conn: psycopg.Connection, run_id: str) -> dict[str, Counts]:
    """Per-source line outcomes of the files one run ingested (every source listed)."""
    counts = {source: Counts() for source in SOURCES}
    rows = conn.execute(
        """SELECT source::text, count(*), sum(lines), sum(accepted), sum(duplicate), sum(pending),
                  sum(rejected)
           FROM ingested_files WHERE run_id = %s GROUP BY source""", (run_id,)).fetchall()
    for source, *numbers in rows:
        if source is not None:  # misplaced files outside every source: `unread_files` lists them
            counts[source] = Counts(*(int(n) for n in numbers))
    return counts


def unread_files(conn: psycopg.Connection, run_id: str) -> list[dict]:
    """The files one run could not read: failed (tried again next run) and misplaced."""
    rows = conn.execute(
        """SELECT f.source::text, f.path, f.status::text, q.detail
           FROM ingested_files f JOIN quarantine q ON q.file_id = f.id AND q.line_no IS NULL
           WHERE f.run_id = %s AND f.status <> 'ingested'
           ORDER BY f.status, f.path""", (run_id,)).fetchall()
    return [{"source": source, "file": path, "status": status, "detail": detail}
            for source, path, status, detail in rows]


def list_rejects(conn: psycopg.Connection, reason: str | None = None,
                 limit: int | None = None) -> list[dict]:
    """Quarantined records, oldest first: file relative to the landing root, 1-based line."""
    rows = conn.execute(
        """SELECT q.source::text, f.path, q.line_no, q.reason, q.detail
           FROM quarantine q JOIN ingested_files f ON f.id = q.file_id
           WHERE %(reason)s::text IS NULL OR q.reason = %(reason)s
           ORDER BY q.file_id, q.line_no NULLS FIRST
           LIMIT %(limit)s""", {"reason": reason, "limit": limit}).fetchall()
    return [{"source": source, "file": path, "line": line, "reason": why, "detail": detail}
            for source, path, line, why, detail in rows]


def reject_totals(conn: psycopg.Connection) -> list[tuple[str, str, int]]:
    return conn.execute(
        "SELECT source::text, reason, count(*) FROM quarantine GROUP BY 1, 2 ORDER BY 1, 2").fetchall()
