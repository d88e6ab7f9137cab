"""Usage corrections (CONTRACT.md section 8): batches that add, amend and void usage events of
one organization's window without editing a landed row.

A draft collects records (`add`) and voids (`void_ids`, `void_where`). Committing computes, in
one transaction, the batch's entries: per event it changes, the current version it retracts
(sign -1) and the version it makes (sign +1), appended to `usage_corrections` and booked at the
commit (migration 0014). The marts sum the landed rows and these entries (`usage_ledger`): an
open period's figures change, a closed period's difference is booked into the open period as
a `correction` adjustment (marts/build.py). A revert appends the opposite entries.

Every function takes a psycopg connection and leaves it outside a transaction; what a command
refuses raises `CorrectionRefused` with the line to print.
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from odavl_pipeline import clock
from odavl_pipeline.billing.catalogue import METRIC_OF_EVENT_TYPE, QUOTA_METRICS
from odavl_pipeline.billing.filters import FilterError, filter_sql, parse_filter
from odavl_pipeline.billing.plans import (
    ALWAYS_BEFORE,
    PlanVersion,
    quotas,
    rated_periods,
    uncovered,
)
from odavl_pipeline.db.locks import lock_corrections, take_source
from odavl_pipeline.domain.records import Reason, Rejected, parse_record
from odavl_pipeline.errors import PipelineError

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)  # a window starts then or later


class CorrectionRefused(PipelineError):
    """What a corrections command will not do, in one line saying why."""


@dataclass(frozen=True)
class Added:
    """What `add` did with a file: records staged, lines refused."""

    accepted: int
    rejected: int


# --- drafts --------------------------------------------------------------------------------


def create(
    conn: psycopg.Connection,
    org: str,
    start: datetime,
    end: datetime,
    reason: str,
    by: str,
    replace: bool = False,
) -> int:
    """A new draft of `org` for the window [start, end); returns its id. Refused when the
    window is empty or before 1970, the organization unknown, or another draft overlaps."""
    if start.tzinfo is None or end.tzinfo is None:
        raise CorrectionRefused("the window's start and end need a time zone")
    if start >= end:
        raise CorrectionRefused(f"the window is empty: --start {start} is not before --end {end}")
    if start < EARLIEST:
        raise CorrectionRefused(f"the window starts before 1970-01-01: {start}")
    if not reason.strip():
        raise CorrectionRefused("--reason is empty: say why the usage is corrected")
    with conn.transaction():
        org_id = _org_id(conn, org)
        lock_corrections(conn, org_id)
        overlapping = conn.execute(
            "SELECT id FROM correction_batches WHERE organization_id = %s AND state = 'draft' "
            "AND window_start < %s AND window_end > %s ORDER BY id LIMIT 1",
            (org_id, end, start),
        ).fetchone()
        if overlapping:
            raise CorrectionRefused(
                f"draft {overlapping[0]} of {org} overlaps this window: commit or discard it first"
            )
        inserted = conn.execute(
            "INSERT INTO correction_batches (organization_id, window_start, window_end, state, "
            "replace, reason, created_by, added, amended, voided) "
            "VALUES (%s, %s, %s, 'draft', %s, %s, %s, 0, 0, 0) RETURNING id",
            (org_id, start, end, replace, reason, by),
        ).fetchone()
    assert inserted is not None  # INSERT … RETURNING of one row returns it
    return inserted[0]


# A file's accepted lines are copied here first (one COPY, in the order read), then moved into
# `correction_records` with set-based SQL: memory stays flat whatever the file's size.
ADD_STAGE = """
    CREATE TEMP TABLE added (
        line_no integer, event_id varchar(200), event_type usage_event_type,
        occurred_at timestamptz, quantity integer, project_id integer, user_email text,
        payload jsonb
    ) ON COMMIT DROP
"""

# ... the lines whose event the batch carries already (an earlier line, or another file)
ADD_REPEATS = """
    SELECT a.line_no, a.event_id, coalesce(r.file_name || ':' || r.line_no,
                                           %(name)s || ':' || first.line_no), a.payload::text
    FROM added AS a
    JOIN (SELECT event_id, min(line_no) AS line_no FROM added GROUP BY event_id) AS first
      USING (event_id)
    LEFT JOIN correction_records AS r ON r.batch_id = %(batch)s AND r.event_id = a.event_id
    WHERE r.event_id IS NOT NULL OR a.line_no > first.line_no
    ORDER BY a.line_no
