"""The commands `demo` strings together (`db upgrade`, `generate`, `seed`, `run`), as functions
of typed arguments: each calls the work in its package and prints with `output`. cli.py parses
the command line into them."""

import signal
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from odavl_pipeline import clock
from odavl_pipeline.errors import require_migrated
from odavl_pipeline.output import data, database
from odavl_pipeline.output.text import print_json
from odavl_pipeline.settings import Settings

if TYPE_CHECKING:
    from odavl_pipeline.generate import GenerateOptions, GenerateSummary


def upgrade(settings: Settings) -> None:
    """Migrate the database to the newest revision."""
    from odavl_pipeline.db import migrate
    from odavl_pipeline.db.server import server_url

    url = server_url(settings)
    migrate.upgrade(url)
    database.print_upgraded(url)


def yesterday() -> date:
    """The last day `generate` writes unless told otherwise (UTC)."""
    return clock.today() - timedelta(days=1)


def generate(
    settings: Settings,
    options: "GenerateOptions",
    out: Path | None = None,
    reference_out: Path | None = None,
    quiet: bool = False,
) -> tuple["GenerateSummary", Path]:
    """Write the landing files `options` describe (in the landing folder unless `out`), with a
    line of progress per source and day on standard error unless `quiet`; their summary, and
    where the organizations' reference data is (reference.json in the home unless
    `reference_out`)."""
    from odavl_pipeline.generate import generate_landing

    reference = reference_out or settings.home / "reference.json"
    summary = generate_landing(
        out or settings.landing_dir,
        options,
        progress=None if quiet else data.print_progress,
        reference_path=reference,
    )
    return summary, reference


def seed(settings: Settings, references: list[Path]) -> list[str]:
    """Load the demo reference data and these reference files, then place the demo landing
    files; the secrets shown (once)."""
    from odavl_pipeline.db.seed import SEEDS_DIR, copy_seed_landing, load_reference_files
    from odavl_pipeline.db.server import server_url

    require_migrated(settings)
    shown = []
    files = [SEEDS_DIR / "reference.json", *references]
    for path, report in load_reference_files(server_url(settings), files):
        database.print_seeded(path, report)
        shown += report.secrets
    database.print_landing_copied(copy_seed_landing(settings.landing_dir), settings.landing_dir)
    return shown


def run(
    settings: Settings,
    start: date | None = None,
    end: date | None = None,
    *,
    log_level: str,
    full_marts: bool = False,
    as_json: bool = False,
) -> int:
    """Ingest the landed days in [start, end] and rebuild the marts, in a Dagster run per range
    of those days, a line per step as it ends; then the counts by source. The exit code: 0, 1 when a run failed, or
    128 + the signal that stopped it."""
    from odavl_pipeline import pipeline_run
    from odavl_pipeline.output.stages import StageLines

    days = pipeline_run.landed_days(settings, start, end)
    if not days:
        data.print_nothing_landed(settings.landing)
        landed = pipeline_run.nothing_run()
    else:
        data.print_ingesting(days, settings.landing)
        with StageLines(settings) as stages:
            try:
                landed = pipeline_run.run_days(settings, days, log_level, full_marts, stages)
            except KeyboardInterrupt:  # SIGINT or SIGTERM before a run started: none to end
                return 128 + signal.SIGINT
        data.print_run_ends(landed, settings.marts_path)
    table = {source: counts.as_dict() for source, counts in landed.counts.items()}
    if as_json:
        print_json(table)
    else:
        data.print_run_counts(table, landed.unread)
    if landed.interrupted:
        return 128 + landed.interrupted
    return 0 if landed.succeeded else 1
