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
from typing import BinaryIO, Protocol

from odavl_pipeline import clock
from odavl_pipeline.domain.records import EARLIEST, SOURCES
from odavl_pipeline.ingest.zones import LandingZone, landing_zone

MAX_LINE_BYTES = 1024 * 1024
# A gzip file may expand to 100 times its size (landing files compress 3 to 10 times; a gzip bomb
# reaches 1,000), and to 1 MiB whatever its size: beyond, it is refused whole as unreadable.
MAX_EXPANSION_RATIO = 100
MIN_EXPANSION_BYTES = 1024 * 1024
FIRST_DAY = EARLIEST.date()  # no record is older (CONTRACT.md section 3)
_CHUNK = 1024 * 1024
_BLANK_BYTES = frozenset(b" \t\n\r\x0b\x0c")  # what bytes.strip() and isspace() take as white space
_BLANK_STARTS = frozenset(bytes([byte]) for byte in _BLANK_BYTES) | {b""}  # or the chunk's end
_NEWLINE = ord("\n")
_DAY_NAME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_LANDING_SUFFIXES = (".ndjson", ".ndjson.gz")


class UnreadableFile(Exception):
    """The file is not gzip (for .gz), expands too far, or is not UTF-8: it is rejected whole."""


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
            assert source is not None and day is not None  # _place names both when in place
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


def expansion_limit(compressed_size: int) -> int:
    """How many bytes a gzip file of `compressed_size` bytes may expand to before it is refused."""
    return max(MIN_EXPANSION_BYTES, MAX_EXPANSION_RATIO * compressed_size)


class ByteReader(Protocol):
    """What `read_lines` reads from: a binary file, or a wrapper of one."""

    def read(self, size: int = -1, /) -> bytes: ...


def read_lines(
    handle: ByteReader, gzipped: bool, size: int = 0
) -> Iterator[tuple[int, bytes, int]]:
    """Yield (1-based line number, line without its newline, full length in bytes).

    Blank lines are skipped but counted in the numbering, a run of them at the speed of
    reading. A line longer than `MAX_LINE_BYTES` is yielded truncated to that many bytes,
    with its full length, so memory stays bounded whatever the file holds. A gzip file of
    `size` bytes that expands beyond `expansion_limit(size)` is unreadable.
    """
    # GzipFile's stubs ask its file for `seek` too, which it calls only to rewind: never here
    stream = (
        gzip.GzipFile(fileobj=handle, mode="rb")  # type: ignore[call-overload]  # stubs: seek
        if gzipped
        else handle
    )
    limit = expansion_limit(size) if gzipped else None
    lines = _LineSplitter()
    expanded = 0
    try:
        while chunk := stream.read(_CHUNK):
            expanded += len(chunk)
            if limit is not None and expanded > limit:
                raise UnreadableFile(
                    f"gzip stream expands to more than {limit:,} bytes ({MAX_EXPANSION_RATIO} "
                    f"times its {size:,} bytes, at least {MIN_EXPANSION_BYTES:,}) by line "
                    f"{lines.line_no + 1:,}: refused whole, as a gzip bomb would be"
                )
            yield from lines.feed(chunk)
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise UnreadableFile(
            f"not a readable gzip stream after line {lines.line_no}: {error}"
        ) from error
    yield from lines.finish()


class _LineSplitter:
    """Cuts a stream of chunks into numbered lines: non-blank ones yielded, blank ones counted.

    A line that goes on past its chunk is kept open, at most `MAX_LINE_BYTES` + 1 bytes of it
    held, with its length so far, its trailing carriage returns and whether it has content.
    """

    def __init__(self):
        self.line_no = 0  # lines ended so far
        self._forget_open_line()

    def _forget_open_line(self) -> None:
        self.open = False
        self.head = bytearray()
        self.length = 0
        self.returns = 0  # carriage returns at its end so far
        self.content = False

    def feed(self, chunk: bytes) -> Iterator[tuple[int, bytes, int]]:
        pos, size = 0, len(chunk)
        if self.open:
            end = chunk.find(b"\n")
            self._extend(chunk if end < 0 else chunk[:end])
            if end < 0:
                return
            if closed := self._close():
                yield closed
            pos = end + 1
        no, find, blank = self.line_no, chunk.find, _BLANK_BYTES  # locals: this loop is hot
        while pos < size:
            if chunk[pos] in blank:
                if chunk[pos] == _NEWLINE and chunk[pos + 1 : pos + 2] not in _BLANK_STARTS:
                    no += 1  # one empty line: the common case, taken at once
                    pos += 1
                    continue
                found = _first_content(chunk, pos)
                nl = chunk.rfind(b"\n", pos, size if found is None else found)
                if nl >= 0:
                    no += chunk.count(b"\n", pos, nl + 1)
                    pos = nl + 1
                if found is None:
                    break
            end = find(b"\n", pos)
            if end < 0:
                break
            no += 1
            line = chunk[pos:end].rstrip(b"\r")
            yield no, line[:MAX_LINE_BYTES], len(line)
            pos = end + 1
        self.line_no = no
        if pos < size:  # the start of a line that goes on in the next chunk
            self._extend(chunk[pos:])

    def finish(self) -> Iterator[tuple[int, bytes, int]]:
        """The last line, when the stream does not end with a newline."""
        if self.open and (line := self._close()):
            yield line

    def _extend(self, piece: bytes) -> None:
        """Add a piece (without newline) to the open line, opening it if need be."""
        self.open = True
        room = MAX_LINE_BYTES + 1 - len(self.head)
        if room > 0:
            self.head += piece[:room]
        self.length += len(piece)
        kept = len(piece.rstrip(b"\r"))
        self.returns = self.returns + len(piece) if kept == 0 else len(piece) - kept
        self.content = self.content or (kept > 0 and not piece.isspace())

    def _close(self) -> tuple[int, bytes, int] | None:
        """End the open line: the line, or None when it is blank."""
        self.line_no += 1
        line = None
        if self.content:
            length = self.length - self.returns
            line = (self.line_no, bytes(self.head[: min(length, MAX_LINE_BYTES)]), length)
        self._forget_open_line()
        return line


def _first_content(chunk: bytes, pos: int) -> int | None:
    """Where the first byte that is not white space lies from `pos` on, or None: the blank
    stretch is looked at in windows that double, so a long one costs what reading it costs."""
    window = 64
    while pos < len(chunk):
        piece = chunk[pos : pos + window]
        if not piece.isspace():
            return pos + len(piece) - len(piece.lstrip())
        pos += len(piece)
        window *= 2
    return None
