"""Ingest the landed files of a source over a range of days, then retry the quarantine.

One file can never stop a run: a file whose ingestion raises anything but a failure of the
infrastructure is rolled back, recorded as failed (`ingest_error`) and tried again by the next
run, while the run goes on with the other files. The infrastructure is the database, the machine
and the landing zone: a zone that cannot be listed or read stops the run with ZoneUnavailable, as
does a file's failure while the zone does not answer (`zone.problem()`), and marks no file.
Misplaced files of the source, and those outside every source's folder, are reported on the way.
"""

import time
from collections import Counter, deque
from collections.abc import Callable
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
from odavl_pipeline.ingest.zones import LandingZone, ZoneUnavailable, landing_zone

# A file rolled back because its writes deadlocked with a concurrent run's is tried again, after
# the others; after this many attempts it is recorded as failed, for the next run.
DEADLOCK_ATTEMPTS = 3


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
    landing: LandingZone | Path | str,
    source: str,
    days: list[date],
    run_id: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> IngestReport:
    """Ingest every file landed for `source` on `days`, each file in its own transaction."""
    report = IngestReport(source)
    started = time.perf_counter()
    zone = landing_zone(landing)
    scan = scan_landing(zone, (source,))
    wanted = set(days)
    files = deque(landed for landed in scan.files if landed.day in wanted)
    deadlocks: Counter = Counter()
    with ParserProcess(zone) as parser:
        upcoming = _submit_next(conn, zone, parser, files, report, run_id)
        while upcoming is not None:
            prepared = upcoming
            upcoming = _submit_next(conn, zone, parser, files, report, run_id)  # parsed meanwhile
            try:
                batches = parser.batches(prepared)
                counts = ingest_file(conn, prepared, batches, run_id=run_id, progress=progress)
                if counts is None:  # another run ingested it first
                    parser.discard(prepared)
            except FileChanged:
                counts = None
                report.changed.append(prepared.landed.relative_path)
            except psycopg.errors.DeadlockDetected as error:
                parser.discard(prepared)
                deadlocks[prepared.landed] += 1
                if deadlocks[prepared.landed] < DEADLOCK_ATTEMPTS:
                    files.append(prepared.landed)  # rolled back whole: it goes again, last
                    upcoming = upcoming or _submit_next(conn, zone, parser, files, report, run_id)
                    continue
                counts = _failed(conn, prepared.landed, prepared.sha256, error, report, run_id)
            except Exception as error:
                _raise_if_outage(error, conn, zone)
                parser.discard(prepared)
                counts = _failed(conn, prepared.landed, prepared.sha256, error, report, run_id)
            _count(report, counts)
    report.misplaced = record_misplaced(conn, zone, scan.misplaced, run_id)
    if source in report.misplaced:
        report.counts.add(report.misplaced[source])
    report.retried, report.retry_error = _retry(conn, source)
    report.seconds = time.perf_counter() - started
    return report


def _submit_next(
    conn: psycopg.Connection,
    zone: LandingZone,
    parser: ParserProcess,
    files: deque[LandedFile],
    report: IngestReport,
    run_id: str | None,
) -> PreparedFile | None:
    """Prepare the next file not yet ingested and submit it to the parser."""
    while files:
        landed = files.popleft()
        try:
            prepared = prepare_file(conn, zone, landed)
        except FileNotFoundError:  # gone since the scan: renamed or withdrawn by its producer
            report.skipped_files += 1
            continue
        except Exception as error:
            _raise_if_outage(error, conn, zone)
            _count(report, _failed(conn, landed, UNKNOWN_SHA256, error, report, run_id))
            continue
        if prepared is None:
            report.skipped_files += 1
            continue
        parser.submit(prepared)
        return prepared
    return None


def _raise_if_outage(error: Exception, conn: psycopg.Connection, zone: LandingZone) -> None:
    """Raise when a file's failure is the infrastructure's: the database or the machine, or the
    landing zone (ZoneUnavailable, or any other error while the zone answers a probe badly)."""
    if isinstance(error, ZoneUnavailable) or is_infrastructure_failure(error, conn):
        raise error
    problem = zone.problem()
    if problem is not None:
        raise ZoneUnavailable(f"the landing zone {zone} {problem}") from error


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
