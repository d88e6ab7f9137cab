"""What `quota`, `rejects` and `doctor` print."""

from typing import TYPE_CHECKING

from odavl_pipeline.output.text import print_table, shorten

if TYPE_CHECKING:
    from odavl_pipeline.doctor import Finding
    from odavl_pipeline.ingest.writer import RetryOutcome

NO_SOURCE = "(no source)"  # a misplaced file outside every source's folder
DETAIL_WIDTH = 90


def print_quota(rows: list[dict]) -> None:
    """Each organization's usage against its quota, as of the marts' build."""
    print(
        f"{'organization':<24}{'tier':<11}{'metric':<10}{'used':>9}{'quota':>9}{'%':>8}  "
        f"{'status':<9}{'projected':>10}  exhausted on"
    )
    for row in rows:
        pct = "-" if row["pct_used"] is None else f"{row['pct_used']:.1f}"
        print(
            f"{row['org']:<24}{row['tier']:<11}{row['metric']:<10}{row['used']:>9,}"
            f"{row['quota']:>9,}{pct:>8}  {row['status']:<9}{row['projected']:>10,}  "
            f"{row['projected_exhaustion'] or '-'}"
        )
    if rows:
        print(f"\ncurrent periods as of {rows[0]['as_of']:%Y-%m-%d %H:%M} UTC")


def print_quarantine(
    rows: list[dict], totals: list[tuple[str | None, str, int]], filtered: bool
) -> None:
    """The first quarantined records (`rows`), then the totals by source and reason."""
    total = sum(records for _, _, records in totals)
    if not total:
        print(
            "no quarantined record"
            + (" matches these filters" if filtered else ": the quarantine is empty")
        )
        return
    more = " (--limit N shows more, --json all of them)" if len(rows) < total else ""
    print(f"{len(rows):,} of {total:,} quarantined records, newest day first{more}\n")
    print_table(
        ["source", "reason", "file:line", "detail"],
        [
            [
                row["source"] or NO_SOURCE,
                row["reason"],
                row["file"] if row["line"] is None else f"{row['file']}:{row['line']}",
                shorten(row["detail"], DETAIL_WIDTH),
            ]
            for row in rows
        ],
    )
    print("\nby source and reason:")
    print_table(
        ["source", "reason", "records"],
        [
            *([source or NO_SOURCE, reason, f"{records:,}"] for source, reason, records in totals),
            ["total", "", f"{total:,}"],
        ],
        right_aligned={"records"},
        indent="  ",
    )


def print_retried(source: str, outcome: "RetryOutcome") -> None:
    print(
        f"{source}: retried {outcome.lines:,}: {outcome.landed:,} accepted, "
        f"{outcome.duplicate:,} duplicate, {outcome.rejected:,} still rejected"
    )


def print_findings(findings: list["Finding"]) -> None:
    """Each check's finding and, for a problem or a warning, what to do."""
    from odavl_pipeline.doctor import PROBLEM, WARNING

    for finding in findings:
        label = {PROBLEM: "PROBLEM", WARNING: "warning"}.get(finding.status, finding.status)
        print(f"{label:<9}{finding.check:<15}{finding.summary}")
        if finding.fix and finding.status in (PROBLEM, WARNING):
            print(f"{'':<24}-> {finding.fix}")
