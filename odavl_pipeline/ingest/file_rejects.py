"""Files rejected whole: those whose ingestion raised an error, and misplaced ones.

Each is one ledger row (status `failed` or `misplaced`, one line, rejected) with one quarantine
row (line NULL): `ingest_error` with the error, or `misplaced_file` with what is wrong. A failed
file is tried again by every later run; a misplaced file is reported once per path and size.
Either row makes way when the same path is ingested (a day folder that was still in the future,
a file that failed). Only the infrastructure failing stops a run: `is_infrastructure_failure`.
"""

import errno
import hashlib
import os

import psycopg
from psycopg import Cursor

from odavl_pipeline.db.locks import lock_file
from odavl_pipeline.domain.records import Reason
from odavl_pipeline.ingest.landing import LandedFile, MisplacedFile, sha256_of
from odavl_pipeline.ingest.parser import ParserDied
from odavl_pipeline.ingest.writer import Counts, forget_unread, storable
from odavl_pipeline.ingest.zones import LandingZone

# SQLSTATE classes of a server that cannot go on: connection, transaction rollback, insufficient
# resources (disk full, out of memory), object not in prerequisite state (lock not available),
# operator intervention (shutdown, cancel), system and config errors.
INFRASTRUCTURE_SQLSTATE_CLASSES = frozenset({"08", "40", "53", "55", "57", "58", "F0", "XX"})
# ... but a deadlock or a serialization failure with a concurrent run is not: what it rolled back
# is tried again.
CONCURRENCY_SQLSTATES = frozenset({"40P01", "40001"})
INFRASTRUCTURE_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.ENOMEM, errno.EROFS}
)
MAX_ERROR_CHARS = 4000
UNKNOWN_SHA256 = ""  # a file that could not be read to the end has no content hash


def is_infrastructure_failure(error: BaseException, conn: psycopg.Connection) -> bool:
    """True when the run must stop: the database, the disk or the machine failed, not the file."""
    if conn.broken or conn.closed or isinstance(error, (MemoryError, ParserDied)):
        return True
    if isinstance(error, psycopg.Error):
        if error.sqlstate is None:  # raised by the client: the connection, or a value it refused
            return isinstance(error, (psycopg.OperationalError, psycopg.InterfaceError))
        return (
            error.sqlstate[:2] in INFRASTRUCTURE_SQLSTATE_CLASSES
            and error.sqlstate not in CONCURRENCY_SQLSTATES
        )
    return isinstance(error, OSError) and error.errno in INFRASTRUCTURE_ERRNOS


def describe(error: BaseException) -> str:
    """The error as the quarantine keeps it: its type and message, storable and bounded."""
    text = storable(f"{type(error).__name__}: {error}")
    return text if len(text) <= MAX_ERROR_CHARS else text[:MAX_ERROR_CHARS] + "…"


def record_failed_file(
    conn: psycopg.Connection,
    landed: LandedFile,
    sha256: str,
    error: BaseException,
    run_id: str | None,
) -> Counts | None:
    """Record a file whose ingestion raised, so that it shows and is retried; None when another
    run ingested this content meanwhile."""
    with conn.transaction(), conn.cursor() as cur:
        lock_file(cur, landed.source, landed.relative_path)
        forget_unread(cur, landed.source, landed.relative_path)
        file_id = _insert_file(
            cur,
            landed.source,
            landed.relative_path,
            landed.day,
            sha256,
            landed.size,
            run_id,
            "failed",
            describe(error),
        )
        if file_id is None:
            return None
        _quarantine_file(cur, landed.source, file_id, Reason.INGEST_ERROR, describe(error))
    return Counts(files=1, lines=1, rejected=1)


def record_misplaced(
    conn: psycopg.Connection,
    zone: LandingZone,
    misplaced: list[MisplacedFile],
    run_id: str | None,
) -> dict[str | None, Counts]:
    """Report each misplaced file not reported yet at its path and size; counts per source."""
    counts: dict[str | None, Counts] = {}
    reported = _reported(conn, {stray.source for stray in misplaced})
    for stray in misplaced:
        if (stray.source, stray.relative_path, stray.size) in reported:
            continue
        try:
            fingerprint = _fingerprint(zone, stray)
        except FileNotFoundError:  # gone since the scan
            continue
        with conn.transaction(), conn.cursor() as cur:
            file_id = _insert_file(
                cur,
                stray.source,
                stray.relative_path,
                None,
                fingerprint,
                stray.size,
                run_id,
                "misplaced",
                None,
            )
            if file_id is None:  # another run reported it meanwhile
                continue
            _quarantine_file(
                cur,
                stray.source,
                file_id,
                Reason.MISPLACED_FILE,
                f"{stray.relative_path}: {stray.problem}",
            )
        counts.setdefault(stray.source, Counts()).add(Counts(files=1, lines=1, rejected=1))
    return counts


def _reported(conn: psycopg.Connection, sources: set[str | None]) -> set[tuple]:
    """(source, path, size) of the misplaced files already reported, in one query."""
    if not sources:
        return set()
    rows = conn.execute(
        "SELECT source::text, path, size_bytes FROM ingested_files WHERE status = 'misplaced' "
        "AND (source::text = ANY(%s) OR (source IS NULL AND %s))",
        ([source for source in sources if source], None in sources),
    ).fetchall()
    conn.commit()
    return set(rows)


def _fingerprint(zone: LandingZone, stray: MisplacedFile) -> str:
    """SHA-256 of a link's target, of a regular file's bytes; of nothing for anything else.
    A link is never followed, a pipe never opened. Raises FileNotFoundError for a file gone."""
    if stray.link_target is not None:
        return hashlib.sha256(os.fsencode(stray.link_target)).hexdigest()
    if stray.readable:
        try:
            with zone.open(stray.location) as handle:
                return sha256_of(handle)
        except FileNotFoundError:
            raise
        except OSError:
            return UNKNOWN_SHA256
    return hashlib.sha256(b"").hexdigest()


def _insert_file(
    cur: Cursor,
    source: str | None,
    path: str,
    day,
    sha256: str,
    size: int,
    run_id: str | None,
    status: str,
    error: str | None,
) -> int | None:
    row = cur.execute(
        "INSERT INTO ingested_files (source, path, day, sha256, size_bytes, run_id, status, error, "
        "lines, accepted, duplicate, pending, rejected) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 1, 0, 0, 0, 1) ON CONFLICT DO NOTHING RETURNING id",
        (source, path, day, sha256, size, run_id, status, error),
    ).fetchone()
    return row[0] if row else None


def _quarantine_file(
    cur: Cursor, source: str | None, file_id: int, reason: Reason, detail: str
) -> None:
    cur.execute(
        "INSERT INTO quarantine (source, file_id, line_no, reason, detail) "
        "VALUES (%s, %s, NULL, %s, %s)",
        (source, file_id, reason.value, detail),
    )
