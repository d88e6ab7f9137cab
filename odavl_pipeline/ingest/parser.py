"""Parsing and validating landing files in a separate process, batch by batch.

The writer's process spends its time waiting on PostgreSQL; a parser process keeps
the other core busy with JSON and validation, without contending for one GIL. Files
are submitted ahead (the next one is parsed while the current one is written); their
batches stream back in order through a bounded queue, so memory stays flat. The
parser exits by itself if the process that started it dies.
"""

import hashlib
import multiprocessing
import os
import queue
from collections.abc import Iterator
from dataclasses import dataclass

from odavl_pipeline.domain.records import Limits
from odavl_pipeline.ingest.landing import UnreadableFile, read_lines
from odavl_pipeline.ingest.sources import SPECS, source_limits
from odavl_pipeline.ingest.staging import Batch, Line, PreparedFile, References, validated_batches
from odavl_pipeline.ingest.zones import LandingZone, ZoneUnavailable

_POLL_SECONDS = 1.0


@dataclass(frozen=True)
class _FileDone:
    sha256: str


class FileChanged(Exception):
    """The file's bytes changed while it was being ingested; it is not committed."""


class ParsingFailed(Exception):
    """Reading or validating one file raised an unforeseen error: that file fails, not the run."""


class ParserDied(RuntimeError):
    """The parser process is gone: the run cannot go on."""


class ParserProcess:
    """A child process that turns the landed files of a zone into validated batches, started on
    first use."""

    _process = None

    def __init__(self, zone: LandingZone):
        self._zone = zone
        self._finished: set[int] = set()  # files whose batches have all been received

    def __enter__(self) -> "ParserProcess":
        return self

    def __exit__(self, *exc_info) -> None:
        if self._process is None:
            return
        if exc_info[0] is None:
            self._tasks.put(None)
            self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join()

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._tasks = context.Queue()
        self._results = context.Queue(maxsize=3)
        self._process = context.Process(
            target=_serve,
            args=(self._zone, self._tasks, self._results, os.getpid()),
            name="odavl-parser",
            daemon=True,
        )
        self._process.start()

    def submit(self, prepared: PreparedFile) -> None:
        """Queue a file for parsing; its batches come back, in order, from `batches`."""
        if self._process is None:
            self._start()
        landed = prepared.landed
        self._tasks.put(
            (
                landed.location,
                landed.relative_path.endswith(".gz"),
                prepared.size_bytes,
                landed.source,
                prepared.refs,
                source_limits(landed.source),
                prepared.file_id,
            )
        )

    def batches(self, prepared: PreparedFile) -> Iterator[Batch]:
        """The submitted file's validated batches; raises UnreadableFile, or FileChanged if
        the bytes parsed are not those hashed. Consume it whole (or `discard` the rest)."""
        while True:
            item = self._next_result()
            if isinstance(item, (BaseException, _FileDone)):
                self._finished.add(prepared.file_id)
            if isinstance(item, BaseException):  # UnreadableFile, ZoneUnavailable, ParsingFailed
                raise item
            if isinstance(item, _FileDone):
                if item.sha256 != prepared.sha256:
                    raise FileChanged(
                        f"{prepared.landed.relative_path} changed while it was ingested"
                    )
                return
            yield item

    def discard(self, prepared: PreparedFile) -> None:
        """Skip what remains of a submitted file's batches, if any."""
        if prepared.file_id in self._finished:
            return
        try:
            for _ in self.batches(prepared):
                pass
        except (UnreadableFile, FileChanged, ParsingFailed):
            pass

    def _next_result(self):
        while True:
            try:
                return self._results.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                if not self._process.is_alive():
                    raise ParserDied(
                        f"the parser process died (exit code {self._process.exitcode})"
                    ) from None


def _serve(zone: LandingZone, tasks, results, parent_pid: int) -> None:
    """The child: parse each file it is given until told to stop or orphaned."""

    def put(item) -> None:
        while True:
            try:
                results.put(item, timeout=_POLL_SECONDS)
                return
            except queue.Full:
                if os.getppid() != parent_pid:
                    _orphaned(results)
                    raise SystemExit(1) from None

    while True:
        try:
            task = tasks.get(timeout=_POLL_SECONDS)
        except queue.Empty:
            if os.getppid() != parent_pid:
                _orphaned(results)
                return
            continue
        if task is None:
            return
        location, gzipped, size, source, refs, limits, file_id = task
        try:
            put(
                _FileDone(_parse(zone, location, gzipped, size, source, refs, limits, file_id, put))
            )
        except (UnreadableFile, ZoneUnavailable) as error:  # the file's fault, or the zone's
            put(error)
        except Exception as error:  # the writer records this file as failed and goes on
            put(ParsingFailed(f"{type(error).__name__}: {error}"))


def _orphaned(results) -> None:
    """Exit without flushing batches nobody will read: the child holds the pipe's other end
    too, so waiting for the flush would keep it alive for ever."""
    results.cancel_join_thread()


def _parse(
    zone: LandingZone,
    location: str,
    gzipped: bool,
    size: int,
    source: str,
    refs: References,
    limits: Limits,
    file_id: int,
    put,
) -> str:
    """Send the file's batches; return the SHA-256 of the bytes that were read. A gzip file
    may expand to `landing.expansion_limit` of its `size`."""
    digest = hashlib.sha256()
    with zone.open(location) as raw:
        handle = _Hashing(raw, digest)
        lines = (
            Line(file_id, no, text, length)
            for no, text, length in read_lines(handle, gzipped, size)
        )
        for batch in validated_batches(SPECS[source], refs, lines, limits):
            put(batch)
        while handle.read(1 << 20):  # hash what a reader may have left unread
            pass
    return digest.hexdigest()


class _Hashing:
    """A read-only file wrapper that hashes every byte read through it."""

    def __init__(self, raw, digest):
        self._raw, self._digest = raw, digest

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self._digest.update(data)
        return data

    def readline(self, size: int = -1) -> bytes:
        data = self._raw.readline(size)
        self._digest.update(data)
        return data
