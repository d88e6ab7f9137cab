"""Ingest the landed files of a source over a range of days, then retry the quarantine."""

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import psycopg

from odavl_pipeline.ingest.landing import LandedFile, landed_files
from odavl_pipeline.ingest.parser import FileChanged, ParserProcess
from odavl_pipeline.ingest.writer import (
    Counts,
    PreparedFile,
    RetryOutcome,
    ingest_file,
    prepare_file,
    retry_quarantine,
)


@dataclass
class IngestReport:
    source: str
    counts: Counts = field(default_factory=Counts)
    retried: RetryOutcome = field(default_factory=RetryOutcome)
    skipped_files: int = 0
    seconds: float = 0.0

    @property
    def lines_per_second(self) -> float:
        return self.counts.lines / self.seconds if self.seconds else 0.0


def ingest_days(conn: psycopg.Connection, landing_root: Path, source: str, days: list[date],
                run_id: str | None = None,
                progress: Callable[[str], None] | None = None) -> IngestReport:
    """Ingest every file landed for `source` on `days`, each file in its own transaction."""
    report = IngestReport(source)
    started = time.perf_counter()
    files = (landed for day in days for landed in landed_files(landing_root, source, day))
    with ParserProcess() as parser:
        upcoming = _submit_next(conn, parser, files, report)
        while upcoming is not None:
            prepared = upcoming
            upcoming = _submit_next(conn, parser, files, report)  # parsed while this one is written
            try:
                counts = ingest_file(conn, prepared, parser, run_id=run_id, progress=progress)
            except FileChanged as changed:
                counts = None
                if progress:
                    progress(f"{changed}: it will be ingested by the next run")
            if counts is None:
                report.skipped_files += 1
            else:
                report.counts.add(counts)
    report.retried = retry_quarantine(conn, source)
    report.seconds = time.perf_counter() - started
    return report


def _submit_next(conn: psycopg.Connection, parser: ParserProcess, files: Iterator[LandedFile],
                 report: IngestReport) -> PreparedFile | None:
    """Prepare the next file not yet ingested and submit it to the parser."""
    for landed in files:
        prepared = prepare_file(conn, landed)
        if prepared is None:
            report.skipped_files += 1
            continue
        parser.submit(prepared)
        return prepared
    return None
