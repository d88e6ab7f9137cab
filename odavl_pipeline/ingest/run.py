"""Ingest the landed files of a source over a range of days, then retry the quarantine.

One file can never stop a run: a file whose ingestion raises anything but a failure of the
infrastructure is rolled back, recorded as failed (`ingest_error`) and tried again by the next
run, while the run goes on with the other files. Misplaced files of the source, and those outside
every source's folder, are reported on the way.
"""

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import psycopg

from odavl_pipeline.ingest.file_rejects import (
    UNKNOWN_SHA256,
    describe,
    is_infrastructure_failure,
    record_failed_file,
    record_misplaced,
)
from odavl_pipeline.ingest.landing import LandedFile, scan_landing
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
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, error) of failed files
    changed: list[str] = field(default_factory=list)  # changed while read: the next run takes them
    misplaced: dict[str | None, Counts] = field(default_factory=dict)  # newly reported, by source
    retry_error: str | None = None  # the quarantine retry raised: it is tried again next run
    seconds: float = 0.0

    @property
    def lines_per_second(self) -> float:
        return self.counts.lines / self.seconds if self.seconds else 0.0


def ingest_days(
    conn: psycopg.Connection,
    landing_root: Path,
    source: str,
    days: list[date],
    run_id: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> IngestReport:
    """Ingest every file landed for `source` on `days`, each file in its own transaction."""
    report = IngestReport(source)
    started = time.perf_counter()
    scan = scan_landing(landing_root, (source,))
    wanted = set(days)
    files = (landed for landed in scan.files if landed.day in wanted)
    with ParserProcess() as parser:
        upcoming = _submit_next(conn, parser, files, report, run_id)
        while upcoming is not None:
            prepared = upcoming
            upcoming = _submit_next(conn, parser, files, report, run_id)  # parsed meanwhile
            try:
                batches = parser.batches(prepared)
                counts = ingest_file(conn, prepared, batches, run_id=run_id, progress=progress)
                if counts is None:  # another run ingested it first
                    parser.discard(prepared)
            except FileChanged:
                counts = None
                report.changed.append(prepared.landed.relative_path)
            except Exception as error:
                if is_infrastructure_failure(error, conn):
                    raise
                parser.discard(prepared)
                counts = _failed(conn, prepared.landed, prepared.sha256, error, report, run_id)
            _count(report, counts)
    report.misplaced = record_misplaced(conn, scan.misplaced, run_id)
    if source in report.misplaced:
        report.counts.add(report.misplaced[source])
    report.retried, report.retry_error = _retry(conn, source)
    report.seconds = time.perf_counter() - started
    return report


def _submit_next(
    conn: psycopg.Connection,
    parser: ParserProcess,
    files: Iterator[LandedFile],
    report: IngestReport,
    run_id: str | None,
) -> PreparedFile | None:
    """Prepare the next file not yet ingested and submit it to the parser."""
    for landed in files:
        try:
            prepared = prepare_file(conn, landed)
        except FileNotFoundError:  # gone since the scan: renamed or withdrawn by its producer
            report.skipped_files += 1
            continue
        except Exception as error:
            if is_infrastructure_failure(error, conn):
                raise
            _count(report, _failed(conn, landed, UNKNOWN_SHA256, error, report, run_id))
            continue
        if prepared is None:
            report.skipped_files += 1
            continue
        parser.submit(prepared)
        return prepared
    return None


def _failed(
    conn: psycopg.Connection,
    landed: LandedFile,
    sha256: str,
    error: Exception,
    report: IngestReport,
    run_id: str | None,
) -> Counts | None:
    report.failed.append((landed.relative_path, describe(error)))
    return record_failed_file(conn, landed, sha256, error, run_id)


def _count(report: IngestReport, counts: Counts | None) -> None:
    if counts is None:
        report.skipped_files += 1
    else:
        report.counts.add(counts)


def _retry(conn: psycopg.Connection, source: str) -> tuple[RetryOutcome, str | None]:
    """Retry the quarantine; an error there is reported, and the next run retries again."""
    try:
        return retry_quarantine(conn, source), None
    except Exception as error:
        if is_infrastructure_failure(error, conn):
            raise
        return RetryOutcome(), describe(error)
