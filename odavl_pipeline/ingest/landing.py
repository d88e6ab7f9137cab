"""The landing zone: which files have landed, and their lines, streamed."""

import gzip
import hashlib
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import BinaryIO

from odavl_pipeline.domain.records import SOURCES

MAX_LINE_BYTES = 1024 * 1024
_CHUNK = 1024 * 1024


class UnreadableFile(Exception):
    """The file is not gzip (for .gz) or not UTF-8: it is rejected whole."""


@dataclass(frozen=True)
class LandedFile:
    source: str
    day: date
    path: Path
    relative_path: str  # relative to the landing root, with forward slashes


def is_landing_file(name: str) -> bool:
    """Producers write under a temporary name: names starting with `.` or ending `.tmp` wait."""
    return (not name.startswith(".") and not name.endswith(".tmp")
            and name.endswith((".ndjson", ".ndjson.gz")))


def landed_files(root: Path, source: str, day: date) -> list[LandedFile]:
    folder = root / source / day.isoformat()
    if not folder.is_dir():
        return []
    return [LandedFile(source, day, path, path.relative_to(root).as_posix())
            for path in sorted(folder.iterdir()) if path.is_file() and is_landing_file(path.name)]


def landed_days(root: Path, sources: tuple[str, ...] = SOURCES) -> list[date]:
    """Every day folder that holds at least one landing file, across `sources`."""
    days = set()
    for source in sources:
        base = root / source
        if not base.is_dir():
            continue
        for folder in base.iterdir():
            day = parse_day(folder.name)
            if day and folder.is_dir() and any(is_landing_file(p.name) for p in folder.iterdir()):
                days.add(day)
    return sorted(days)


def parse_day(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if len(text) == 10 else None
    except ValueError:
        return None


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
