"""Which landed days hold work for a run, found without reading a file already ingested.

A file is known when the ledger has ingested it at this path with this size and modification time
(taken before its bytes were hashed). Any other file (new, rewritten, touched, failed before, or
ingested before the ledger kept times) makes its day pending: the run hashes that day's files, and
those whose content is already ingested are skipped, their time recorded.
"""

from collections.abc import Iterable
from datetime import date
from pathlib import Path

import psycopg

from odavl_pipeline.ingest.landing import LandedFile, scan_landing
from odavl_pipeline.ingest.zones import LandingZone


def known_files(conn: psycopg.Connection) -> set[tuple[str, str, int, int]]:
    """(source, path, size, mtime_ns) of every file the ledger holds as ingested."""
    rows = conn.execute(
        "SELECT source::text, path, size_bytes, mtime_ns FROM ingested_files "
        "WHERE status = 'ingested' AND mtime_ns IS NOT NULL"
    ).fetchall()
    return set(rows)


def pending_days(conn: psycopg.Connection, files: Iterable[LandedFile]) -> set[date]:
    """The days of `files` with at least one file the ledger does not know as it is now."""
    known = known_files(conn)
    pending: set[date] = set()
    for landed in files:
        if (landed.source, landed.relative_path, landed.size, landed.mtime_ns) not in known:
            pending.add(landed.day)
    return pending


def days_to_run(
    conn: psycopg.Connection,
    landing: LandingZone | Path | str,
    first: date | None = None,
    last: date | None = None,
) -> list[date]:
    """The landed days in [first, last] that a run should ingest: the pending ones, or else the
    latest landed day, so that a run with nothing new still retries the quarantine, checks and
    rebuilds the marts. Empty when nothing has landed in the range."""
    files = [
        landed
        for landed in scan_landing(landing).files
        if (first is None or landed.day >= first) and (last is None or landed.day <= last)
    ]
    if not files:
        return []
    return sorted(pending_days(conn, files)) or [max(landed.day for landed in files)]
