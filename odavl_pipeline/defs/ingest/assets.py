"""One asset per landing source, partitioned by landed day: its PostgreSQL table."""

import warnings
from datetime import date

import dagster as dg
import psycopg

from odavl_pipeline.defs.ingest.checks import check_specs, evaluate_checks
from odavl_pipeline.defs.ingest.partitions import landed_days
from odavl_pipeline.defs.resources import DatabaseResource, LandingZoneResource
from odavl_pipeline.ingest.landing import SOURCES
from odavl_pipeline.ingest.progress import Throttled
from odavl_pipeline.ingest.run import IngestReport, ingest_days

warnings.filterwarnings("ignore", category=dg.BetaWarning)  # backfill_policy is beta in 1.13

PROGRESS_SECONDS = 2.0  # a log line per file would be an event per file: thousands in a backfill

DESCRIPTIONS = {
    "usage_events": "Billing usage events, deduplicated by organization and event id.",
    "error_events": "Insight error events, grouped into error signatures per project.",
    "fix_attestations": "Autopilot fix attestations, hash-verified and chained per project.",
    "audit_results": "Guardian audits with their issues, deduplicated per project.",
}

# External: the ingest step of the source records a materialization of a day's partition when
# it has read files of that day, so the UI's "% filled" is the share of landed days (of any
# source) that hold files of this one.
landing_specs = [
    dg.AssetSpec(
        ["landing", source],
        group_name="landing",
        kinds={"file"},
        description=f"NDJSON files landed under `{source}/<day>/` by the ODAVL products.",
        partitions_def=landed_days,
    )
    for source in SOURCES
]


def build_ingest_asset(source: str) -> dg.AssetsDefinition:
    @dg.asset(
        name=source,
        description=DESCRIPTIONS[source],
        deps=[dg.AssetKey(["landing", source])],
        partitions_def=landed_days,
        backfill_policy=dg.BackfillPolicy.single_run(),
        check_specs=check_specs(source),
        group_name="ingestion",
        kinds={"postgres", "python"},
    )
    def ingest(
        context: dg.AssetExecutionContext,
        database: DatabaseResource,
        landing_zone: LandingZoneResource,
    ) -> dg.MaterializeResult:
        days = [date.fromisoformat(key) for key in context.partition_keys]
        with database.connect() as conn:
            report = ingest_days(
                conn,
                landing_zone.settings().landing,
                source,
                days,
                run_id=context.run.run_id,
                progress=Throttled(context.log.info, PROGRESS_SECONDS),
            )
            checks = evaluate_checks(conn, source, context.run.run_id)
            for landed in files_read(conn, source, context.run.run_id):
                context.log_event(landed)
        misplaced = _log_report(context, report)
        return dg.MaterializeResult(
            metadata={
                **report.counts.as_dict(),
                "failed_files": len(report.failed),
                "misplaced_files": misplaced,
                "skipped_files": report.skipped_files,
                "retried_lines": report.retried.lines,
                "retried_landed": report.retried.landed,
                "rows_per_second": dg.FloatMetadataValue(round(report.lines_per_second, 1)),
                "days": f"{days[0]} .. {days[-1]} ({len(days)} landed)",
            },
            check_results=checks,
        )

    return ingest


def files_read(conn: psycopg.Connection, source: str, run_id: str) -> list[dg.AssetMaterialization]:
    """A materialization of `source`'s landing asset for each day this run read files of, from
    the ledger: the files and their lines."""
    rows = conn.execute(
        """SELECT day, count(*), sum(lines) FROM ingested_files
           WHERE run_id = %s AND source::text = %s AND status = 'ingested' AND day IS NOT NULL
           GROUP BY day ORDER BY day""",
        (run_id, source),
    ).fetchall()
    return [
        dg.AssetMaterialization(
            ["landing", source],
            partition=day.isoformat(),
            metadata={"files": files, "lines": int(lines)},
        )
        for day, files, lines in rows
    ]


def _log_report(context: dg.AssetExecutionContext, report: IngestReport) -> int:
    """Log what the ingestion did and what went wrong; return the misplaced files reported."""
    context.log.info(
        f"{report.source}: {report.counts.as_dict()} in {report.seconds:.1f}s; "
        f"{report.skipped_files} files already ingested; "
        f"retried from quarantine: {report.retried}"
    )
    for path, error in report.failed:
        context.log.error(f"{path} failed; the next run tries it again: {error}")
    for path in report.changed:
        context.log.warning(f"{path} changed while it was read; the next run ingests it")
    misplaced = sum(counts.files for counts in report.misplaced.values())
    if misplaced:
        context.log.warning(
            f"{misplaced} misplaced file(s) reported: `odavl-pipeline rejects "
            f"--reason misplaced_file` lists them"
        )
    if report.retry_error:
        context.log.error(
            f"retrying the quarantine failed; the next run tries again: {report.retry_error}"
        )
    return misplaced


ingest_assets = [build_ingest_asset(source) for source in SOURCES]