"""

# The current versions (`usage_current`) of the events whose ids table {keys} lists, as table
# `c`: a few are looked up one by one by their key (OFFSET 0 keeps each lookup apart, so that
# PostgreSQL reads only that event's rows), many in one pass over the organization's events
# joined to the keys by hash.
FEW_KEYS = 10_000
_LOOKED_UP = """
    {keys} AS k
    CROSS JOIN LATERAL (
        SELECT * FROM usage_current AS v
        WHERE v.organization_id = %(org)s AND v.event_id = k.event_id
        OFFSET 0) AS c
"""
_JOINED = """
    {keys} AS k
    JOIN usage_current AS c ON c.organization_id = %(org)s AND c.event_id = k.event_id
"""


def _current_versions(keys: str, count: int) -> str:
    """SQL (a FROM clause) of the current versions of `count` events listed in table `keys`."""
    return (_LOOKED_UP if count <= FEW_KEYS else _JOINED).format(keys=keys)


# ... the lines amending an event that now occurs outside the window
ADD_OUTSIDE = """
    SELECT k.line_no, k.event_id, c.occurred_at, k.payload::text
    FROM {current}
    WHERE NOT (c.occurred_at >= %(start)s AND c.occurred_at < %(end)s)
    ORDER BY k.line_no
"""

ADD_RECORDS = """
    INSERT INTO correction_records (batch_id, event_id, file_name, line_no, event_type,
                                    occurred_at, quantity, project_id, user_email, payload)
    SELECT %(batch)s, event_id, %(name)s, line_no, event_type, occurred_at, quantity, project_id,
           user_email, payload
    FROM added
    WHERE line_no NOT IN (SELECT unnest(%(refused)s::integer[]))
