"""What `stripe`, `api`, `ui` and `dashboard` print."""

import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from odavl_pipeline.stripe_billing.sync import SyncReport
    from odavl_pipeline.stripe_billing.usage_reports import ReportSummary


def print_synced(report: "SyncReport") -> None:
    print(
        f"customers: {report.customers:,} ({report.customers_linked:,} linked to an organization); "
        f"subscriptions: {report.subscriptions:,} ({report.subscriptions_applied:,} applied)"
    )
    for note in report.notes:
        print(f"  {note}")


def print_reported(summary: "ReportSummary") -> None:
    """The report's figures on one line, then what failed or was held back, one line each."""
    print(
        ", ".join(
            f"{name.replace('_', ' ')} {count:,}" for name, count in summary.as_dict().items()
        )
    )
    for identifier, reason in summary.failed:
        print(f"  failed {identifier}: {reason}")
    for discrepancy in summary.discrepancies:
        print(f"  discrepancy, not billed again: {discrepancy}")
    for credit in summary.credits_due:
        print(f"  credit due, nothing negative sent: {credit}")
    if summary.not_attempted:
        print(f"  Stripe was unreachable: {summary.not_attempted:,} left for the next report")


def print_requeued(requeued: list[str], missing: list[str]) -> None:
    """The events pending again; on standard error, the ids asked for that were not set aside."""
    for event_id in requeued:
        print(f"  {event_id}")
    print(
        f"{len(requeued):,} Stripe event(s) set aside are pending again; `odavl-pipeline stripe "
        f"listen` processes them"
    )
    if missing:
        print(f"not set aside (unknown, or not dead): {', '.join(missing)}", file=sys.stderr)


def print_api_serving(host: str, port: int, workers: int) -> None:
    processes = f", {workers} processes" if workers > 1 else ""
    print(
        f"HTTP API on http://{host}:{port} (its description at /openapi.json{processes})",
        flush=True,
    )


def print_ui_serving(host: str, port: int, dagster_home: Path) -> None:
    print(
        f"Dagster UI on http://{host}:{port} (instance {dagster_home}), "
        f"with the daemon (schedules, sensors, run queue)",
        file=sys.stderr,
        flush=True,
    )


def print_dashboards_serving(host: str, port: int, marts_path: Path) -> None:
    print(
        f"dashboards on http://{host}:{port} (marts {marts_path})",
        file=sys.stderr,
        flush=True,
    )
