"""What `generate`, `run` and `demo` print."""

import signal
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from odavl_pipeline.generate import GenerateSummary
    from odavl_pipeline.pipeline_run import LandedRun

DEMO_USER = "alice@odavl.com"


def generated_line(summary: "GenerateSummary") -> str:
    return (
        f"wrote {summary.files:,} files, {summary.lines:,} lines for {summary.organizations} "
        f"organizations and {summary.projects} projects, {summary.first_day} .. {summary.end_day}"
    )


def print_generated(summary: "GenerateSummary", reference: Path) -> None:
    """The summary, a line per source, and where the organizations' reference data is."""
    print(generated_line(summary))
    for source, written in summary.sources.items():
        print(
            f"  {source:<18}{written.files:>6,} files{written.lines:>11,} lines  "
            f"({written.duplicates:,} duplicates, {written.conflicts:,} conflicts, "
            f"{written.malformed:,} malformed, {written.late:,} late)"
        )
    print(
        f"reference data for these organizations: {reference} "
        f"(load it with `odavl-pipeline seed --reference {reference}`)"
    )


def print_progress(message: str) -> None:
    """A line of the generator's progress, on standard error."""
    print(message, file=sys.stderr)


def print_nothing_landed(landing: str | Path) -> None:
    print(f"nothing has landed in {landing} for that range", file=sys.stderr)


def print_ingesting(days: Sequence[date], landing: str | Path) -> None:
    print(f"ingesting {days_text(days)} from {landing}", file=sys.stderr)


def days_text(days: Sequence[date]) -> str:
    """`2026-11-03`, or `12 landed days, 2026-10-01 .. 2026-11-03`."""
    if len(days) == 1:
        return str(days[0])
    return f"{len(days):,} landed days, {days[0]} .. {days[-1]}"


def print_run_ends(run: "LandedRun", marts_path: Path) -> None:
    """How each Dagster run ended (the last one's signal, if one stopped it), and the marts."""
    for result in run.results:
        ended = "success" if result.success else "FAILED"
        if run.interrupted and result is run.results[-1]:
            ended += f" ({signal.Signals(run.interrupted).name})"
        print(f"dagster run {result.run_id}: {ended}", file=sys.stderr)
    if marts_path.exists():
        print(
            f"marts: {marts_path} (`odavl-pipeline quota` shows quota status)",
            file=sys.stderr,
        )


def print_run_counts(table: dict[str, dict[str, int]], unread: list[dict]) -> None:
    """The counts by source, the files the run could not read, and what to look at next."""
    columns = ("files", "lines", "accepted", "duplicate", "pending", "rejected")
    print(f"{'source':<18}" + "".join(f"{c:>11}" for c in columns))
    for source, counts in table.items():
        print(f"{source:<18}" + "".join(f"{counts[c]:>11,}" for c in columns))
    _print_unread(unread)
    print(
        "\nnext: `odavl-pipeline quota` shows usage against quotas, `odavl-pipeline rejects` "
        "the quarantine, `odavl-pipeline dashboard` the dashboards and `odavl-pipeline ui` "
        "the runs and the asset graph."
    )


def _print_unread(unread: list[dict]) -> None:
    """The files this run could not read, so that nobody has to look for them."""
    failed = [row for row in unread if row["status"] == "failed"]
    misplaced = [row for row in unread if row["status"] == "misplaced"]
    if failed:
        print(
            f"\n{len(failed):,} file(s) failed and will be tried again by the next run "
            f"(`odavl-pipeline rejects --reason ingest_error`):"
        )
        for row in failed[:20]:
            print(f"  {row['file']}: {row['detail']}")
    if misplaced:
        print(
            f"\n{len(misplaced):,} misplaced file(s) not read (`odavl-pipeline rejects --reason "
            f"misplaced_file`): they belong in <source>/<YYYY-MM-DD>/<name>.ndjson[.gz]"
        )
        for row in misplaced[:20]:
            print(f"  {row['detail']}")
    if len(failed) > 20 or len(misplaced) > 20:
        print("  …")


def quotas_and_alerts(free: list[str], alerts: list[tuple[str, str, str]]) -> str:
    """Two lines: the organizations on FREE without a subscription, and the quota alerts
    recorded ((organization, metric, threshold), the first one named)."""
    example = (
        f", the first: {alerts[0][0]} {alerts[0][1]} "
        f"{'forecast to run out' if alerts[0][2] == 'forecast' else alerts[0][2] + ' %'}"
        if alerts
        else ""
    )
    return (
        f"\nQuotas       {len(free)} organizations on FREE without a subscription (calendar "
        f"months){': ' + ', '.join(free) if free else ''}; `odavl-pipeline quota` lists all\n"
        f"Alerts       {len(alerts)} quota alerts recorded{example}; sent signed when "
        f"ODAVL_ALERT_WEBHOOK_URL and ODAVL_ALERT_WEBHOOK_SECRET are set"
    )


def demo_ending(password_shown: bool, key_shown: bool) -> str:
    """How to open what the demo built, and as whom. A password or an API key is printed once,
    when it is created: a later demo says so instead of pointing above."""
    key = (
        "the API key printed above"
        if key_shown
        else "an API key (`odavl-pipeline keys create` makes one)"
    )
    password = (
        "with the password printed above for it (shown once, when the user is created);"
        if password_shown
        else "with its password, printed once by the `seed` or `demo` that created the user;"
    )
    return f"""
HTTP API     .venv/bin/odavl-pipeline api: records and live quota with {key}
Dashboards   .venv/bin/odavl-pipeline dashboard, then open http://127.0.0.1:8501
             sign in as {DEMO_USER} (owner of the demo organization odavl-test-org)
             {password}
             set a new one with: .venv/bin/odavl-pipeline users set-password {DEMO_USER}
Dagster UI   .venv/bin/odavl-pipeline ui, then open http://127.0.0.1:3000 (this run, the assets)"""