"""


def add(conn: psycopg.Connection, batch_id: int, name: str, lines: Iterable[bytes]) -> Added:
    """Stage the usage records of a file (NDJSON lines, read as they come) in a draft,
    validated as landed lines are, plus: the batch's organization, `occurred_at` within its
    window, an event id once per batch, and an amended event that now occurs within the window.
    Adding a file of the same name again replaces what it staged before, its refused lines
    included."""
    from odavl_pipeline.ingest.sources import USAGE  # loads the models

    with conn.transaction():
        batch = _batch_for_update(conn, batch_id, "draft")
        org_id = batch["organization_id"]
        projects: dict[str, int] = dict(
            conn.execute(
                "SELECT slug, id FROM projects WHERE organization_id = %s", (org_id,)
            ).fetchall()
        )
        for table in ("correction_records", "correction_rejects"):
            conn.execute(
                f"DELETE FROM {table} WHERE batch_id = %s AND file_name = %s", (batch_id, name)
            )
        conn.execute(ADD_STAGE)
        now, rejects, copied = clock.now(), [], 0
        with conn.cursor().copy(
            "COPY added (line_no, event_id, event_type, occurred_at, quantity, project_id, "
            "user_email, payload) FROM STDIN"
        ) as copy:
            for line_no, raw in enumerate(lines, start=1):
                if not raw.strip():
                    continue
                try:
                    text, record, project_id = _checked(raw, batch, projects, now, USAGE)
                except Rejected as rejected:
                    text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                    rejects.append((line_no, rejected.reason.value, rejected.detail, text))
                    continue
                copy.write_row((line_no, record.event_id, *USAGE.row(record, project_id), text))
                copied += 1
        values = {
            "batch": batch_id,
            "name": name,
            "org": org_id,
            "start": batch["window_start"],
            "end": batch["window_end"],
        }
        late: dict[int, tuple] = {}  # lines refused once copied: the first reason of each
        for line_no, event_id, where, text in conn.execute(ADD_REPEATS, values).fetchall():
            detail = f"event_id: {event_id!r} is already in this batch at {where}"
            late.setdefault(line_no, (line_no, Reason.CONFLICTING_DUPLICATE.value, detail, text))
        outside = ADD_OUTSIDE.format(current=_current_versions("added", copied))
        for line_no, event_id, occurred_at, text in conn.execute(outside, values).fetchall():
            detail = (
                f"event_id: {event_id!r} occurred at {occurred_at.isoformat()}, outside the "
                "batch's window: a batch amends events of its window only"
            )
            late.setdefault(line_no, (line_no, Reason.SCHEMA_VIOLATION.value, detail, text))
        conn.execute(ADD_RECORDS, {**values, "refused": sorted(late)})
        rejects += late.values()
        with conn.cursor().copy(
            "COPY correction_rejects (batch_id, file_name, line_no, reason, detail, raw) FROM STDIN"
        ) as copy:
            for row in sorted(rejects):
                copy.write_row((batch_id, name, *row))
        _analyze(conn, "correction_records")
    return Added(copied - len(late), len(rejects))


def _checked(raw: bytes, batch: dict, projects: dict[str, int], now: datetime, usage_spec):
    """(text, record, project id) of a line a batch may carry, or `Rejected` with the reason:
    the landing zone's rules (`usage_spec`), then the batch's organization and window."""
    try:
        text = raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as error:
        raise Rejected(Reason.INVALID_JSON, f"not UTF-8 at byte {error.start}") from None
    record = usage_spec.validate(parse_record(text), now)
    if record.org != batch["org"]:
        raise Rejected(
            Reason.SCHEMA_VIOLATION,
            f"org: {record.org!r} is not the batch's organization {batch['org']!r}",
        )
    if not batch["window_start"] <= record.occurred_at < batch["window_end"]:
        raise Rejected(
            Reason.SCHEMA_VIOLATION,
            f"occurred_at: {record.occurred_at.isoformat()} is outside the batch's window "
            f"[{batch['window_start'].isoformat()}, {batch['window_end'].isoformat()})",
        )
    project_id = None
    if record.project is not None:
        project_id = projects.get(record.project)
        if project_id is None:
            raise Rejected(
                Reason.UNKNOWN_PROJECT,
                f"project: no project {record.project!r} in {batch['org']!r}",
            )
    return text, record, project_id


def void_ids(conn: psycopg.Connection, batch_id: int, event_ids: Iterable[str]) -> list[str]:
    """Void the listed events of the draft's window; returns the ids that are no counted
    event of the window (not voided)."""
    wanted = sorted({event_id.strip() for event_id in event_ids if event_id.strip()})
    with conn.transaction():
        batch = _batch_for_update(conn, batch_id, "draft")
        found = {
            event_id
            for (event_id,) in conn.execute(
                "INSERT INTO correction_voids (batch_id, event_id) "
                "SELECT %s, c.event_id FROM usage_current AS c "
                "WHERE c.organization_id = %s AND c.event_id = ANY(%s) AND c.live "
                "AND c.occurred_at >= %s AND c.occurred_at < %s "
                "ON CONFLICT DO NOTHING RETURNING event_id",
                (
                    batch_id,
                    batch["organization_id"],
                    wanted,
                    batch["window_start"],
                    batch["window_end"],
                ),
            ).fetchall()
        }
        already = {
            event_id
            for (event_id,) in conn.execute(
                "SELECT event_id FROM correction_voids WHERE batch_id = %s AND event_id = ANY(%s)",
                (batch_id, wanted),
            ).fetchall()
        }
        _analyze(conn, "correction_voids")
    return [event_id for event_id in wanted if event_id not in found | already]


def void_where(conn: psycopg.Connection, batch_id: int, text: str) -> int:
    """Void the counted events of the draft's window that match the filter (billing/filters.py)
    now; returns how many the draft voids anew."""
    try:
        condition, parameters = filter_sql(parse_filter(text))
    except FilterError as error:
        raise CorrectionRefused(f"--where: {error}") from None
    with conn.transaction():
        batch = _batch_for_update(conn, batch_id, "draft")
        voided = conn.execute(
            "INSERT INTO correction_voids (batch_id, event_id) "
            "SELECT %s, c.event_id FROM ("
            "  SELECT c.event_id, c.event_type::text AS event_type, p.slug AS project, "
            "         c.user_email, c.payload, c.quantity::bigint AS quantity "
            "  FROM usage_current AS c LEFT JOIN projects AS p ON p.id = c.project_id "
            "  WHERE c.organization_id = %s AND c.live "
            "    AND c.occurred_at >= %s AND c.occurred_at < %s) AS c "
            f"WHERE {condition} ON CONFLICT DO NOTHING",
            (
                batch_id,
                batch["organization_id"],
                batch["window_start"],
                batch["window_end"],
                *parameters,
            ),
        ).rowcount
        _analyze(conn, "correction_voids")
    return voided


def _analyze(conn: psycopg.Connection, table: str) -> None:
    """Fresh statistics of a table a batch just filled, so that the commit's plan fits a batch
    of a million as well as one of ten (autovacuum would see to it only later)."""
    conn.execute(f"ANALYZE {table}")


def discard(conn: psycopg.Connection, batch_id: int) -> None:
    """End a draft; what it staged stays, unused."""
    with conn.transaction():
        _batch_for_update(conn, batch_id, "draft")
        conn.execute(
            "UPDATE correction_batches SET state = 'discarded', discarded_at = odavl_now() "
            "WHERE id = %s",
            (batch_id,),
        )


# --- what a batch changes ------------------------------------------------------------------

# the events a batch touches: those it carries or voids, and with --replace every event of its
# window (one pass over the organization's events)
TOUCHED_WITH_WINDOW = """
    SELECT c.* FROM usage_current AS c
    LEFT JOIN keys AS k USING (event_id)
    WHERE c.organization_id = %(org)s
      AND (k.event_id IS NOT NULL OR (c.occurred_at >= %(start)s AND c.occurred_at < %(end)s))
