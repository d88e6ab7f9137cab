"""Bulk ingestion of one landing file (or a set of quarantined lines) into PostgreSQL.

A file is one transaction: its records, its quarantine rows and its ledger row
commit together, so a crash never leaves a file half-counted. Within it, lines
move in batches: validated in Python by `staging` (in a parser process, while this
one writes the previous batch), COPY'd into a temporary staging table, then one
set-based `INSERT … SELECT … ON CONFLICT DO NOTHING RETURNING` per batch. The few
lines it did not insert repeat an accepted record (a duplicate: the same JSON value)
or conflict with it. Rejected lines wait in a temporary table until the file ends: then
the identical ones of the file become one quarantine row with all their line numbers.
"""

import heapq
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass

import psycopg
from psycopg import Cursor

from odavl_pipeline.db.locks import lock_file, share_source
from odavl_pipeline.domain.records import RETRYABLE_REASONS, Reason
from odavl_pipeline.ingest import chains
from odavl_pipeline.ingest.landing import LandedFile, UnreadableFile, sha256_of
from odavl_pipeline.ingest.sources import COMMON_STAGE, SPECS, SourceSpec, source_limits
from odavl_pipeline.ingest.staging import (
    Batch,
    Line,
    PreparedFile,
    References,
    Rejects,
    validated_batches,
)
from odavl_pipeline.ingest.zones import LandingZone


@dataclass
class Counts:
    files: int = 0
    lines: int = 0
    accepted: int = 0
    duplicate: int = 0
    pending: int = 0
    rejected: int = 0

    def add(self, other: "Counts") -> None:
        for name in self.as_dict():
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _load_references(cur: Cursor) -> References:
    """The organizations and projects by slug, in two queries."""
    orgs: dict[str, int] = dict(cur.execute("SELECT slug, id FROM organizations").fetchall())
    projects = {
        (org_id, slug): project_id
        for org_id, slug, project_id in cur.execute(
            "SELECT organization_id, slug, id FROM projects"
        ).fetchall()
    }
    return References(orgs, projects)


def prepare_file(
    conn: psycopg.Connection, zone: LandingZone, landed: LandedFile
) -> PreparedFile | None:
    """Hash a landed file, reserve its ledger id and read the references; None when this
    content was already ingested."""
    with zone.open(landed.location) as handle:
        size_bytes, mtime_ns = zone.status(handle)
        digest = sha256_of(handle)
    with conn.transaction(), conn.cursor() as cur:
        if _already_ingested(cur, landed, digest):
            # the ledger learns the file's time, so that `pending_days` need not read it again
            cur.execute(
                "UPDATE ingested_files SET mtime_ns = %s WHERE source = %s AND path = %s "
                "AND sha256 = %s AND mtime_ns IS DISTINCT FROM %s",
                (mtime_ns, landed.source, landed.relative_path, digest, mtime_ns),
            )
            return None
        row = cur.execute(
            "SELECT nextval(pg_get_serial_sequence('ingested_files', 'id'))"
        ).fetchone()
        assert row is not None  # nextval returns exactly one row
        file_id = row[0]
        return PreparedFile(landed, digest, file_id, _load_references(cur), size_bytes, mtime_ns)


