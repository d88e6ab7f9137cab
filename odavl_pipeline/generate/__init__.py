"""Synthetic landing-zone data: realistic, deterministic NDJSON for the four sources."""

from odavl_pipeline.generate.synthetic import (
    MALFORMED_KINDS,
    SOURCES,
    GenerateOptions,
    GenerateSummary,
    SourceSummary,
    generate_landing,
    synthetic_reference,
)

__all__ = [
    "MALFORMED_KINDS",
    "SOURCES",
    "GenerateOptions",
    "GenerateSummary",
    "SourceSummary",
    "generate_landing",
    "synthetic_reference",
]