"""
# ... without --replace, those it carries or voids
TOUCHED_BY_KEY = "SELECT c.* FROM {current}"

KEY_COUNT = """
    SELECT (SELECT count(*) FROM correction_records WHERE batch_id = %(batch)s)
         + (SELECT count(*) FROM correction_voids WHERE batch_id = %(batch)s)
"""

# The entries a draft's commit writes (temp table `entries`), from the events it touches as they
# are now: a record of a new key adds a version (+1); a record of a known key that differs from
# its current version retracts that version if it counts (-1) and adds its own (+1); a void, or
# with --replace an event of the window the batch does not carry, retracts the counted version.
ENTRIES = """
    INSERT INTO entries
    WITH keys AS (
        SELECT event_id FROM correction_records WHERE batch_id = %(batch)s
        UNION
        SELECT event_id FROM correction_voids WHERE batch_id = %(batch)s),
    touched AS ({touched}),
    records AS (
        SELECT * FROM correction_records WHERE batch_id = %(batch)s)
    SELECT t.event_id, -1 AS sign, t.event_type, t.occurred_at, t.quantity, t.project_id,
           t.user_email, t.payload, NULL::text AS file_name, NULL::integer AS line_no,
           CASE WHEN r.event_id IS NULL THEN 'voided' ELSE 'amended' END AS action,
           t.occurred_at AS was_at
    FROM touched AS t
    LEFT JOIN records AS r USING (event_id)
    WHERE t.live AND (r.event_id IS NULL OR r.payload <> t.payload)
    UNION ALL
    SELECT r.event_id, 1, r.event_type, r.occurred_at, r.quantity, r.project_id, r.user_email,
           r.payload, r.file_name, r.line_no,
           CASE WHEN t.event_id IS NULL THEN 'added' ELSE 'amended' END, t.occurred_at
    FROM records AS r
    LEFT JOIN touched AS t USING (event_id)
    WHERE t.event_id IS NULL OR NOT t.live OR r.payload <> t.payload
"""

ENTRIES_TABLE = """
    CREATE TEMP TABLE entries (
        event_id varchar(200), sign integer, event_type usage_event_type, occurred_at timestamptz,
        quantity integer, project_id integer, user_email text, payload jsonb, file_name text,
        line_no integer, action text, was_at timestamptz
    ) ON COMMIT DROP
