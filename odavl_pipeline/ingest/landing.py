"""The landing zone: which files have landed, which do not belong there, and their lines, streamed.

The layout is `<root>/<source>/<YYYY-MM-DD>/<name>.ndjson[.gz]` (CONTRACT.md section 2), the day
from 1970-01-01 to tomorrow (UTC), under a folder or a bucket's prefix (`zones`). Names that begin
with `.` or end with `.tmp` are a producer's work in progress and wait. Anything else is a
misplaced file: reported, never read. In a folder, a link to a regular file inside the root is
read as that file; a link that leads outside the root, to nothing or to a folder is not followed,
and is misplaced. File names that are not UTF-8 are shown with their odd bytes escaped (`\\xff`),
so that every name can be stored and printed.
"""

import gzip
import hashlib
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import BinaryIO

from odavl_pipeline import clock
from odavl_pipeline.domain.records import EARLIEST, SOURCES
from odavl_pipeline.ingest.zones import LandingZone, is_in_progress, landing_zone

MAX_LINE_BYTES = 1024 * 1024
FIRST_DAY = EARLIEST.date()  # no record is older (CONTRACT.md section 3)
_CHUNK = 1024 * 1024
_DAY_NAME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_LANDING_SUFFIXES = (".ndjson", ".ndjson.gz")


class UnreadableFile(Exception):
    """The file is not gzip (for .gz) or not UTF-8: it is rejected whole."""


@dataclass(frozen=True)
class LandedFile:
    source: str
    day: date
    location: str  # where its zone opens it: a link inside a folder is resolved to its target
    relative_path: str  # where it landed, relative to the landing root, with forward slashes
    size: int = 0  # as listed
    mtime_ns: int = 0


@dataclass(frozen=True)
class MisplacedFile:
    """A file outside the layout, or a link that is not followed."""

    source: str | None  # the source folder it is under; None outside every source's folder
    location: str
    relative_path: str
    problem: str  # why it is not read, for the quarantine
    size: int = 0  # a regular file's, as listed; 0 for anything else
    readable: bool = True  # a regular file (misplaced by its name): its bytes can be hashed
    link_target: str | None = None  # a link's target (os.fsdecode), hashed instead of read


@dataclass
class LandingScan:
    files: list[LandedFile] = field(default_factory=list)
    misplaced: list[MisplacedFile] = field(default_factory=list)

    def days(self) -> list[date]:
        return sorted({landed.day for landed in self.files})


def is_landing_file(name: str) -> bool:
    return not is_in_progress(name) and name.endswith(_LANDING_SUFFIXES)


def last_landing_day(today: date | None = None) -> date:
    """The latest day folder that can be taken: tomorrow, UTC (a producer ahead of midnight)."""
    return (today or clock.today()) + timedelta(days=1)


def parse_day(text: str, today: date | None = None) -> date | None:
    """The day a folder name stands for, if it is a real YYYY-MM-DD day that can be landed."""
    try:
        day = date.fromisoformat(text) if _DAY_NAME.fullmatch(text) else None
    except ValueError:
        return None
    return day if day and FIRST_DAY <= day <= last_landing_day(today) else None


def scan_landing(
    where: LandingZone | Path | str, sources: tuple[str, ...] = SOURCES, today: date | None = None
) -> LandingScan:
    """Every landing file of `sources`, and the misplaced files under them or outside every
    source's folder, in name order; the same rules for every kind of zone."""
    scan = LandingScan()
    skipped = frozenset(SOURCES) - frozenset(sources)
    for entry in landing_zone(where).entries(skipped):
        source, day, problem = _place(entry.names, today)
        if entry.problem or problem:
            scan.misplaced.append(
                MisplacedFile(
                    source,
                    entry.location,
                    entry.relative_path,
                    entry.problem or problem,
                    entry.size,
                    entry.problem is None,
                    entry.link_target,
                )
            )
        else:
            scan.files.append(
                LandedFile(
                    source, day, entry.location, entry.relative_path, entry.size, entry.mtime_ns
                )
            )
    return scan


def landed_days(where: LandingZone | Path | str, sources: tuple[str, ...] = SOURCES) -> list[date]:
    """Every day that holds at least one landing file, across `sources`."""
    return scan_landing(where, sources).days()


def _place(names: tuple[str, ...], today: date | None) -> tuple[str | None, date | None, str]:
    """The source and day of an entry at this path, and what is wrong with its place ("" if
    nothing)."""
    if len(names) == 1 or names[0] not in SOURCES:
        return None, None, f"not in a source folder ({', '.join(SOURCES)})"
    source = names[0]
    day = parse_day(names[1], today) if len(names) > 2 else None
    if day is None:
        return (
            source,
            None,
            f"not in a day folder {source}/YYYY-MM-DD/ (a real day from {FIRST_DAY} to tomorrow)",
        )
    if len(names) > 3:
        return source, day, f"in a folder inside a day folder: files go directly in {source}/{day}/"
    if not names[2].endswith(_LANDING_SUFFIXES):
        return source, day, "not a .ndjson or .ndjson.gz file"
    return source, day, ""


def sha256_of(handle: BinaryIO) -> str:
    digest = hashlib.sha256()
    while chunk := handle.read(_CHUNK):
        digest.update(chunk)
    handle.seek(0)
    return digest.hexdigest()


def read_lines(handle: BinaryIO, gzipped: bool) -> Iterator[tuple[int, bytes, int]]:
    """Yield (1-based line number, line without its newline, full length in bytes).

    Blank lines are skipped but counted in the numbering. A line longer than
    `MAX_LINE_BYTES` is yielded truncated to that many bytes, with its full
    length, so memory stays bounded whatever the file holds.
    """
    stream = gzip.GzipFile(fileobj=handle, mode="rb") if gzipped else handle
    line_no = 0
    try:
        while chunk := stream.readline(MAX_LINE_BYTES + 1):
            line_no += 1
            if len(chunk) > MAX_LINE_BYTES and not chunk.endswith(b"\n"):
                yield line_no, chunk[:MAX_LINE_BYTES], len(chunk) + _skip_rest_of_line(stream)
                continue
            line = chunk.rstrip(b"\r\n")
            if line.strip():
                yield line_no, line, len(line)
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise UnreadableFile(f"not a readable gzip stream after line {line_no}: {error}") from error


def _skip_rest_of_line(stream: BinaryIO) -> int:
    """Read past the rest of an over-long line; return how many bytes it had."""
    skipped = 0
    while rest := stream.readline(_CHUNK):
        if rest.endswith(b"\n"):
            return skipped + len(rest) - 1
        skipped += len(rest)
    return skipped