def ingest_file(
    conn: psycopg.Connection,
    prepared: PreparedFile,
    batches: Iterable[Batch],
    run_id: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> Counts | None:
    """Ingest one prepared file, from its validated batches, in one transaction; None when
    another run ingested it first (its batches are then left unread)."""
    landed, file_id = prepared.landed, prepared.file_id
    spec = SPECS[landed.source]
    with conn.transaction(), conn.cursor() as cur:
        lock_file(cur, spec.name, landed.relative_path)
        share_source(cur, spec.name)
        if _already_ingested(cur, landed, prepared.sha256):
            return None
        forget_unread(cur, spec.name, landed.relative_path)
        cur.execute(
            "INSERT INTO ingested_files (id, source, path, day, sha256, size_bytes, mtime_ns, "
            "run_id, lines, accepted, duplicate, pending, rejected) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 0, 0, 0, 0, 0)",
            (file_id, spec.name, landed.relative_path, landed.day, prepared.sha256)
            + (prepared.size_bytes, prepared.mtime_ns, run_id),
        )
        _create_stage(cur, spec)
        try:
            with conn.transaction():  # a savepoint: an unreadable file leaves nothing behind
                lines, duplicates, touched = _write_batches(cur, spec, prepared, batches, progress)
        except UnreadableFile as error:
            lines, duplicates, touched = 1, Counter[int](), {file_id}
            cur.execute(
                "INSERT INTO quarantine (source, file_id, line_no, reason, detail) "
                "VALUES (%s, %s, NULL, %s, %s)",
                (spec.name, file_id, Reason.UNREADABLE_FILE.value, storable(str(error))),
            )
        _settle_ledger(cur, spec, duplicates, touched, lines={file_id: lines})
        counted = cur.execute(
            "SELECT lines, accepted, duplicate, pending, rejected FROM ingested_files "
            "WHERE id = %s",
            (file_id,),
        ).fetchone()
        assert counted is not None  # the ledger row inserted above, in this transaction
        return Counts(1, *counted)


def _write_batches(
    cur: Cursor,
    spec: SourceSpec,
    prepared: PreparedFile,
    batches: Iterable[Batch],
    progress: Callable[[str], None] | None,
) -> tuple[int, Counter[int], set[int]]:
    """Write a file's batches; its lines, the duplicates found per file, and the files whose
    lines changed outcome (attestation chains settled by this file's arrival)."""
    lines, duplicates, touched, rejected = 0, Counter[int](), {prepared.file_id}, 0
    for number, batch in enumerate(batches):
        lines += batch.lines
        rejected += _write_batch(cur, spec, batch, number, duplicates)
        if progress:
            progress(f"{prepared.landed.relative_path}: {lines:,} lines")
    if rejected:
        _quarantine_rejects(cur, spec.name)
    for statement in spec.after_file:
        cur.execute(statement)
    if spec.name == "fix_attestations":
        touched |= chains.settle_attestation_chains(cur)
    return lines, duplicates, touched


def _already_ingested(cur: Cursor, landed: LandedFile, digest: str) -> bool:
    return (
        cur.execute(
            "SELECT 1 FROM ingested_files WHERE source = %s AND path = %s AND sha256 = %s "
            "AND status = 'ingested'",
            (landed.source, landed.relative_path, digest),
        ).fetchone()
        is not None
    )


@dataclass(frozen=True)
class RetryOutcome:
    lines: int = 0
    landed: int = 0  # accepted, or pending for attestations
    duplicate: int = 0
    rejected: int = 0


def retry_quarantine(conn: psycopg.Connection, source: str) -> RetryOutcome:
    """Re-ingest quarantined `unknown_org`/`unknown_project` lines whose org or project now exists.

    The retried lines leave the quarantine (those that still fail come back with their
    new reason) and their files' ledger rows follow.
    """
    spec = SPECS[source]
    with conn.transaction(), conn.cursor() as cur:
        share_source(cur, spec.name)
        cur.execute("DROP TABLE IF EXISTS pg_temp.retried")
        cur.execute(
            "CREATE TEMPORARY TABLE retried (file_id bigint, line_no integer) ON COMMIT DROP"
        )
        cur.execute(
            """WITH gone AS (
                   DELETE FROM quarantine q
                   WHERE q.source = %s AND q.reason = ANY(%s)
                     AND EXISTS (SELECT 1 FROM organizations o
                                 LEFT JOIN projects p ON p.organization_id = o.id
                                                     AND p.slug = q.project_slug
                                 WHERE o.slug = q.org_slug
                                   AND (q.reason = 'unknown_org' OR p.id IS NOT NULL))
                   RETURNING q.file_id, q.line_no, q.more_line_nos, q.raw
               ), listed AS (
                   INSERT INTO retried
                   SELECT g.file_id, n
                   FROM gone g, unnest(g.line_no || coalesce(g.more_line_nos, '{}')) AS n
               )
               SELECT file_id, line_no, more_line_nos, raw FROM gone ORDER BY file_id, line_no""",
            (source, [reason.value for reason in RETRYABLE_REASONS]),
        )
        entries = cur.fetchall()
        if not entries:
            return RetryOutcome()
        refs = _load_references(cur)
        _create_stage(cur, spec)
        duplicates: Counter[int] = Counter()
        touched = {file_id for file_id, *_ in entries}
        lines = heapq.merge(
            *(_entry_lines(*entry) for entry in entries),
            key=lambda line: (line.file_id, line.line_no),
        )
        rejected = 0
        for number, batch in enumerate(
            validated_batches(spec, refs, lines, source_limits(spec.name))
        ):
            rejected += _write_batch(cur, spec, batch, number, duplicates)
        if rejected:
            _quarantine_rejects(cur, spec.name)
        for statement in spec.after_file:
            cur.execute(statement)
        if spec.name == "fix_attestations":
            touched |= chains.settle_attestation_chains(cur)
        _settle_ledger(cur, spec, duplicates, touched)
        cur.execute("ANALYZE retried")
        row = cur.execute(
            f"""SELECT count(*), count(t.line_no) FROM retried r
                LEFT JOIN {spec.table} t ON t.file_id = r.file_id AND t.line_no = r.line_no"""
        ).fetchone()
        assert row is not None  # an aggregate without GROUP BY returns exactly one row
        retried, landed = row
        duplicate = sum(duplicates.values())
        return RetryOutcome(retried, landed, duplicate, retried - landed - duplicate)


def _entry_lines(
    file_id: int, line_no: int, more_line_nos: list[int] | None, raw: str
) -> Iterator[Line]:
    """The lines of one quarantine row, in order."""
    data = raw.encode()
    for number in (line_no, *(more_line_nos or ())):
        yield Line(file_id, number, data, len(data))


def _settle_ledger(
    cur: Cursor,
    spec: SourceSpec,
    duplicates: Counter[int],
    touched: set[int],
    lines: dict[int, int] | None = None,
) -> None:
    """Recount the touched files' outcomes from where their lines now are, in one statement.

    Accepted and pending lines are rows of the table, rejected ones the lines of quarantine
    rows, duplicates are counted as they are found. The ledger's CHECK constraint
    (lines = accepted + duplicate + pending + rejected) then proves no line was lost.
    """
    lines = lines or {}
    ids = sorted(touched)
    chained = spec.name == "fix_attestations"
    verified = "AND t.chain_status = 'verified'" if chained else ""
    pending = (
        (
            f"(SELECT count(*) FROM {spec.table} t WHERE t.file_id = f.id "
            f"AND t.chain_status = 'pending')"
        )
        if chained
        else "0"
    )
    cur.execute(
        f"""UPDATE ingested_files f SET
                lines = COALESCE(v.lines, f.lines),
                duplicate = f.duplicate + v.duplicates,
                accepted = (SELECT count(*) FROM {spec.table} t WHERE t.file_id = f.id {verified}),
                pending = {pending},
                rejected = (SELECT coalesce(sum(q.lines), 0) FROM quarantine q
                            WHERE q.file_id = f.id)
            FROM unnest(%s::bigint[], %s::integer[], %s::integer[]) AS v(id, lines, duplicates)
            WHERE f.id = v.id""",
        (ids, [lines.get(i) for i in ids], [duplicates.get(i, 0) for i in ids]),
    )


def forget_unread(cur: Cursor, source: str | None, path: str) -> None:
    """Drop the failed or misplaced rows of a path (with their quarantine rows)."""
    unread = (
        "SELECT id FROM ingested_files WHERE source IS NOT DISTINCT FROM %(source)s "
        "AND path = %(path)s AND status <> 'ingested'"
    )
    params = {"source": source, "path": path}
    cur.execute(f"DELETE FROM quarantine WHERE file_id IN ({unread})", params)
    cur.execute(f"DELETE FROM ingested_files WHERE id IN ({unread})", params)


def _create_stage(cur: Cursor, spec: SourceSpec) -> None:
    """The staging table, and what the source notes per file (its `before_file`)."""
    columns = ", ".join(f'"{name}" {kind}' for name, kind in COMMON_STAGE + spec.stage_columns)
    cur.execute("DROP TABLE IF EXISTS stage")
    cur.execute(f"CREATE TEMPORARY TABLE stage ({columns}) ON COMMIT DROP")
    for statement in spec.before_file:
        cur.execute(statement)


def _write_batch(
    cur: Cursor, spec: SourceSpec, batch: Batch, number: int, duplicates: Counter[int]
) -> int:
    """Insert the staged lines, classify the others, stage the rejects for the quarantine.

    Counts the duplicates found, per file; returns how many lines were rejected.
    """
    cur.execute("TRUNCATE stage")
    leftovers: list[tuple[int, int]] = []
    if batch.staged_lines:
        _copy_into_stage(cur, spec, batch.staged)
        inserted = set(cur.execute(spec.insert_sql).fetchall())
        if len(inserted) < len(batch.staged_lines):
            leftovers = [line for line in batch.staged_lines if line not in inserted]
    if batch.repeat_lines:
        _copy_into_stage(cur, spec, batch.repeats)
        leftovers += batch.repeat_lines
    if leftovers:
        _classify(cur, spec, leftovers, batch.rejects, duplicates)
    _stage_rejects(cur, batch.rejects, number)
    return len(batch.rejects)


def _copy_into_stage(cur: Cursor, spec: SourceSpec, copy_data: bytes) -> None:
    names = ", ".join(f'"{name}"' for name, _ in COMMON_STAGE + spec.stage_columns)
    with cur.copy(f"COPY stage ({names}) FROM STDIN (FORMAT csv)") as copy:
        copy.write(copy_data)


def _classify(
    cur: Cursor,
    spec: SourceSpec,
    lines: list[tuple[int, int]],
    rejects: Rejects,
    duplicates: Counter[int],
) -> None:
    """Each of these staged lines repeats the accepted record of its key or one of its corrected
    versions (a duplicate: the same JSON value) or conflicts with it (quarantined with its
    organization and project)."""
    cur.execute(
        f"""SELECT s.file_id, s.line_no, t.payload = s.payload::jsonb OR {spec.other_versions},
                   s.payload, f.path, t.line_no,
                   s.payload::jsonb ->> 'org', s.payload::jsonb ->> 'project'
            FROM unnest(%s::bigint[], %s::integer[]) AS l(file_id, line_no)
            JOIN stage s ON s.file_id = l.file_id AND s.line_no = l.line_no
            LEFT JOIN {spec.table} t ON t.{spec.scope_column} = s.scope_id
                                    AND t.{spec.key_column} = s.key
            LEFT JOIN ingested_files f ON f.id = t.file_id""",
        ([file_id for file_id, _ in lines], [line_no for _, line_no in lines]),
    )
    for file_id, line_no, same, raw, kept_path, kept_line, org, project in cur.fetchall():
        if same:
            duplicates[file_id] += 1
            continue
        where = f"{kept_path}:{kept_line}" if kept_path else "an earlier record"
        rejects.add(
            file_id,
            line_no,
            Reason.CONFLICTING_DUPLICATE.value,
            f"{spec.key_column}: already accepted with different content from {where}",
            raw,
            org,
            project,
        )


# A quarantine row holds the line numbers of at most this many batches of a file (ten million
# lines, 40 MB), far below what one PostgreSQL value may hold (1 GB).
BATCHES_PER_QUARANTINE_ROW = 2_000


def _stage_rejects(cur: Cursor, rejects: Rejects, batch: int) -> None:
    """Keep a batch's rejected lines in a temporary table until the end of the transaction: each
    entry with its line numbers as text ("3,5,8")."""
    if not rejects.groups:
        return
    cur.execute(
        "CREATE TEMPORARY TABLE IF NOT EXISTS staged_rejects (file_id bigint, batch integer, "
        "line_nos text, reason text, detail text, raw text, org_slug text, project_slug text) "
        "ON COMMIT DROP"
    )
    with cur.copy(
        "COPY staged_rejects (file_id, batch, line_nos, reason, detail, raw, org_slug, "
        "project_slug) FROM STDIN"
    ) as copy:
        for file_id, line_nos, *texts in rejects.entries():
            numbers = ",".join(map(str, line_nos))
            copy.write_row([file_id, batch, numbers, *(storable(t) if t else t for t in texts)])


def _quarantine_rejects(cur: Cursor, source: str) -> None:
    """Move the staged rejects into the quarantine: the identical lines of a file (the same text,
    reason, detail and slugs) as one row holding all their line numbers.

    Batches come in line order and each lists its lines in order, so joining a group's lists in
    batch order lists its lines in order."""
    cur.execute(
        """INSERT INTO quarantine (source, file_id, line_no, more_line_nos, lines, reason, detail,
                                   raw, org_slug, project_slug)
           SELECT %s, file_id, line_nos[1], nullif(line_nos[2:], '{}'), cardinality(line_nos),
                  reason, detail, raw, org_slug, project_slug
           FROM (SELECT file_id, reason, detail, raw, org_slug, project_slug,
                        ('{' || string_agg(line_nos, ',' ORDER BY batch) || '}')::integer[]
                            AS line_nos
                 FROM staged_rejects
                 GROUP BY file_id, batch / %s, reason, detail, raw, org_slug, project_slug
                ) AS grouped
           ORDER BY file_id, line_nos[1]""",
        (source, BATCHES_PER_QUARANTINE_ROW),
    )
    cur.execute("TRUNCATE staged_rejects")


def storable(text: str) -> str:
    """Text PostgreSQL takes, whatever a rejected line or an error held: NUL and lone surrogates
    escaped."""
    if text.isascii():
        return text.replace("\x00", "\\x00")
    return text.encode("utf-8", "backslashreplace").decode().replace("\x00", "\\x00")