"""

# the span of the entries' occurrences
ENTRY_SPAN = "SELECT min(occurred_at), max(occurred_at) FROM entries"

# what the batch changes per event type and billing period (their starts and ends given)
ENTRY_SUMS = """
    SELECT e.event_type::text, p.period_start, sum(e.sign * e.quantity)::bigint
    FROM entries AS e
    JOIN unnest(%s::timestamptz[], %s::timestamptz[]) AS p(period_start, period_end)
      ON e.occurred_at >= p.period_start AND e.occurred_at < p.period_end
    GROUP BY 1, 2
"""

COUNTS = """
    SELECT count(*) FILTER (WHERE sign = 1 AND action = 'added'),
           count(*) FILTER (WHERE sign = 1 AND action = 'amended'),
           count(*) FILTER (WHERE sign = -1 AND action = 'voided')
    FROM entries
"""


def preview(conn: psycopg.Connection, marts_path: Path, batch_id: int) -> dict:
    """What committing the batch changes, changing nothing (CONTRACT.md section 8). A committed
    or reverted batch shows what it changed when committed."""
    batch = _batch(conn, batch_id)
    result = {
        "batch": batch_id,
        "state": batch["state"],
        "rejected": rejected_lines(conn, batch_id),
    }
    conn.rollback()
    if batch["state"] != "draft":
        return {**result, "events": _counts(batch), "changes": batch["changes"] or []}
    with conn.transaction():
        events, changes = _stage(conn, marts_path, batch)
        raise psycopg.Rollback  # a preview changes nothing
    return {**result, "events": events, "changes": changes}


def _stage(conn: psycopg.Connection, marts_path: Path, batch: dict) -> tuple[dict, list]:
    """Within a transaction: temp table `entries`, the counts and the changes per period.
    Refused when the batch amends an event that now occurs outside its window."""
    events = _entries(conn, batch)
    moved_out = conn.execute(
        "SELECT event_id, was_at FROM entries WHERE sign = 1 AND action = 'amended' "
        "AND NOT (was_at >= %s AND was_at < %s) ORDER BY event_id LIMIT 5",
        (batch["window_start"], batch["window_end"]),
    ).fetchall()
    if moved_out:
        raise CorrectionRefused(
            f"batch {batch['id']} amends events that now occur outside its window "
            f"(another batch moved them): "
            + ", ".join(f"{event_id} at {at.isoformat()}" for event_id, at in moved_out)
        )
    return events, _changes(conn, marts_path, batch)


def _entries(conn: psycopg.Connection, batch: dict) -> dict:
    """Within a transaction: temp table `entries` of the batch as things are now; how many
    events it adds, amends and voids."""
    # a batch's records and voids are sorted and hashed in memory: a million of each fit
    conn.execute("SET LOCAL work_mem = '256MB'")
    conn.execute(ENTRIES_TABLE)
    values = {
        "org": batch["organization_id"],
        "batch": batch["id"],
        "start": batch["window_start"],
        "end": batch["window_end"],
    }
    if batch["replace"]:
        touched = TOUCHED_WITH_WINDOW
    else:
        [(keys,)] = conn.execute(KEY_COUNT, values).fetchall()
        touched = TOUCHED_BY_KEY.format(current=_current_versions("keys", keys))
    conn.execute(ENTRIES.format(touched=touched), values)
    counts = conn.execute(COUNTS).fetchone()
    assert counts is not None  # an aggregate without GROUP BY returns exactly one row
    added, amended, voided = counts
    return {"added": added, "amended": amended, "voided": voided}


def _changes(conn: psycopg.Connection, marts_path: Path, batch: dict) -> list[dict]:
    """One change per period and metric whose billed `used` moves: a closed period's
    difference is booked into the period open now (`booked_in`), whose figure takes it. The
    entries are summed per period in the database: memory stays flat in the batch's size."""
    span = conn.execute(ENTRY_SPAN).fetchone()
    assert span is not None  # an aggregate without GROUP BY returns exactly one row
    first, last = span
    if first is None:
        return []
    now = clock.now()
    periods = _periods(conn, batch["organization_id"], min(first, now), max(last, now))
    deltas: dict[tuple[datetime, str], int] = {}
    for event_type, start, quantity in conn.execute(
        ENTRY_SUMS, ([*periods], [end for end, _, _ in periods.values()])
    ).fetchall():
        metric = METRIC_OF_EVENT_TYPE[event_type]
        if metric in QUOTA_METRICS:
            deltas[start, metric] = deltas.get((start, metric), 0) + quantity
    open_now = _period_of(periods, now)
    booked: dict[str, int] = {}
    for (start, metric), quantity in deltas.items():
        if periods[start][2]:
            booked[metric] = booked.get(metric, 0) + quantity
    figures = _billed(marts_path, batch["org"])
    changes = []
    for start in sorted({start for start, _ in deltas} | ({open_now[0]} if booked else set())):
        end, period_quotas, closed = periods[start]
        for metric in QUOTA_METRICS:
            delta = deltas.get((start, metric), 0)
            own = delta if not closed else 0
            taken = booked.get(metric, 0) if start == open_now[0] else 0
            if delta == 0 and taken == 0:
                continue
            before, quota = figures.get((start, metric), (0, period_quotas[metric]))
            after = before + (delta if closed else own + taken)
            changes.append(
                {
                    "org": batch["org"],
                    "metric": metric,
                    "period_start": start.isoformat(),
                    "period_end": end.isoformat(),
                    "closed": closed,
                    "used_before": before,
                    "used_after": after,
                    "quota": quota,
                    "overage_before": max(before - quota, 0),
                    "overage_after": max(after - quota, 0),
                    "booked_in": open_now[0].isoformat() if closed else None,
                }
            )
    return changes


