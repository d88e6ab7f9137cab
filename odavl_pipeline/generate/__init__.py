"""Synthetic landing-zone data: realistic, deterministic NDJSON for the four sources.

All randomness comes from `random.Random` streams seeded with strings derived from
`GenerateOptions.seed`, so the same options give byte-identical files. Records are
streamed to disk one hour of one day at a time; what stays in memory is the reference
data, one attestation chain head per project and the small backlog of late and
duplicated lines waiting for a later file.

Besides clean records the generator writes, on purpose and counted in the summary:
exact duplicates (in the same file or a later one), conflicting duplicates (same key,
different content, always after the original), malformed lines named after the
quarantine reason they should get, late records (in a later day folder than their
timestamp), rare attestation chain forks and a few blank lines.

The modules: `options` (what to generate, what was generated), `vocabulary` (word
lists and constant tables), `reference` (organizations and projects), `world` and
`sites` (the simulated organizations, projects, error sites and the clock), one module
per source (`usage`, `errors`, `attestations`, `audits`, on the common `source`),
`writer` (the landing files) and `landing` (the whole run).
"""

from odavl_pipeline.domain.records import SOURCES
from odavl_pipeline.generate.landing import generate_landing
from odavl_pipeline.generate.options import (
    MALFORMED_KINDS,
    GenerateOptions,
    GenerateSummary,
    SourceSummary,
)
from odavl_pipeline.generate.reference import synthetic_reference

__all__ = [
    "MALFORMED_KINDS",
    "SOURCES",
    "GenerateOptions",
    "GenerateSummary",
    "SourceSummary",
    "generate_landing",
    "synthetic_reference",
]
