"""`odavl-pipeline trace`: where a billed number comes from, as the marts were last built. The
work is odavl_pipeline/marts/trace.py's (the Billing page's drill-down runs the same
statements); this parses the arguments and prints."""

import argparse
import json
from datetime import UTC, date, datetime

from odavl_pipeline.billing.catalogue import QUOTA_METRICS
from odavl_pipeline.errors import PipelineError
from odavl_pipeline.settings import Settings

DEFAULT_LIMIT = 1_000  # a day's entries printed at most, unless --limit says otherwise


def add_commands(commands) -> None:
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
        type=_day,
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


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a day (YYYY-MM-DD): {text!r}") from None


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


def cmd_trace(args, settings: Settings) -> None:
    from odavl_pipeline.marts.store import MartsNotBuilt
    from odavl_pipeline.marts.trace import trace_billed_number

    try:
        trace = trace_billed_number(
            settings.marts_path, args.org, args.metric, args.period_start, args.day, args.limit
        )
    except MartsNotBuilt as error:
        raise PipelineError(str(error)) from None
    if args.json:
        print(json.dumps(trace.as_json()))
        return
    _print_days(trace)
    if trace.day is None:
        print("\n--day YYYY-MM-DD lists one day's usage events and where each came from")
    else:
        _print_events(trace)


def _print_days(trace) -> None:
    period = trace.period
    span = f"{period.period_start:%Y-%m-%d %H:%M} to {period.period_end:%Y-%m-%d %H:%M} UTC"
    counted = "billed" if period.closed else "used so far (open period)"
    print(
        f"{period.org} {period.metric}, billing period {span}: {period.used:,} {counted}, "
        f"quota {period.quota:,}, from {len(trace.days):,} day(s) of usage"
    )
    if not trace.days:
        return
    billed = "billed here" if period.closed else "so far"
    print(
        f"{'day (UTC)':<12}{'occurred':>10}{'events':>9}{'billed later':>14}"
        f"{'carried in':>12}{billed:>13}"
    )
    for day in trace.days:
        print(
            f"{day.day:%Y-%m-%d}  {day.occurred:>10,}{day.events:>9,}{day.billed_later:>14,}"
            f"{day.carried_in:>12,}{day.billed:>13,}"
        )


def _print_events(trace) -> None:
    shown = f"the first {len(trace.events):,}" if trace.more_events else f"{len(trace.events):,}"
    print(f"\n{trace.period.metric} usage entries of {trace.day} (UTC): {shown}")
    if not trace.events:
        return
    width = min(max(len("event id"), *(len(e.event_id) for e in trace.events)), 40)
    print(
        f"{'occurred (UTC)':<21}{'ingested (UTC)':<21}{'quantity':>9}  {'event id':<{width}}  "
        f"{'project':<14}came from"
    )
    for entry in trace.events:
        print(
            f"{entry.occurred_at:%Y-%m-%d %H:%M:%S}  {entry.ingested_at:%Y-%m-%d %H:%M:%S}  "
            f"{entry.quantity:>9,}  {entry.event_id:<{width}}  {entry.project or '-':<14}"
            f"{entry.came_from}"
        )
    if trace.more_events:
        print(f"… and more: --limit N lists more than {len(trace.events):,}")
    if any(entry.request for entry in trace.events):
        print(
            "an API request's record is the record's `index` in the API's answer: 0 for the "
            "request's first"
        )
