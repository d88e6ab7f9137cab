"""What a run did, and what the quarantine holds, read back from the ledger."""

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import date

import psycopg

from odavl_pipeline.ingest.landing import SOURCES
from odavl_pipeline.ingest.writer import Counts


def run_counts(conn: psycopg.Connection, run_id: str) -> dict[str, Counts]:
    """Per-source line outcomes of the files one run ingested (every source listed)."""
    counts = {source: Counts() for source in SOURCES}
    rows = conn.execute(
        """SELECT source::text, count(*), sum(lines), sum(accepted), sum(duplicate), sum(pending),
                  sum(rejected)
           FROM ingested_files WHERE run_id = %s GROUP BY source""",
        (run_id,),
    ).fetchall()
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
           ORDER BY f.status, f.path""",
        (run_id,),
    ).fetchall()
    return [
        {"source": source, "file": path, "status": status, "detail": detail}
        for source, path, status, detail in rows
    ]


@dataclass(frozen=True)
class RejectFilter:
    """Which quarantined records to show: any combination, None meaning any."""

    source: str | None = None
    reason: str | None = None
    file: str | None = None  # part of the path relative to the landing root
    day: date | None = None  # the landing day folder

    def where(self) -> tuple[str, dict]:
        """The SQL condition on `q` (quarantine) and `f` (its file), and its parameters."""
        conditions = {
            "source": "q.source::text = %(source)s",
            "reason": "q.reason = %(reason)s",
            "file": "strpos(f.path, %(file)s) > 0",
            "day": "f.day = %(day)s",
        }
        chosen = [
            condition for name, condition in conditions.items() if getattr(self, name) is not None
        ]
        return " AND ".join(chosen) or "TRUE", asdict(self)


def list_rejects(
    conn: psycopg.Connection, filters: RejectFilter = RejectFilter(), limit: int | None = None
) -> list[dict]:
    """Quarantined records, one per line, the newest landing day first (misplaced files, which
    have none, last), then by file and line: file relative to the landing root, 1-based line
    (None for a whole file). The identical lines of a quarantine row are listed each."""
    return list(iter_rejects(conn, filters, limit))


def iter_rejects(
    conn: psycopg.Connection, filters: RejectFilter = RejectFilter(), limit: int | None = None
) -> Iterator[dict]:
    """As `list_rejects`, read from the server as they are listed: memory stays flat."""
    where, parameters = filters.where()
    with conn.transaction(), conn.cursor(name="odavl_rejects") as cur:
        cur.itersize = 10_000
        cur.execute(
            f"""SELECT q.source::text, f.path, l.line_no, q.reason, q.detail
                FROM quarantine q JOIN ingested_files f ON f.id = q.file_id
                CROSS JOIN LATERAL unnest(q.line_no || coalesce(q.more_line_nos, '{{}}'))
                    AS l(line_no)
                WHERE {where}
                ORDER BY f.day DESC NULLS LAST, f.path, f.id, l.line_no NULLS FIRST, q.id
                LIMIT %(limit)s""",
            {**parameters, "limit": limit},
        )
        for source, path, line, why, detail in cur:
            yield {"source": source, "file": path, "line": line, "reason": why, "detail": detail}


def rejects_json(
    conn: psycopg.Connection, filters: RejectFilter = RejectFilter(), limit: int | None = None
) -> Iterator[str]:
    """`rejects --json`: one JSON array of the listed lines (all, or the first `limit`), in
    pieces."""
    yield "["
    for number, row in enumerate(iter_rejects(conn, filters, limit)):
        yield (", " if number else "") + json.dumps(row)
    yield "]\n"


def reject_totals(
    conn: psycopg.Connection, filters: RejectFilter = RejectFilter()
) -> list[tuple[str | None, str, int]]:
    """(source, reason, lines) of the quarantined records that pass `filters`."""
    where, parameters = filters.where()
    return conn.execute(
        f"""SELECT q.source::text, q.reason, sum(q.lines)::bigint
            FROM quarantine q JOIN ingested_files f ON f.id = q.file_id
            WHERE {where} GROUP BY 1, 2 ORDER BY 1 NULLS LAST, 2""",
        parameters,
    ).fetchall()
