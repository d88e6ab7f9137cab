"""The landing zone: which files have landed, which do not belong there, and their lines, streamed.

The layout is `<root>/<source>/<YYYY-MM-DD>/<name>.ndjson[.gz]` (CONTRACT.md section 2), the day
from 1970-01-01 to tomorrow (UTC). Names that begin with `.` or end with `.tmp` are a producer's
work in progress and wait. Anything else is a misplaced file: reported, never read. A link to a
regular file inside the root is read as that file; a link that leads outside the root, to
nothing or to a folder is not followed, and is misplaced. File names that are not UTF-8 are
shown with their odd bytes escaped (`\\xff`), so that every name can be stored and printed.
"""

import gzip
import hashlib
import os
import re
import stat
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from odavl_pipeline.domain.records import EARLIEST, SOURCES

MAX_LINE_BYTES = 1024 * 1024
FIRST_DAY = EARLIEST.date()  # no record is older (CONTRACT.md section 3)
# The ledger's paths are in a unique index, whose entries PostgreSQL limits to about 2.7 kB.
MAX_PATH_BYTES = 2000
_CHUNK = 1024 * 1024
_DAY_NAME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class UnreadableFile(Exception):
    """The file is not gzip (for .gz) or not UTF-8: it is rejected whole."""


@dataclass(frozen=True)
class LandedFile:
    source: str
    day: date
    path: Path  # where to read it: a link inside the root is resolved to its target
    relative_path: str  # where it landed, relative to the landing root, with forward slashes


@dataclass(frozen=True)
class MisplacedFile:
    """A file outside the layout, or a link that is not followed."""

    source: str | None  # the source folder it is under; None outside every source's folder
    path: Path
    relative_path: str
    problem: str  # why it is not read, for the quarantine


@dataclass
class LandingScan:
    files: list[LandedFile] = field(default_factory=list)
    misplaced: list[MisplacedFile] = field(default_factory=list)

    def days(self) -> list[date]:
        return sorted({landed.day for landed in self.files})


def is_in_progress(name: str) -> bool:
    """Producers write under a temporary name: names starting with `.` or ending `.tmp` wait."""
    return name.startswith(".") or name.endswith(".tmp")


def is_landing_file(name: str) -> bool:
    return not is_in_progress(name) and name.endswith((".ndjson", ".ndjson.gz"))


def last_landing_day(today: date | None = None) -> date:
    """The latest day folder that can be taken: tomorrow, UTC (a producer ahead of midnight)."""
    return (today or datetime.now(UTC).date()) + timedelta(days=1)


def parse_day(text: str, today: date | None = None) -> date | None:
    """The day a folder name stands for, if it is a real YYYY-MM-DD day that can be landed."""
    try:
        day = date.fromisoformat(text) if _DAY_NAME.fullmatch(text) else None
    except ValueError:
        return None
    return day if day and FIRST_DAY <= day <= last_landing_day(today) else None


def scan_landing(
    root: Path, sources: tuple[str, ...] = SOURCES, today: date | None = None
) -> LandingScan:
    """Every landing file of `sources`, and the misplaced files under them or outside every
    source's folder, in name order."""
    scan = LandingScan()
    root = root.resolve()
    if not root.is_dir():
        return scan
    for entry in _entries(root):
        if entry.name in SOURCES and _is_folder(entry):
            if entry.name in sources:
                _scan_source(root, entry, scan, today)
        elif not is_in_progress(entry.name):
            _misplace(root, entry, None, f"not in a source folder ({', '.join(SOURCES)})", scan)
    return scan


def landed_days(root: Path, sources: tuple[str, ...] = SOURCES) -> list[date]:
    """Every day that holds at least one landing file, across `sources`."""
    return scan_landing(root, sources).days()


def _scan_source(root: Path, folder: os.DirEntry, scan: LandingScan, today: date | None) -> None:
    source = folder.name
    for entry in _entries(folder.path):
        day = parse_day(entry.name, today)
        if day and _is_folder(entry):
            _scan_day(root, source, day, Path(entry.path), scan)
        elif not is_in_progress(entry.name):
            _misplace(
                root,
                entry,
                source,
                f"not in a day folder {source}/YYYY-MM-DD/ (a real day "
                f"from {FIRST_DAY} to tomorrow)",
                scan,
            )


def _scan_day(root: Path, source: str, day: date, folder: Path, scan: LandingScan) -> None:
    for entry in _entries(folder):
        if is_in_progress(entry.name):
            continue
        if _is_folder(entry):
            _misplace(
                root,
                entry,
                source,
                f"in a folder inside a day folder: files go directly in {source}/{day}/",
                scan,
            )
            continue
        problem, path = _readable(root, entry)
        if problem is None and not entry.name.endswith((".ndjson", ".ndjson.gz")):
            problem = "not a .ndjson or .ndjson.gz file"
        relative = relative_name(root, entry.path)
        if problem:
            scan.misplaced.append(MisplacedFile(source, Path(entry.path), relative, problem))
        else:
            scan.files.append(LandedFile(source, day, path, relative))


def _misplace(
    root: Path, entry: os.DirEntry, source: str | None, problem: str, scan: LandingScan
) -> None:
    """Report a stray file; a stray folder (not a link) for each file in it."""
    if _is_folder(entry):
        for inner in _entries(entry.path):
            if not is_in_progress(inner.name):
                _misplace(root, inner, source, problem, scan)
        return
    problem = _readable(root, entry)[0] or problem
    scan.misplaced.append(
        MisplacedFile(source, Path(entry.path), relative_name(root, entry.path), problem)
    )


def _readable(root: Path, entry: os.DirEntry) -> tuple[str | None, Path]:
    """Why the entry is not read, whatever its name (a link not followed, not a file), or None
    and the path to read it at."""
    if entry.is_symlink():
        target = Path(os.path.realpath(entry.path))
        if not target.is_relative_to(root):
            return "a link that leads outside the landing root: not followed", target
        if not target.exists():
            return "a link to nothing", target
        if not target.is_file():
            return "a link to something that is not a regular file: not followed", target
        return None, target
    if not entry.is_file(follow_symlinks=False):
        return "not a regular file", Path(entry.path)
    return None, Path(entry.path)


def _is_folder(entry: os.DirEntry) -> bool:
    return entry.is_dir(follow_symlinks=False)


def _entries(folder) -> list[os.DirEntry]:
    with os.scandir(folder) as entries:
        return sorted(entries, key=lambda entry: os.fsencode(entry.name))


def relative_name(root: Path, path: str) -> str:
    """`path` (found under the root) relative to it, printable and storable: bytes that are not
    UTF-8 escaped as `\\xNN`; a path past MAX_PATH_BYTES shortened, ending in its hash."""
    raw = os.fsencode(path[len(os.fspath(root)) + 1 :])  # found by scandir under the root
    text = raw.decode("utf-8", errors="backslashreplace")
    if len(text.encode()) <= MAX_PATH_BYTES:
        return text
    kept = raw[: MAX_PATH_BYTES - 100].decode("utf-8", errors="ignore")
    return f"{kept}…(shortened, sha256 of the path {hashlib.sha256(raw).hexdigest()})"


def open_landed(path: Path) -> BinaryIO:
    """Open a landed file to read: never through a link swapped in since the scan, nor a pipe."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise OSError(f"{path.name} is no longer a regular file")
    return os.fdopen(descriptor, "rb")


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