def _periods(
    conn: psycopg.Connection, org_id: int, first: datetime, last: datetime
) -> dict[datetime, tuple[datetime, dict[str, int], bool]]:
    """The organization's billing periods from the one holding `first` to the one holding
    `last`, by start: (end, quotas, closed). Closed ones as recorded, the others drawn by the
    plan history, as the marts draw them."""
    closed = {
        start: (end, dict(figures or {}), True)
        for start, end, figures in conn.execute(
            "SELECT c.period_start, c.period_end, "
            "  (SELECT jsonb_object_agg(u.metric, u.quota) FROM billing_close_usage AS u "
            "   WHERE u.organization_id = c.organization_id AND u.period_start = c.period_start) "
            "FROM billing_closes AS c WHERE c.organization_id = %s ORDER BY c.period_start",
            (org_id,),
        ).fetchall()
    }
    history = [
        PlanVersion(effective_at, tier, anchor, quotas(tier, limits))
        for effective_at, tier, anchor, limits in conn.execute(
            "SELECT effective_at, tier::text, anchor, jsonb_build_object('analyses', "
            "analyses_limit, 'fixes', fixes_limit, 'audits', audits_limit) "
            "FROM plan_versions WHERE organization_id = %s ORDER BY effective_at, id",
            (org_id,),
        ).fetchall()
    ] or [PlanVersion(ALWAYS_BEFORE, "FREE", None, quotas("FREE", {}))]
    periods = dict(closed)
    covered = sorted((start, end) for start, (end, _, _) in closed.items())
    for period in rated_periods(history, first, last):
        for start, end in uncovered(period.start, period.end, covered):
            periods[start] = (end, period.quotas, False)
    for _end, figures, is_closed in periods.values():
        if is_closed:  # closed before migration 0006, it kept no quotas
            for metric in QUOTA_METRICS:
                figures.setdefault(metric, 0)
    return dict(sorted(periods.items()))


def _period_of(periods: dict, at: datetime) -> tuple[datetime, tuple]:
    for start, value in periods.items():
        if start <= at < value[0]:
            return start, value
    raise AssertionError(f"no billing period holds {at}")  # _periods covers first..last


def _billed(marts_path: Path, org: str) -> dict[tuple[datetime, str], tuple[int, int]]:
    """The published `used` and `quota` of the organization's periods, by (start, metric)."""
    from odavl_pipeline.marts.store import MartsNotBuilt, open_marts

    try:
        with open_marts(marts_path) as marts:
            rows = marts.execute(
                "SELECT period_start, metric, used, quota FROM billing_periods WHERE org = ?",
                [org],
            ).fetchall()
    except MartsNotBuilt:
        return {}
    return {(start, metric): (used, quota) for start, metric, used, quota in rows}


# --- commit and revert -----------------------------------------------------------------------


