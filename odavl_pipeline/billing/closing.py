"""A billing period's close: what holds it (usage files that landed and are not ingested as they
are), and recording it in PostgreSQL with its figures.

A period closes once, with the usage that had arrived, and never changes after. A usage file that
landed but is not in the ledger as it is now (failed, unread by any run yet, or changed since it
was read) may hold some of a period's usage: a period does not close while such a file of a day
that can hold its usage waits (build.DUE_PERIODS). A file of day D can hold usage of every period
that starts by the day after D: records are attributed by their own time, late usage lands in a
later day's folder, and a producer's day may run up to a day ahead of UTC.
"""

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import psycopg

from odavl_pipeline.ingest.landing import scan_landing
from odavl_pipeline.ingest.zones import LandingZone

USAGE = "usage_events"


@dataclass(frozen=True)
class HeldFile:
    path: str  # relative to the landing root
    day: date
    why: str  # failed, unread or changed

    def __str__(self) -> str:
        return f"{self.path} ({self.why})"


def files_holding_closes(
    conn: psycopg.Connection, landing: LandingZone | Path | str, cut: datetime | None = None
) -> list[HeldFile]:
    """The landed usage files the ledger does not hold as ingested at their size and time (by
    `cut`, a build's usage cut: a file committed after it is not in that build), in path order.
    Raises ZoneUnavailable when the zone cannot be listed: no close then."""
    ingested: set[tuple[str, int, int]] = set()
    seen: dict[str, set[str]] = {}
    with conn.transaction():  # none left open: a build's later writes commit on their own
        ledger = conn.execute(
            "SELECT path, status::text, size_bytes, mtime_ns FROM ingested_files "
            "WHERE source = %s AND (%s::timestamptz IS NULL OR ingested_at < %s)",
            (USAGE, cut, cut),
        ).fetchall()
    for path, status, size, mtime_ns in ledger:
        seen.setdefault(path, set()).add(status)
        if status == "ingested":
            ingested.add((path, size, mtime_ns))
    held = []
    for landed in scan_landing(landing, (USAGE,)).files:
        if (landed.relative_path, landed.size, landed.mtime_ns) in ingested:
            continue
        statuses = seen.get(landed.relative_path, set())
        why = "failed" if "failed" in statuses else "changed" if statuses else "unread"
        held.append(HeldFile(landed.relative_path, landed.day, why))
    return held


# the periods closed, unless closed already (parameters: closed_at, then the columns)
RECORD_CLOSES = """
    INSERT INTO billing_closes (organization_id, period_start, period_end, closed_at, tier)
    SELECT org_id, period_start, period_end, %s, tier::tier
    FROM unnest(%s::int[], %s::timestamptz[], %s::timestamptz[], %s::text[])
         AS p(org_id, period_start, period_end, tier)
    ON CONFLICT DO NOTHING
"""

# ... and their figures per metric, unless recorded already
RECORD_CLOSE_USAGE = """
    INSERT INTO billing_close_usage (organization_id, period_start, metric, used, quota, overage)
    SELECT *
    FROM unnest(%s::int[], %s::timestamptz[], %s::text[], %s::bigint[], %s::bigint[],
                %s::bigint[])
    ON CONFLICT DO NOTHING
"""


def record_closes(
    conn: psycopg.Connection,
    closes: list[tuple[int, datetime, datetime, str]],
    usage: list[tuple[int, datetime, str, int, int, int]],
    closed_at: datetime,
) -> int:
    """Close the given (organization, start, end, tier) periods not closed yet, with what they
    closed with per (organization, start, metric, used, quota, overage), in one transaction; a
    period another build closed first keeps that build's figures. Returns how many closed."""
    columns = [list(column) for column in zip(*closes, strict=True)] or [[], [], [], []]
    with conn.transaction():
        closed = conn.execute(RECORD_CLOSES, (closed_at, *columns)).rowcount
        if usage:
            conn.execute(
                RECORD_CLOSE_USAGE, tuple(list(column) for column in zip(*usage, strict=True))
            )
    return closed
