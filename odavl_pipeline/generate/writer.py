"""Writing one source's landing files day by day, with its deliberate irregularities.

Records go to the file of their time of day. Besides them the writer places exact
duplicates (in the same file or a later one), conflicting duplicates (always after the
original), malformed lines, blank lines and late records (in a later day's folder).
Lines meant for a later time wait in the file's heap; lines for a later day are carried.
"""

from __future__ import annotations

import datetime as dt
import gzip
import heapq
import itertools
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from odavl_pipeline.generate.options import (
    MALFORMED_KINDS,
    PRODUCERS,
    GenerateOptions,
    SourceSummary,
)
from odavl_pipeline.generate.randomness import seeded_random
from odavl_pipeline.generate.source import Record, Source
from odavl_pipeline.generate.world import DAY_MS, Clock

_BUFFERED_LINES = 2048
_SOON_MS = 900_000  # a same-file duplicate or conflict follows within 15 minutes


class LandingFile:
    """One landing file, written under `<name>.tmp` and renamed when complete."""

    __slots__ = (
        "path",
        "tmp_path",
        "raw",
        "stream",
        "gzipped",
        "buffer",
        "lines",
        "blanks",
        "waiting",
    )

    def __init__(self, path: Path, gzipped: bool) -> None:
        self.path = path
        self.tmp_path = path.with_name(path.name + ".tmp")
        self.gzipped = gzipped
        self.raw = open(self.tmp_path, "wb")
        self.stream = (
            gzip.GzipFile(fileobj=self.raw, mode="wb", mtime=0, filename="", compresslevel=6)
            if gzipped
            else self.raw
        )
        self.buffer: list[bytes] = []
        self.lines = 0  # non-blank lines written
        self.blanks = 0
        self.waiting: list[tuple[int, int, bytes]] = []  # heap of (t, sequence, line)

    def write(self, line: bytes) -> None:
        self.buffer.append(line)
        if len(self.buffer) >= _BUFFERED_LINES:
            self._flush()

    def push(self, t: int, sequence: int, line: bytes) -> None:
        """Hold a line until the file reaches time `t`."""
        heapq.heappush(self.waiting, (t, sequence, line))

    def drain_until(self, t: int) -> None:
        """Write the held lines due at or before `t`."""
        waiting = self.waiting
        while waiting and waiting[0][0] <= t:
            self.write(heapq.heappop(waiting)[2])

    def close(self) -> None:
        """Write every held line, then move the file into place."""
        while self.waiting:
            self.write(heapq.heappop(self.waiting)[2])
        self._flush()
        if self.gzipped:
            self.stream.close()
        self.raw.close()
        os.replace(self.tmp_path, self.path)

    def abort(self) -> None:
        """Close and delete the unfinished file."""
        try:
            if self.gzipped:
                self.stream.close()
            self.raw.close()
        finally:
            self.tmp_path.unlink(missing_ok=True)

    def _flush(self) -> None:
        if self.buffer:
            self.stream.write(b"\n".join(self.buffer) + b"\n")
            blanks = self.buffer.count(b"")
            self.blanks += blanks
            self.lines += len(self.buffer) - blanks
            self.buffer.clear()


@dataclass
class _Tally:
    """What has been written for one source so far."""

    files: int = 0
    gzip_files: int = 0
    lines: int = 0
    blank_lines: int = 0
    records: int = 0
    duplicates: int = 0
    conflicts: int = 0
    malformed: int = 0
    forks: int = 0
    late: int = 0
    malformed_kinds: dict[str, int] = field(default_factory=dict)

    def summary(self, source: str) -> SourceSummary:
        """The tally as the summary of the source."""
        kinds = self.malformed_kinds
        return SourceSummary(
            source=source,
            files=self.files,
            gzip_files=self.gzip_files,
            lines=self.lines,
            blank_lines=self.blank_lines,
            records=self.records,
            duplicates=self.duplicates,
            conflicts=self.conflicts,
            malformed=self.malformed,
            malformed_kinds={kind: kinds[kind] for kind in MALFORMED_KINDS if kind in kinds},
            forks=self.forks,
            late=self.late,
        )

    def report(self, source: str) -> str:
        """The progress message of the whole source."""
        forks = f", {self.forks} forks" if self.forks else ""
        return (
            f"{source}: {self.files} files, {self.lines:,} lines ({self.records:,} records, "
            f"{self.duplicates:,} duplicates, {self.conflicts:,} conflicts, "
            f"{self.malformed:,} malformed, {self.late:,} late{forks})"
        )


