"""What `run` shows of its Dagster run, on standard error, as the run goes."""

import shutil
import sys
from types import TracebackType
from typing import TYPE_CHECKING, Self

from odavl_pipeline.output.text import shorten
from odavl_pipeline.settings import Settings

if TYPE_CHECKING:
    from odavl_pipeline.orchestration import RunStatus, StepReport


class StageLines:
    """A line per step as it ends and, on a terminal, a status line rewritten in place meanwhile
    (erased on exit). It hears the run as orchestration's RunListener."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.live = sys.stderr.isatty()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.erase_status()

    def step_ended(self, step: "StepReport") -> None:
        self.erase_status()
        print(self.line(step), file=sys.stderr, flush=True)
        if step.closes_held_by:
            print(
                "  billing periods past their end wait to close until these usage files are "
                "ingested as they are (`odavl-pipeline run` again; `doctor`):\n"
                + "\n".join(f"    {held}" for held in step.closes_held_by),
                file=sys.stderr,
                flush=True,
            )
        if step.late_carried:
            print(
                "  late usage (it arrived after its own period closed) billed in the open "
                "period instead:\n" + "\n".join(f"    {late}" for late in step.late_carried),
                file=sys.stderr,
                flush=True,
            )

    def status(self, status: "RunStatus") -> None:
        """The cursor stays at the start of the line: what a step process prints covers it."""
        if not self.live:
            return
        parts = [f"{status.seconds:.0f} s"]
        if status.running:
            parts.append("running " + ", ".join(status.running))
        if status.latest:
            parts.append(status.latest)
        width = shutil.get_terminal_size().columns - 1
        sys.stderr.write(f"\033[K{shorten(' | '.join(parts), width)}\r")
        sys.stderr.flush()

    def erase_status(self) -> None:
        if self.live:
            sys.stderr.write("\033[K")

    def line(self, step: "StepReport") -> str:
        """`usage_events   61 files   41,765 rows accepted   293 rejected   4.2 s`"""
        from odavl_pipeline.domain.records import SOURCES

        if not step.succeeded:
            return f"{step.step:<18}FAILED after {step.seconds:.1f} s: {shorten(step.error, 80)}"
        checks = (
            f"{len(step.failed_checks)} check(s) failed: {', '.join(step.failed_checks)}"
            if step.failed_checks
            else "checks passed"
        )
        if step.step in SOURCES:  # its checks only when one failed: the line stays short
            done = self.ingested(step) + (f", {checks}" if step.failed_checks else "")
        else:
            done = f"built {len(step.assets)} tables, {checks}"
        return f"{step.step:<18}{done}  {step.seconds:.1f} s"

    def ingested(self, step: "StepReport") -> str:
        """What the step's ingestion run accepted and rejected, as its ledger says."""
        from odavl_pipeline.db.server import connect
        from odavl_pipeline.ingest.report import run_counts

        with connect(self.settings) as conn:
            counts = run_counts(conn, step.run_id)[step.step]
        pending = f"  {counts.pending:>6,} pending" if counts.pending else ""
        return (  # two spaces between the figures, whatever their width
            f"{counts.files:>5,} files  {counts.accepted:>9,} rows accepted"
            f"  {counts.rejected:>5,} rejected{pending}"
        )
