"""The quarantine as `rejects` reads it: the filters checked, the first records and the totals,
every record as JSON, and the retry of what can now be accepted. Light to import: the command
line names the sources in its help before it loads anything else."""

from collections.abc import Iterator
from typing import TYPE_CHECKING

from odavl_pipeline.errors import PipelineError
from odavl_pipeline.settings import Settings

if TYPE_CHECKING:
    from odavl_pipeline.ingest.report import RejectFilter
    from odavl_pipeline.ingest.writer import RetryOutcome

# CONTRACT.md section 2 (domain/records.py SOURCES, which the command line does not load to start)
LANDING_SOURCES = ("usage_events", "error_events", "fix_attestations", "audit_results")
REJECTS_SHOWN = 50  # records listed unless a limit says otherwise


def require_known(source: str | None, reason: str | None) -> None:
    """Refuse a source or a reason the quarantine cannot hold, naming those it can."""
    from odavl_pipeline.domain.records import Reason

    if source is not None and source not in LANDING_SOURCES:
        raise PipelineError(
            f"unknown source {source!r}: the sources are {', '.join(LANDING_SOURCES)}"
        )
    if reason is not None and reason not in set(Reason):
        raise PipelineError(f"unknown reason {reason!r}: the reasons are {', '.join(Reason)}")


def first_rejects(
    settings: Settings, filters: "RejectFilter", limit: int | None
) -> tuple[list[dict], list[tuple[str | None, str, int]]]:
    """The first quarantined records that pass `filters` (`limit`, else REJECTS_SHOWN), newest
    landing day first, and the totals of all that pass by source and reason."""
    from odavl_pipeline.db.server import connect
    from odavl_pipeline.ingest.report import list_rejects, reject_totals

    with connect(settings) as conn:
        rows = list_rejects(conn, filters, limit=limit or REJECTS_SHOWN)
        return rows, reject_totals(conn, filters)


def rejects_json_pieces(
    settings: Settings, filters: "RejectFilter", limit: int | None
) -> Iterator[str]:
    """One JSON array of every record that passes `filters` (the first `limit`), in pieces, as
    read: a file's million identical lines are a million entries."""
    from odavl_pipeline.db.server import connect
    from odavl_pipeline.ingest.report import rejects_json

    with connect(settings) as conn:
        yield from rejects_json(conn, filters, limit)


def retry_rejects(settings: Settings) -> Iterator[tuple[str, "RetryOutcome"]]:
    """Retry each source's quarantine (ingest/writer.py), each source's outcome as it ends."""
    from odavl_pipeline.db.server import connect
    from odavl_pipeline.ingest.landing import SOURCES
    from odavl_pipeline.ingest.writer import retry_quarantine

    with connect(settings) as conn:
        for source in SOURCES:
            yield source, retry_quarantine(conn, source)
