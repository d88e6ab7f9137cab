"""Generating a whole landing zone: the reference data, then each source's files."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from odavl_pipeline.domain.records import SOURCES
from odavl_pipeline.generate.attestations import FixAttestations
from odavl_pipeline.generate.audits import AuditResults
from odavl_pipeline.generate.errors import ErrorEvents
from odavl_pipeline.generate.options import GenerateOptions, GenerateSummary
from odavl_pipeline.generate.reference import synthetic_reference
from odavl_pipeline.generate.source import Source
from odavl_pipeline.generate.usage import UsageEvents
from odavl_pipeline.generate.world import World
from odavl_pipeline.generate.writer import write_source

SOURCE_CLASSES: dict[str, type[Source]] = {
    source.name: source for source in (UsageEvents, ErrorEvents, FixAttestations, AuditResults)
}


def generate_landing(
    out: Path,
    options: GenerateOptions,
    progress: Callable[[str], None] | None = None,
    reference_path: Path | None = None,
) -> GenerateSummary:
    """Write `out/<source>/<YYYY-MM-DD>/*.ndjson[.gz]`, and the organizations and projects they
    use to `reference_path` (default `out/reference.json`; a landing zone's root would report it
    as a misplaced file, so the CLI writes it beside the landing zone).

    Existing files with the same names are replaced; other files are left alone.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    reference = synthetic_reference(options)
    _write_reference(Path(reference_path or out / "reference.json"), reference)
    world = World(options, reference)
    if progress:
        progress(f"reference.json: {len(world.orgs)} organizations, {len(world.projects)} projects")
    days = [options.first_day + dt.timedelta(days=offset) for offset in range(options.days)]
    sources = {
        name: write_source(out, SOURCE_CLASSES[name](world, options), options, days, progress)
        for name in SOURCES
    }
    return GenerateSummary(
        out=out,
        first_day=days[0],
        end_day=days[-1],
        organizations=len(world.orgs),
        projects=len(world.projects),
        sources=sources,
    )


def _write_reference(path: Path, reference: dict[str, Any]) -> None:
    """Write the reference data atomically (a temporary file renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(orjson.dumps(reference, option=orjson.OPT_INDENT_2) + b"\n")
    os.replace(tmp, path)
