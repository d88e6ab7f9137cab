"""Asset checks proving ingestion's invariants on the latest ingestion run of each source."""

from collections.abc import Callable

import dagster as dg

from odavl_pipeline.defs.resources import OdavlResource
from odavl_pipeline.ingest import invariants
from odavl_pipeline.ingest.landing import SOURCES


def _check(source: str, name: str, description: str,
           finding: Callable[..., invariants.Finding], per_source: bool) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=dg.AssetKey([source]), name=name, description=description,
                    blocking=False)
    def check(odavl: OdavlResource) -> dg.AssetCheckResult:
        with odavl.connect() as conn:
            run_id = invariants.latest_run_id(conn, source)
            result = finding(conn, source, run_id) if per_source else finding(conn, run_id)
        return dg.AssetCheckResult(passed=result.passed, description=result.description,
                                   metadata={"violations": result.violations,
                                             "ingestion_run": run_id or "none"})

    return check


ingest_checks = [
    *(_check(source, "lines_balance", "Lines read = accepted + duplicate + pending + rejected, "
             "for every file of the latest ingestion.", invariants.lines_balance, True)
      for source in SOURCES),
    *(_check(source, "rows_match_ledger", "Each file's accepted lines are exactly its rows in "
             "the table: nothing lost, nothing counted twice.", invariants.rows_match_ledger, True)
      for source in SOURCES if source != "fix_attestations"),
    *(_check(source, "references_resolve", "Every row of the latest ingestion refers to an "
             "existing organization and project (the ids are not foreign keys, for speed).",
             invariants.references_resolve, True)
      for source in SOURCES),
    *(_check(source, "no_failed_files", "No file failed to ingest (`ingest_error`): a failed "
             "file is retried by every run until it goes through.", invariants.no_failed_files, True)
      for source in SOURCES),
    _check("error_events", "signature_counts", "Every touched signature counts each distinct "
           "event once.", invariants.signature_counts, False),
    _check("fix_attestations", "chains_intact", "No forks among verified attestations; every "
           "verified link has a verified parent.", invariants.chains_intact, False),
]
