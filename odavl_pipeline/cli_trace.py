"""`odavl-pipeline trace`: where a billed number comes from, as the marts were last built. The
work is odavl_pipeline/marts/trace.py's (the Billing page's drill-down runs the same
statements); what is printed, output/trace.py's."""

import argparse
from datetime import UTC, date, datetime

from odavl_pipeline.billing.catalogue import QUOTA_METRICS
from odavl_pipeline.cli_arguments import Commands, day
from odavl_pipeline.errors import PipelineError
from odavl_pipeline.output.trace import print_trace
from odavl_pipeline.settings import Settings

DEFAULT_LIMIT = 1_000  # a day's entries printed at most, unless --limit says otherwise


def add_commands(commands: Commands) -> None:
    trace = commands.add_parser(
        "trace",
        help="where a billed number comes from: its days, and a day's usage events each with "
        "its file and line, API request and record, or correction batch",
    )
    trace.add_argument("org", help="organization slug")
    trace.add_argument("--metric", required=True, choices=QUOTA_METRICS)
    trace.add_argument(
        "--period-start",
        type=_day_or_instant,
        default=None,
        metavar="DAY|INSTANT",
        help="the billing period starting then: a day (the period starting on that UTC day) or "
        "an ISO 8601 instant (default: the period holding --day, else the latest)",
    )
    trace.add_argument(
        "--day",
        type=day,
        default=None,
        metavar="YYYY-MM-DD",
        help="list this UTC day's usage events and their origin",
    )
    trace.add_argument(
        "--limit",
        type=_positive,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"the day's events listed at most (default {DEFAULT_LIMIT:,})",
    )
    trace.add_argument("--json", action="store_true", help="one JSON object")
    trace.set_defaults(handler=cmd_trace)


def _day_or_instant(text: str) -> date | datetime:
    """A day as given, or an instant (UTC unless it says otherwise)."""
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a day (YYYY-MM-DD) or an ISO 8601 instant: {text!r}"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"a whole number of at least 1, not {text!r}")
    return value


def cmd_trace(args: argparse.Namespace, settings: Settings) -> None:
    from odavl_pipeline.marts.store import MartsNotBuilt
    from odavl_pipeline.marts.trace import trace_billed_number

    try:
        trace = trace_billed_number(
            settings.marts_path, args.org, args.metric, args.period_start, args.day, args.limit
        )
    except MartsNotBuilt as error:
        raise PipelineError(str(error)) from None
    print_trace(trace, args.json)
