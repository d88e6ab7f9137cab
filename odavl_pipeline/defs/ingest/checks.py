"""Ingestion's invariants, checked by each ingest asset right after it ingests (in the same step,
so that a run pays no start-up per check), on the files its own run ingested."""

from collections.abc import Callable
from dataclasses import dataclass

import dagster as dg
import psycopg

from odavl_pipeline.ingest import invariants
from odavl_pipeline.ingest.landing import SOURCES


@dataclass(frozen=True)
class Invariant:
    name: str
    description: str
    finding: Callable[..., invariants.Finding]
    per_source: bool = True  # the finding takes the source; otherwise it knows its own


COMMON = [
    Invariant(
        "lines_balance",
        "Lines read = accepted + duplicate + pending + rejected, for every file this run ingested.",
        invariants.lines_balance,
    ),
    Invariant(
        "rows_match_ledger",
        "Each file's accepted lines are exactly its rows in the table: "
        "nothing lost, nothing counted twice.",
        invariants.rows_match_ledger,
    ),
    Invariant(
        "references_resolve",
        "Every row this run ingested refers to an existing "
        "organization and project (the ids are not foreign keys, for speed).",
        invariants.references_resolve,
    ),
    Invariant(
        "no_failed_files",
        "No file failed to ingest (`ingest_error`): a failed file is "
        "retried by every run until it goes through.",
        invariants.no_failed_files,
    ),
]
SPECIFIC = {
    "error_events": [
        Invariant(
            "signature_counts",
            "Every touched signature counts each distinct event once.",
            invariants.signature_counts,
            per_source=False,
        )
    ],
    "fix_attestations": [
        Invariant(
            "chains_intact",
            "No forks among verified attestations; every verified link has a verified parent.",
            invariants.chains_intact,
            per_source=False,
        )
    ],
}
# attestations settle in their chains after their file is counted: chains_intact checks them
INVARIANTS = {
    source: [
        invariant
        for invariant in COMMON
        if not (source == "fix_attestations" and invariant.name == "rows_match_ledger")
    ]
    + SPECIFIC.get(source, [])
    for source in SOURCES
}


def check_specs(source: str) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            invariant.name, asset=dg.AssetKey([source]), description=invariant.description
        )
        for invariant in INVARIANTS[source]
    ]


def evaluate_checks(
    conn: psycopg.Connection, source: str, run_id: str
) -> list[dg.AssetCheckResult]:
    """Every invariant of `source` on the files run `run_id` ingested."""
    results = []
    for invariant in INVARIANTS[source]:
        found = (
            invariant.finding(conn, source, run_id)
            if invariant.per_source
            else invariant.finding(conn, run_id)
        )
        results.append(
            dg.AssetCheckResult(
                asset_key=dg.AssetKey([source]),
                check_name=invariant.name,
                passed=found.passed,
                description=found.description,
                metadata={"violations": found.violations, "ingestion_run": run_id},
            )
        )
    return results
