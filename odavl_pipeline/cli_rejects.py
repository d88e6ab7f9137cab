"""`odavl-pipeline rejects` and `rejects retry`: the quarantine. The work is
odavl_pipeline/ingest/rejects.py's; what is printed, output/reading.py's."""

import argparse

from odavl_pipeline.cli_arguments import Commands, day, positive
from odavl_pipeline.errors import require_migrated
from odavl_pipeline.ingest.rejects import (
    LANDING_SOURCES,
    REJECTS_SHOWN,
    first_rejects,
    rejects_json_pieces,
    require_known,
    retry_rejects,
)
from odavl_pipeline.output import reading
from odavl_pipeline.output.text import print_pieces
from odavl_pipeline.settings import Settings


def add_commands(commands: Commands) -> None:
    listing = commands.add_parser(
        "rejects",
        help="list the quarantine",
        description="The quarantined records, newest landing day first: a table of the first ones and "
        "the totals by source and reason, or with --json every record that passes "
        "the filters (the first N with --limit N).",
    )
    listing.add_argument("--source", help=f"only this source: {', '.join(LANDING_SOURCES)}")
    listing.add_argument(
        "--reason", help="only this reason (e.g. unknown_org; another is refused with the list)"
    )
    listing.add_argument(
        "--file", help="only files whose path (relative to the landing root) contains this"
    )
    listing.add_argument("--day", type=day, help="only files landed in this day's folder")
    listing.add_argument(
        "--json", action="store_true", help="print one JSON array, all rows unless --limit"
    )
    listing.add_argument(
        "--limit",
        type=positive,
        metavar="N",
        help=f"rows to print at most (default {REJECTS_SHOWN}; with --json, all)",
    )
    listing.set_defaults(handler=cmd_rejects)
    actions = listing.add_subparsers(metavar="action")
    actions.add_parser("retry", help="retry what can now be accepted").set_defaults(
        handler=cmd_rejects_retry
    )


def cmd_rejects(args: argparse.Namespace, settings: Settings) -> None:
    from odavl_pipeline.ingest.report import RejectFilter

    require_known(args.source, args.reason)
    require_migrated(settings)
    filters = RejectFilter(args.source, args.reason, args.file, args.day)
    if args.json:
        print_pieces(rejects_json_pieces(settings, filters, args.limit))
        return
    rows, totals = first_rejects(settings, filters, args.limit)
    reading.print_quarantine(rows, totals, filtered=filters != RejectFilter())


def cmd_rejects_retry(args: argparse.Namespace, settings: Settings) -> None:
    require_migrated(settings)
    for source, outcome in retry_rejects(settings):
        reading.print_retried(source, outcome)
