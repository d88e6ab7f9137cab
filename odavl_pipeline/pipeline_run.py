"""`run`'s work: the landed days a run ingests, the Dagster run over them, and what its runs
ingested and could not read, from the ledger."""

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from odavl_pipeline.errors import PipelineError, require_migrated
from odavl_pipeline.settings import Settings

if TYPE_CHECKING:
    import dagster as dg

    from odavl_pipeline.ingest.writer import Counts
    from odavl_pipeline.orchestration import RunListener


@dataclass
class LandedRun:
    """The Dagster runs over the landed days (one per range), the signal that ended the last one
    early if one did, and what they ingested by source and could not read."""

    results: "list[dg.JobExecutionResult]"
    interrupted: int | None
    counts: "dict[str, Counts]"
    unread: list[dict]

    @property
    def succeeded(self) -> bool:
        return all(result.success for result in self.results)


def landed_days(settings: Settings, start: date | None, end: date | None) -> list[date]:
    """The landed days in [start, end] a run ingests (ingest/pending.py); meanwhile the server
    the steps fork from loads the code. A reversed range is refused before anything starts."""
    from odavl_pipeline import orchestration

    if start and end and start > end:
        raise PipelineError(
            f"--start {start} is after --end {end}: give the earlier day as --start"
        )
    orchestration.start_step_server(settings)  # it loads the code while this process looks:

    from odavl_pipeline.db.server import connect
    from odavl_pipeline.ingest.pending import days_to_run

    require_migrated(settings)
    with connect(settings) as conn:
        return days_to_run(conn, settings.landing, start, end)


def nothing_run() -> LandedRun:
    """No run: nothing landed in the range."""
    return LandedRun([], None, _no_counts(), [])


def run_days(
    settings: Settings,
    days: list[date],
    log_level: str,
    full_marts: bool,
    listener: "RunListener",
) -> LandedRun:
    """The pipeline over `days` (orchestration.run_pipeline), its steps told to `listener`; a run
    that SIGINT or SIGTERM ended is recorded as Dagster recorded it, with its signal."""
    from odavl_pipeline import orchestration
    from odavl_pipeline.db.server import connect
    from odavl_pipeline.ingest.report import run_counts, unread_files

    interrupted = None
    try:
        results = orchestration.run_pipeline(
            settings, days, log_level, full_marts=full_marts, listener=listener
        )
    except orchestration.RunInterrupted as stopped:  # its run ended, as Dagster records
        results, interrupted = stopped.results, stopped.signum
    counts, unread = _no_counts(), []
    with connect(settings) as conn:
        for result in results:
            for source, source_counts in run_counts(conn, result.run_id).items():
                counts[source].add(source_counts)
            unread += unread_files(conn, result.run_id)
    return LandedRun(results, interrupted, counts, unread)


def _no_counts() -> "dict[str, Counts]":
    from odavl_pipeline.ingest.landing import SOURCES
    from odavl_pipeline.ingest.writer import Counts

    return {source: Counts() for source in SOURCES}