def commit(conn: psycopg.Connection, marts_path: Path, batch_id: int) -> bool:
    """Apply a draft whole, in one transaction; returns False when it was committed already
    (a second commit, or one after a crash, changes nothing). The marts are rebuilt after."""
    with conn.transaction():
        batch = _batch_for_update(conn, batch_id, "draft", "committed")
        if batch["state"] == "committed":
            return False
        rejected = rejected_lines(conn, batch_id)
        if rejected:
            first = rejected[0]
            raise CorrectionRefused(
                f"batch {batch_id} has {len(rejected)} rejected record(s), the first at "
                f"{first['file']}:{first['line']} ({first['reason']}: {first['detail']}): "
                "add the file again once corrected"
            )
        _take_usage_lock(conn)
        events, changes = _stage(conn, marts_path, batch)
        conn.execute(
            "INSERT INTO usage_corrections (batch_id, reverting, organization_id, event_id, "
            "sign, event_type, occurred_at, quantity, project_id, user_email, payload, "
            "file_name, line_no, booked_at) "
            "SELECT %s, false, %s, event_id, sign, event_type, occurred_at, quantity, "
            "project_id, user_email, payload, file_name, line_no, odavl_now() FROM entries "
            "ORDER BY event_id, sign",
            (batch_id, batch["organization_id"]),
        )
        conn.execute(
            "UPDATE correction_batches SET state = 'committed', committed_at = odavl_now(), "
            "changes = %s, added = %s, amended = %s, voided = %s WHERE id = %s",
            (
                json.dumps(changes),
                events["added"],
                events["amended"],
                events["voided"],
                batch_id,
            ),
        )
    return True


def revert(conn: psycopg.Connection, batch_id: int, reason: str, by: str) -> bool:
    """Put back each event's version from before the batch, booking the opposite entries now;
    returns False when it was reverted already. Refused while a later committed batch changed
    one of the same events (revert that one first)."""
    if not reason.strip():
        raise CorrectionRefused("--reason is empty: say why the batch is reverted")
    with conn.transaction():
        batch = _batch_for_update(conn, batch_id, "committed", "reverted")
        if batch["state"] == "reverted":
            return False
        later = [
            later_id
            for (later_id,) in conn.execute(
                "SELECT DISTINCT x.batch_id FROM usage_corrections AS x "
                "JOIN correction_batches AS b ON b.id = x.batch_id AND b.state = 'committed' "
                "WHERE x.organization_id = %(org)s AND x.batch_id <> %(batch)s "
                "  AND x.id > (SELECT max(id) FROM usage_corrections WHERE batch_id = %(batch)s) "
                "  AND x.event_id IN (SELECT event_id FROM usage_corrections "
                "                     WHERE batch_id = %(batch)s) "
                "ORDER BY 1",
                {"org": batch["organization_id"], "batch": batch_id},
            ).fetchall()
        ]
        if later:
            raise CorrectionRefused(
                f"batch {batch_id} cannot be reverted: later committed batch(es) "
                f"{', '.join(map(str, later))} changed the same events; revert them first"
            )
        _take_usage_lock(conn)
        conn.execute(
            "INSERT INTO usage_corrections (batch_id, reverting, organization_id, event_id, "
            "sign, event_type, occurred_at, quantity, project_id, user_email, payload, "
            "file_name, line_no, booked_at) "
            "SELECT batch_id, true, organization_id, event_id, -sign, event_type, occurred_at, "
            "quantity, project_id, user_email, payload, file_name, line_no, odavl_now() "
            "FROM usage_corrections WHERE batch_id = %s AND NOT reverting ORDER BY id DESC",
            (batch_id,),
        )
        conn.execute(
            "UPDATE correction_batches SET state = 'reverted', reverted_at = odavl_now(), "
            "revert_reason = %s, reverted_by = %s WHERE id = %s",
            (reason, by, batch_id),
        )
    return True


# --- reading batches ---------------------------------------------------------------------------

BATCHES = """
    SELECT b.id, o.slug AS org, b.organization_id, b.window_start, b.window_end, b.state,
           b.replace, b.reason, b.created_by, b.created_at, b.committed_at, b.reverted_at,
           b.reverted_by, b.revert_reason, b.changes, b.added, b.amended, b.voided
    FROM correction_batches AS b
    JOIN organizations AS o ON o.id = b.organization_id
"""


