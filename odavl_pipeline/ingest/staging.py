"""Staging: landing lines validated into batches of COPY data, without a database.

This runs where a file is parsed (the parser process, or in-process for a quarantine
retry); the writer only sends the batches' bytes and classifies what it did not insert.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from odavl_pipeline import clock
from odavl_pipeline.domain.records import Limits, Reason, Rejected, parse_record
from odavl_pipeline.ingest.landing import MAX_LINE_BYTES, LandedFile, UnreadableFile
from odavl_pipeline.ingest.sources import SourceSpec

BATCH_SIZE = 5_000
FIRST_BATCH_SIZE = 2_000  # small, so that writing starts while the next batch is parsed
BATCH_BYTES = 32 * 1024 * 1024  # a batch of long lines ends sooner: memory stays bounded


class Line(NamedTuple):
    """One non-blank landing line, with its provenance (a tuple: millions are made)."""

    file_id: int
    line_no: int
    raw: bytes
    length: int


@dataclass
class References:
    """Organizations and projects by slug, read once per file."""

    orgs: dict[str, int]
    projects: dict[tuple[int, str], int]


class Rejects:
    """Rejected lines, the identical ones of a file together: the same text, reason, detail and
    slugs are one entry with all their line numbers."""

    def __init__(self) -> None:
        self.groups: dict[tuple, list[int]] = {}

    def add(
        self,
        file_id: int,
        line_no: int,
        reason: str,
        detail: str,
        raw: str,
        org: str | None = None,
        project: str | None = None,
    ) -> list[int]:
        """Add a line; return the line numbers of its entry, for its repeats to be added to."""
        line_nos = self.groups.setdefault((file_id, reason, detail, raw, org, project), [])
        line_nos.append(line_no)
        return line_nos

    def entries(self) -> list[tuple[int, list[int], str, str, str, str | None, str | None]]:
        """(file_id, line numbers ascending, reason, detail, raw, org, project), by file and
        first line."""
        return sorted(
            (file_id, sorted(line_nos), *rest) for (file_id, *rest), line_nos in self.groups.items()
        )

    def __len__(self) -> int:
        """How many lines."""
        return sum(map(len, self.groups.values()))


@dataclass
class Batch:
    """One batch of lines, validated, ready to send: COPY data for the staging table.

    `staged` holds the first line of each key, `repeats` later lines of a key already
    staged in this batch (each as COPY CSV, with their (file_id, line_no) in order).
    """

    lines: int = 0
    staged_lines: list[tuple[int, int]] = field(default_factory=list)
    staged: bytes = b""
    repeat_lines: list[tuple[int, int]] = field(default_factory=list)
    repeats: bytes = b""
    rejects: Rejects = field(default_factory=Rejects)


@dataclass(frozen=True)
class PreparedFile:
    """A landed file about to be ingested: hashed, given its ledger id, its references read."""

    landed: LandedFile
    sha256: str
    file_id: int
    refs: References
    size_bytes: int
    mtime_ns: int  # taken before the bytes were read: a later change shows as another time


def validated_batches(
    spec: SourceSpec, refs: References, lines: Iterable[Line], limits: Limits
) -> Iterator[Batch]:
    """Validate lines into batches, their COPY data formatted."""
    size = FIRST_BATCH_SIZE
    builder = _BatchBuilder(limits)
    for line in lines:
        _stage_line(spec, refs, line, builder)
        if builder.batch.lines >= size or builder.bytes >= BATCH_BYTES:
            yield builder.finish()
            builder, size = _BatchBuilder(limits), BATCH_SIZE
    if builder.batch.lines:
        yield builder.finish()


class _BatchBuilder:
    """A batch being filled: its rows, and the keys already staged in it."""

    def __init__(self, limits: Limits):
        self.batch = Batch()
        self.limits = limits
        self.now = clock.now()
        self.staged: list[tuple] = []
        self.repeats: list[tuple] = []
        self.keys: set[tuple[int, str]] = set()
        self.bytes = 0
        # each line text rejected in this batch: (file_id, its entry's line numbers); its repeats
        # in the file are added there without being validated again
        self.rejected: dict[bytes, tuple[int, list[int]]] = {}

    def finish(self) -> Batch:
        batch = self.batch
        batch.staged_lines = [(row[0], row[1]) for row in self.staged]
        batch.staged = _copy_csv(self.staged)
        batch.repeat_lines = [(row[0], row[1]) for row in self.repeats]
        batch.repeats = _copy_csv(self.repeats)
        return batch


def _copy_csv(rows: list[tuple]) -> bytes:
    """Rows as COPY CSV: NULL unquoted and empty, every string quoted.

    Formatted where the batch is parsed, so the writing process only sends bytes.
    """
    return "".join(",".join(map(_csv_field, row)) + "\n" for row in rows).encode()


def _csv_field(value) -> str:
    kind = type(value)
    if kind is str:
        return '"' + value.replace('"', '""') + '"'
    if kind is int:
        return str(value)
    if value is None:
        return ""
    if kind is datetime:
        return value.isoformat()
    if kind is list:  # a text[] literal, itself quoted as one CSV field
        items = ('"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"' for item in value)
        return _csv_field("{" + ",".join(items) + "}")
    raise TypeError(f"no COPY format for {kind.__name__}")


def _stage_line(spec: SourceSpec, refs: References, line: Line, builder: _BatchBuilder) -> None:
    """Validate one line: stage it for insertion or record why it is rejected."""
    builder.batch.lines += 1
    builder.bytes += len(line.raw)
    whole = line.length == len(line.raw)  # not cut to its first MiB
    known = builder.rejected.get(line.raw) if whole else None
    if known is not None and known[0] == line.file_id:
        known[1].append(line.line_no)
        return
    obj: dict = {}
    text = ""
    try:
        if line.length > MAX_LINE_BYTES:
            raise Rejected(
                Reason.RECORD_TOO_LARGE,
                f"line is {line.length:,} bytes; the limit is {MAX_LINE_BYTES:,} "
                f"(the first {MAX_LINE_BYTES:,} bytes are kept)",
            )
        try:
            text = line.raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise UnreadableFile(f"not UTF-8 at line {line.line_no}, byte {error.start}") from None
        obj = parse_record(text)
        record = spec.validate(obj, builder.now, builder.limits)
        scope_id, project_id = _resolve(spec, refs, record)
    except Rejected as rejected:
        raw = (text or line.raw.decode("utf-8", errors="replace")).replace("\x00", "\ufffd")
        org = obj.get("org") if isinstance(obj.get("org"), str) else None
        project = obj.get("project") if isinstance(obj.get("project"), str) else None
        line_nos = builder.batch.rejects.add(
            line.file_id, line.line_no, rejected.reason.value, rejected.detail, raw, org, project
        )
        if whole:
            builder.rejected[line.raw] = (line.file_id, line_nos)
        return
    key = getattr(record, spec.key_column)
    row = (line.file_id, line.line_no, scope_id, key, text, *spec.row(record, project_id))
    if (scope_id, key) in builder.keys:
        builder.repeats.append(row)
    else:
        builder.keys.add((scope_id, key))
        builder.staged.append(row)


def _resolve(spec: SourceSpec, refs: References, record) -> tuple[int, int | None]:
    """The record's dedup scope id and project id, from the reference data."""
    org_id = refs.orgs.get(record.org)
    if org_id is None:
        raise Rejected(Reason.UNKNOWN_ORG, f"org: no organization with slug {record.org!r}")
    project_id = None
    if record.project is not None:
        project_id = refs.projects.get((org_id, record.project))
        if project_id is None:
            raise Rejected(
                Reason.UNKNOWN_PROJECT,
                f"project: {record.org!r} has no project with slug {record.project!r}",
            )
    scope_id = project_id if spec.needs_project else org_id
    assert scope_id is not None  # a source that needs a project requires its slug (records.py)
    return scope_id, project_id
