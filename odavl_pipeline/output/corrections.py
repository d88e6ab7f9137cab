"""What `corrections …` prints (CONTRACT.md section 8)."""

import sys
from datetime import datetime
from typing import TYPE_CHECKING

from odavl_pipeline.output.text import print_json

if TYPE_CHECKING:
    from odavl_pipeline.billing.corrections import Added

SHOWN_REJECTS = 20  # refused lines `add` and `preview` print at most (`--json` has them all)


def print_created(batch_id: int, org: str, start: datetime, end: datetime) -> None:
    """The draft's window, then its id alone on the last line."""
    print(f"draft {batch_id} of {org}: [{start.isoformat()}, {end.isoformat()})")
    print(batch_id)


def print_added(batch_id: int, file_name: str, added: "Added") -> None:
    print(
        f"batch {batch_id}: {added.accepted:,} record(s) of {file_name} staged, "
        f"{added.rejected:,} refused"
    )


def print_refused(batch_id: int, rejects: list[dict]) -> None:
    """On standard error: the first refused lines, and why the batch cannot be committed."""
    for reject in rejects:
        print(_reject_line(reject), file=sys.stderr)
    print(
        f"a batch with refused records cannot be committed: correct them and add "
        f"the file again (`corrections preview {batch_id} --json` lists them all)",
        file=sys.stderr,
    )


def print_voided_where(batch_id: int, count: int) -> None:
    print(f"batch {batch_id}: {count:,} more event(s) of its window to void")


def print_voided_ids(batch_id: int, missing: list[str]) -> None:
    """What the batch voids; on standard error, the listed ids it cannot."""
    print(f"batch {batch_id}: voids the listed events but {len(missing):,}")
    if missing:
        shown = ", ".join(missing[:SHOWN_REJECTS])
        print(
            f"{len(missing):,} id(s) are no counted event of the window: {shown}",
            file=sys.stderr,
        )


def print_preview(result: dict, as_json: bool) -> None:
    """What committing would change; the first refused lines on standard error."""
    if as_json:
        print_json(result)
        return
    events = result["events"]
    print(
        f"batch {result['batch']} ({result['state']}): {events['added']:,} added, "
        f"{events['amended']:,} amended, {events['voided']:,} voided"
    )
    _print_changes(result["changes"])
    for reject in result["rejected"][:SHOWN_REJECTS]:
        print(_reject_line(reject), file=sys.stderr)


def print_applied(batch_id: int, applied: bool, done: str) -> None:
    """`done` is "committed" or "reverted"; a batch already so says that the marts rebuild."""
    print(
        f"batch {batch_id} {done}"
        if applied
        else f"batch {batch_id} was {done} already: the marts are rebuilt"
    )


def print_rebuilt(run_id: str, success: bool, tags: dict[str, str]) -> None:
    """The marts run and how it ended; on failure, that the batch stands (standard error)."""
    status = "SUCCESS" if success else "FAILED"
    print(f"dagster run {run_id}: {status} (marts rebuilt, tagged {tags})")
    if not success:
        print(
            "error: the marts run failed; the batch stands: run the same command again",
            file=sys.stderr,
        )


def print_discarded(batch_id: int) -> None:
    print(f"batch {batch_id} discarded")


def print_batches(batches: list[dict]) -> None:
    print(f"{'id':>6}  {'org':<22}{'state':<11}{'window':<37}{'events':<48}by: reason")
    for batch in batches:
        window = f"{batch['start'][:16]} – {batch['end'][:16]}"
        print(
            f"{batch['id']:>6}  {batch['org']:<22}{batch['state']:<11}{window:<37}"
            f"{_events(batch['events']):<48}{batch['by']}: {batch['reason']}"
        )


def print_batch(batch: dict) -> None:
    """A batch's fields, its events and the billed figures it changed."""
    for name in ("id", "org", "state", "start", "end", "replace", "reason", "by", "created_at"):
        print(f"{name + ':':<15}{batch[name]}")
    for name in ("committed_at", "reverted_at", "reverted_by", "revert_reason"):
        if batch[name] is not None:
            print(f"{name + ':':<15}{batch[name]}")
    print(f"{'events:':<15}{_events(batch['events'])}")
    _print_changes(batch["changes"])


def _events(events: dict) -> str:
    return ", ".join(f"{count:,} {name}" for name, count in events.items())


def _print_changes(changes: list[dict]) -> None:
    if not changes:
        print("no billed figure changes")
        return
    print(
        f"{'period':<12}{'metric':<10}{'closed':<8}{'used before':>12}{'after':>10}"
        f"{'quota':>9}{'overage':>9}{'after':>8}  booked in"
    )
    for change in changes:
        print(
            f"{change['period_start'][:10]:<12}{change['metric']:<10}"
            f"{'yes' if change['closed'] else 'no':<8}{change['used_before']:>12,}"
            f"{change['used_after']:>10,}{change['quota']:>9,}{change['overage_before']:>9,}"
            f"{change['overage_after']:>8,}  {(change['booked_in'] or '-')[:10]}"
        )


def _reject_line(reject: dict) -> str:
    return f"{reject['file']}:{reject['line']}: {reject['reason']}: {reject['detail']}"