def write_source(
    out: Path,
    source: Source,
    options: GenerateOptions,
    days: list[dt.date],
    progress: Callable[[str], None] | None,
) -> SourceSummary:
    """Write `out/<source>/<day>/` for each day, reporting each day and the total."""
    writer = _SourceWriter(out, source, options, len(days))
    for day_index, day in enumerate(days):
        lines = writer.write_day(day_index, day)
        if progress:
            progress(
                f"{source.name} {day.isoformat()}: {lines:,} lines in {options.files_per_day} files"
            )
    if progress:
        progress(writer.tally.report(source.name))
    return writer.tally.summary(source.name)


class _SourceWriter:
    """The files of one source, one day at a time, and the lines carried to later days."""

    def __init__(self, out: Path, source: Source, options: GenerateOptions, days: int) -> None:
        self.out = out
        self.source = source
        self.options = options
        self.last_day = days - 1
        self.files_per_day = options.files_per_day
        self.tally = _Tally()
        self.sequence = itertools.count()  # ties between equal times keep the write order
        # day index -> (file index, t, sequence, line) of the lines due in that day's files
        self.carried: dict[int, list[tuple[int, int, int, bytes]]] = {}
        # One roll per record decides its extra line: each share is a slice of [0, 1).
        self.duplicate_below = options.duplicate_share
        self.conflict_below = self.duplicate_below + options.conflict_share
        self.malformed_below = self.conflict_below + options.malformed_share
        self.blank_below = self.malformed_below + options.malformed_share / 10
        # the day being written, set by write_day
        self.day_index: int
        self.rng: random.Random
        self.files: list[LandingFile]

    def write_day(self, day_index: int, day: dt.date) -> int:
        """Write one day's files; return how many non-blank lines they got."""
        self.day_index = day_index
        self.rng = seeded_random(self.options.seed, self.source.name, day.isoformat())
        clock = Clock(day, day_index, self.options)
        folder = self.out / self.source.name / day.isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        self.files = []
        try:
            self._open_files(folder, day)
            for t, rec, fork_role in self.source.records(clock, self.rng):
                self._write(t, rec, fork_role)
            return self._close_files()
        except BaseException:
            for landing_file in self.files:
                landing_file.abort()
            raise

    def _open_files(self, folder: Path, day: dt.date) -> None:
        """Open the day's files (some gzipped) and queue the lines carried to them."""
        producer, seed = PRODUCERS[self.source.name], self.options.seed
        for file_index in range(self.files_per_day):
            gzipped = self.rng.random() < self.options.gzip_share
            name = f"{producer}-{day:%Y%m%d}-s{seed}-{file_index:03d}.ndjson"
            self.files.append(LandingFile(folder / (name + (".gz" if gzipped else "")), gzipped))
        for file_index, t, sequence, line in self.carried.pop(self.day_index, ()):
            self.files[file_index].push(t, sequence, line)

    def _close_files(self) -> int:
        """Close the day's files and count them; return their non-blank lines."""
        day_lines = 0
        for landing_file in self.files:
            landing_file.close()
            self.tally.files += 1
            self.tally.gzip_files += landing_file.gzipped
            self.tally.lines += landing_file.lines
            self.tally.blank_lines += landing_file.blanks
            day_lines += landing_file.lines
        return day_lines

    def _write(self, t: int, rec: Record, fork_role: str | None) -> None:
        """Write one record, and maybe an extra line made from it."""
        file_index = t * self.files_per_day // DAY_MS
        landing_file = self.files[file_index]
        landing_file.drain_until(t)
        line = orjson.dumps(rec)
        if fork_role is not None:  # part of a deliberate fork: no late, no extras
            landing_file.write(line)
            if fork_role == "fork":
                self.tally.forks += 1
            else:
                self.tally.records += 1
            return
        self.tally.records += 1
        roll = self.rng.random()
        home = self._write_record(t, line, file_index, roll)
        if roll < self.duplicate_below:
            self._duplicate(t, line, home)
        elif roll < self.conflict_below:
            self._conflict(t, rec, home)
        elif roll < self.malformed_below:
            self._malformed(rec, landing_file)
        elif roll < self.blank_below:
            landing_file.write(b"")

    def _write_record(self, t: int, line: bytes, file_index: int, roll: float) -> tuple[int, int]:
        """Write the line in its file, or late in a later day's; return (day, file) used."""
        rand, randrange = self.rng.random, self.rng.randrange
        conflicted = self.duplicate_below <= roll < self.conflict_below
        late = (
            self.day_index < self.last_day
            and rand() < self.options.late_share
            and not conflicted  # the original of a conflict is never late
        )
        if not late:
            self.files[file_index].write(line)
            return self.day_index, file_index
        self.tally.late += 1
        day_index = min(self.day_index + (1 if rand() < 0.7 else randrange(2, 8)), self.last_day)
        file_index = randrange(self.files_per_day)
        self._place(day_index, file_index, self._random_time(file_index), line)
        return day_index, file_index

    def _duplicate(self, t: int, line: bytes, home: tuple[int, int]) -> None:
        """An exact copy, in a later file or a little later in the same one."""
        self.tally.duplicates += 1
        slot = self._later_slot(*home) if self.rng.random() < 0.5 else None
        if slot is None:
            start, end = self._window(home[1])
            later = min(end - 1, max(t, start) + self.rng.randrange(1, _SOON_MS))
            self._place(home[0], home[1], later, line)
        else:
            self._place(*slot, line)

    def _conflict(self, t: int, rec: Record, home: tuple[int, int]) -> None:
        """Same key, different content, in a later file or a little later in the same one."""
        self.tally.conflicts += 1
        other = orjson.dumps(self.source.conflict(rec, self.rng))
        slot = self._later_slot(*home) if self.rng.random() < 0.5 else None
        if slot is None:
            self._place(home[0], home[1], t + self.rng.randrange(1, _SOON_MS), other)
        else:
            self._place(*slot, other)

    def _malformed(self, rec: Record, landing_file: LandingFile) -> None:
        """A malformed line made from the record, in the record's own file."""
        self.tally.malformed += 1
        kind, bad = self.source.malformed(rec, self.rng)
        self.tally.malformed_kinds[kind] = self.tally.malformed_kinds.get(kind, 0) + 1
        landing_file.write(bad)

    def _place(self, day_index: int, file_index: int, t: int, line: bytes) -> None:
        """Put a line in a file of today or of a later day, to be written at time `t`."""
        sequence = next(self.sequence)
        if day_index == self.day_index:
            self.files[file_index].push(t, sequence, line)
        else:
            self.carried.setdefault(day_index, []).append((file_index, t, sequence, line))

    def _later_slot(self, day_index: int, file_index: int) -> tuple[int, int, int] | None:
        """A file strictly after (day, file), at a random time in it: (day, file, t)."""
        rand, randrange = self.rng.random, self.rng.randrange
        last_file = self.files_per_day - 1
        if day_index < self.last_day and (file_index == last_file or rand() < 0.6):
            later_day = min(day_index + (1 if rand() < 0.7 else randrange(2, 5)), self.last_day)
            later_file = randrange(self.files_per_day)
        elif file_index < last_file:
            later_day, later_file = day_index, randrange(file_index + 1, self.files_per_day)
        else:
            return None
        return later_day, later_file, self._random_time(later_file)

    def _random_time(self, file_index: int) -> int:
        """A random time of day within the file's window."""
        start, end = self._window(file_index)
        return start + self.rng.randrange(end - start)

    def _window(self, file_index: int) -> tuple[int, int]:
        """The times of day, [start, end) in ms, that a file of the day covers."""
        per_day = self.files_per_day
        return file_index * DAY_MS // per_day, (file_index + 1) * DAY_MS // per_day
