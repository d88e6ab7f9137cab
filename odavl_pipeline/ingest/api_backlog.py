"""Records sent to the HTTP API that the published marts do not hold yet (docs/operations.md,
"Records of the HTTP API in the marts").

A request is committed in PostgreSQL when the API answers, but it reaches no landing folder, so no
landing sensor or schedule sees it. A marts build holds exactly the usage stamped before its cut
(marts.extract.usage_cut, recorded in the marts' `_meta`), and a request is stamped `received_at`
after its rows, while it holds its source's lock: one received at or after the published marts'
cut is not in them, one received before it is. The sensor `api_records_to_marts` requests a
build while there are such requests, and `doctor` warns when they wait too long.
"""

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import psycopg

# The requests that brought records the marts show (accepted, or pending in a chain), received
# at or after %(cut)s (all of them without a cut) and before %(before)s (any time without).
REQUESTS_AFTER_CUT = """
    SELECT count(*), coalesce(sum(f.accepted + f.pending), 0), min(r.received_at), max(r.file_id)
    FROM api_requests AS r
    JOIN ingested_files AS f ON f.id = r.file_id
    WHERE r.received_at >= coalesce(%(cut)s::timestamptz, '-infinity')
      AND r.received_at < coalesce(%(before)s::timestamptz, 'infinity')
      AND f.accepted + f.pending > 0
"""


@dataclass(frozen=True)
class ApiBacklog:
    """The API requests whose records the published marts do not hold."""

    cut: datetime | None  # the published marts' cut; None when there are none to read
    requests: int
    records: int  # accepted or pending
    oldest: datetime | None  # when the oldest of them was received
    last_request: int | None  # the newest one's ledger file id

    @property
    def key(self) -> str:
        """The same requests after the same cut, the same key: they only ever grow in number."""
        cut = self.cut.isoformat() if self.cut else "none"
        return f"{cut}/{self.requests}/{self.last_request}"


def marts_cut(marts_path: Path) -> datetime | None:
    """The instant up to which the published marts took usage in: their build's cut (for a build
    as of an instant, quota_status's `as_of`, or when they were built); None without marts."""
    import duckdb

    from odavl_pipeline.marts.store import MartsNotBuilt, open_marts

    try:
        with open_marts(marts_path) as marts:
            row = marts.execute(
                "SELECT coalesce(max(usage_cut), (SELECT max(as_of) FROM quota_status), "
                "max(built_at)) FROM _meta"
            ).fetchone()
    except (duckdb.Error, MartsNotBuilt):
        return None
    assert row is not None  # an aggregate without GROUP BY returns exactly one row
    return row[0]


def api_backlog(
    conn: psycopg.Connection, cut: datetime | None, received_before: datetime | None = None
) -> ApiBacklog:
    """The API requests that brought records, received at or after `cut` (`marts_cut`) and, when
    given, before `received_before`."""
    row = conn.execute(REQUESTS_AFTER_CUT, {"cut": cut, "before": received_before}).fetchone()
    assert row is not None  # an aggregate without GROUP BY returns exactly one row
    requests, records, oldest, last = row
    return ApiBacklog(cut, requests, int(records), oldest, last)


def build_skip_reason(
    backlog: ApiBacklog, requested: str | None, building_run: str | None
) -> str | None:
    """Why no marts build is to be requested now, or None when one is.

    `requested` is the key of the backlog a build was last requested for; `building_run` the id
    of such a build still queued or running: it takes in what was received before its cut, and
    leaves the later requests to the next evaluation."""
    if not backlog.requests:
        return "the marts hold every record sent to the HTTP API"
    waiting = f"{backlog.requests:,} API request(s) ({backlog.records:,} record(s))"
    if building_run:
        return (
            f"run {building_run} of rebuild_marts, requested by this sensor, is queued or "
            f"building: {waiting} not in the marts wait for it, or for the next build"
        )
    if backlog.key == requested:
        return (
            f"a build was requested for these {waiting} already; if it failed (see its run), the "
            "next request or the daily run builds them"
        )
    return None
