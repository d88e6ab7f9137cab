"""What `trace` prints: a billed number's days and, for one day, its usage events each with
where it came from."""

from typing import TYPE_CHECKING

from odavl_pipeline.output.text import print_json

if TYPE_CHECKING:
    from odavl_pipeline.marts.trace import Trace


def print_trace(trace: "Trace", as_json: bool) -> None:
    if as_json:
        print_json(trace.as_json())
        return
    _print_days(trace)
    if trace.day is None:
        print("\n--day YYYY-MM-DD lists one day's usage events and where each came from")
    else:
        _print_events(trace)


def _print_days(trace: "Trace") -> None:
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


def _print_events(trace: "Trace") -> None:
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