def listing(conn: psycopg.Connection, org: str | None = None) -> list[dict]:
    """Every batch (of one organization), newest first, as CONTRACT.md section 8 lists them."""
    if org is not None:
        _org_id(conn, org)
    rows = _rows(
        conn, f"{BATCHES} WHERE %s::text IS NULL OR o.slug = %s ORDER BY b.id DESC", (org, org)
    )
    conn.rollback()
    return [_listed(row, conn) for row in rows]


def show(conn: psycopg.Connection, batch_id: int) -> dict:
    """A batch as listed, with its revert's reason and author and its changes as committed."""
    batch = _batch(conn, batch_id)
    conn.rollback()
    return {
        **_listed(batch, conn),
        "reverted_by": batch["reverted_by"],
        "revert_reason": batch["revert_reason"],
        "changes": batch["changes"] or [],
    }


def _listed(batch: dict, conn: psycopg.Connection) -> dict:
    return {
        "id": batch["id"],
        "org": batch["org"],
        "start": batch["window_start"].isoformat(),
        "end": batch["window_end"].isoformat(),
        "state": batch["state"],
        "replace": batch["replace"],
        "reason": batch["reason"],
        "by": batch["created_by"],
        "created_at": batch["created_at"].isoformat(),
        "committed_at": _iso(batch["committed_at"]),
        "reverted_at": _iso(batch["reverted_at"]),
        "events": _counts(batch) if batch["state"] != "draft" else _draft_counts(conn, batch),
    }


def _draft_counts(conn: psycopg.Connection, batch: dict) -> dict:
    """What a draft would add, amend and void if committed now (a preview's counts)."""
    conn.rollback()
    with conn.transaction():
        counts = _entries(conn, batch)
        raise psycopg.Rollback
    return counts


def _counts(batch: dict) -> dict:
    return {"added": batch["added"], "amended": batch["amended"], "voided": batch["voided"]}


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def rejected_lines(conn: psycopg.Connection, batch_id: int, limit: int | None = None) -> list[dict]:
    """The lines `add` refused for the batch (the first `limit`), by file and line."""
    return [
        {"file": file_name, "line": line_no, "reason": reason, "detail": detail}
        for file_name, line_no, reason, detail in conn.execute(
            "SELECT file_name, line_no, reason, detail FROM correction_rejects "
            "WHERE batch_id = %s ORDER BY file_name, line_no LIMIT %s",
            (batch_id, limit),
        ).fetchall()
    ]


def _rows(conn: psycopg.Connection, query: str, parameters: tuple) -> list[dict]:
    cursor = conn.execute(query, parameters)
    assert cursor.description is not None  # a query that returns rows describes them
    names = [column.name for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _batch(conn: psycopg.Connection, batch_id: int, lock: bool = False) -> dict:
    rows = _rows(
        conn, f"{BATCHES} WHERE b.id = %s{' FOR UPDATE OF b' if lock else ''}", (batch_id,)
    )
    if not rows:
        raise CorrectionRefused(f"no correction batch {batch_id}: `corrections list` shows them")
    return rows[0]


def _batch_for_update(conn: psycopg.Connection, batch_id: int, *states: str) -> dict:
    """The batch, locked until the transaction ends; refused unless in one of `states`."""
    batch = _batch(conn, batch_id, lock=True)
    if batch["state"] not in states:
        raise CorrectionRefused(
            f"batch {batch_id} is {batch['state']}: this needs a {' or '.join(states)} batch"
        )
    return batch


def _take_usage_lock(conn: psycopg.Connection) -> None:
    """Until the transaction ends, no usage is written but this: the usage writers share the
    lock (ingest/writer.py), so none is writing a key of the batch meanwhile, and the marts' cut
    (marts/extract.py, usage_cut) orders the entries among the landed rows."""
    take_source(conn, "usage_events")


def _org_id(conn: psycopg.Connection, org: str) -> int:
    row = conn.execute("SELECT id FROM organizations WHERE slug = %s", (org,)).fetchone()
    if row is None:
        raise CorrectionRefused(f"no organization with slug {org!r}")
    return row[0]
