"""`odavl-pipeline corrections …` (CONTRACT.md section 8): the arguments, and what each action
prints. The work is odavl_pipeline/billing/corrections.py's; the marts rebuild after a commit or
a revert is a Dagster run tagged with the batch."""

import getpass
import json
import sys
from datetime import UTC, date, datetime
from pathlib import Path

from odavl_pipeline.errors import PipelineError, database_work
from odavl_pipeline.settings import Settings

SHOWN_REJECTS = 20  # refused lines `add` and `preview` print at most (`--json` has them all)


def add_commands(commands) -> None:
    corrections = commands.add_parser(
        "corrections", help="correct usage with batches that never rewrite history"
    ).add_subparsers(required=True, metavar="action")

    create = corrections.add_parser("create", help="a new draft; prints its id last")
    create.add_argument("--org", required=True, help="organization slug")
    create.add_argument("--start", required=True, type=_instant, help="window start (UTC)")
    create.add_argument("--end", required=True, type=_instant, help="window end, excluded")
    create.add_argument("--reason", required=True, help="why the usage is corrected")
    create.add_argument("--by", default=None, help="who corrects (default: the OS user)")
    create.add_argument(
        "--replace",
        action="store_true",
        help="the batch's records are the whole truth of the window: the rest is voided",
    )
    create.set_defaults(handler=cmd_create)

    add = corrections.add_parser("add", help="stage usage records (NDJSON) in a draft")
    add.add_argument("batch", type=int)
    add.add_argument("file", type=Path)
    add.set_defaults(handler=cmd_add)

    void = corrections.add_parser("void", help="void events of a draft's window")
    void.add_argument("batch", type=int)
    which = void.add_mutually_exclusive_group(required=True)
    which.add_argument("--ids", type=Path, help="a file of event ids, one per line")
    which.add_argument(
        "--where",
        help='e.g. "event_type = api_call AND quantity >= 100" (fields: event_type, project, '
        "user, endpoint, status, quantity)",
    )
    void.set_defaults(handler=cmd_void)

    preview = corrections.add_parser("preview", help="what committing would change")
    preview.add_argument("batch", type=int)
    preview.add_argument("--json", action="store_true")
    preview.set_defaults(handler=cmd_preview)

    commit = corrections.add_parser("commit", help="apply a draft, then rebuild the marts")
    commit.add_argument("batch", type=int)
    commit.set_defaults(handler=cmd_commit)

    revert = corrections.add_parser("revert", help="undo a committed batch")
    revert.add_argument("batch", type=int)
    revert.add_argument("--reason", required=True)
    revert.add_argument("--by", default=None)
    revert.set_defaults(handler=cmd_revert)

    discard = corrections.add_parser("discard", help="end a draft")
    discard.add_argument("batch", type=int)
    discard.set_defaults(handler=cmd_discard)

    listing = corrections.add_parser("list", help="every batch, newest first")
    listing.add_argument("--org", default=None)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_list)

    show = corrections.add_parser("show", help="a batch and what it changed")
    show.add_argument("batch", type=int)
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=cmd_show)


def _instant(text: str) -> datetime:
    """A day (its midnight) or an ISO 8601 instant; UTC unless it says otherwise."""
    try:
        moment = (
            datetime.combine(date.fromisoformat(text), datetime.min.time())
            if len(text) == 10
            else datetime.fromisoformat(text)
        )
    except ValueError:
        raise ValueError(text) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


_instant.__name__ = "day or ISO 8601 instant"  # what argparse names in its error


def _author(by: str | None) -> str:
    return by or getpass.getuser()


def cmd_create(args, settings: Settings) -> None:
    from odavl_pipeline.billing import corrections

    batch_id = database_work(
        settings,
        lambda conn: corrections.create(
            conn, args.org, args.start, args.end, args.reason, _author(args.by), args.replace
        ),
    )
    print(f"draft {batch_id} of {args.org}: [{args.start.isoformat()}, {args.end.isoformat()})")
    print(batch_id)


def cmd_add(args, settings: Settings) -> int:
    from odavl_pipeline.billing import corrections

    try:
        lines = args.file.open("rb")  # read line by line as the records are copied
    except OSError as error:
        raise PipelineError(f"cannot read {args.file}: {error.strerror}") from None
    with lines:
        added = database_work(
            settings, lambda conn: corrections.add(conn, args.batch, args.file.name, lines)
        )
    print(
        f"batch {args.batch}: {added.accepted:,} record(s) of {args.file.name} staged, "
        f"{added.rejected:,} refused"
    )
    if added.rejected:
        _print_rejects(settings, args.batch)
        return 1
    return 0


def cmd_void(args, settings: Settings) -> None:
    from odavl_pipeline.billing import corrections

    if args.where is not None:
        count = database_work(
            settings, lambda conn: corrections.void_where(conn, args.batch, args.where)
        )
        print(f"batch {args.batch}: {count:,} more event(s) of its window to void")
        return
    try:
        ids = args.ids.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise PipelineError(f"cannot read {args.ids}: {error}") from None
    missing = database_work(settings, lambda conn: corrections.void_ids(conn, args.batch, ids))
    print(f"batch {args.batch}: voids the listed events but {len(missing):,}")
    if missing:
        shown = ", ".join(missing[:SHOWN_REJECTS])
        print(
            f"{len(missing):,} id(s) are no counted event of the window: {shown}",
            file=sys.stderr,
        )


def cmd_preview(args, settings: Settings) -> None:
    from odavl_pipeline.billing import corrections

    result = database_work(
        settings, lambda conn: corrections.preview(conn, settings.marts_path, args.batch)
    )
    if args.json:
        print(json.dumps(result))
        return
    events = result["events"]
    print(
        f"batch {result['batch']} ({result['state']}): {events['added']:,} added, "
        f"{events['amended']:,} amended, {events['voided']:,} voided"
    )
    _print_changes(result["changes"])
    for reject in result["rejected"][:SHOWN_REJECTS]:
        print(_reject_line(reject), file=sys.stderr)


def cmd_commit(args, settings: Settings) -> int:
    from odavl_pipeline.billing import corrections
    from odavl_pipeline.defs.jobs import CORRECTION_TAG
    from odavl_pipeline.orchestration import rebuild_marts

    applied = database_work(
        settings, lambda conn: corrections.commit(conn, settings.marts_path, args.batch)
    )
    print(
        f"batch {args.batch} committed"
        if applied
        else f"batch {args.batch} was committed already: the marts are rebuilt"
    )
    return _rebuild(settings, {CORRECTION_TAG: str(args.batch)}, rebuild_marts)


def cmd_revert(args, settings: Settings) -> int:
    from odavl_pipeline.billing import corrections
    from odavl_pipeline.defs.jobs import CORRECTION_TAG
    from odavl_pipeline.orchestration import rebuild_marts

    reverted = database_work(
        settings,
        lambda conn: corrections.revert(conn, args.batch, args.reason, _author(args.by)),
    )
    print(
        f"batch {args.batch} reverted"
        if reverted
        else f"batch {args.batch} was reverted already: the marts are rebuilt"
    )
    return _rebuild(settings, {CORRECTION_TAG: str(args.batch)}, rebuild_marts)


def _rebuild(settings: Settings, tags: dict[str, str], rebuild_marts) -> int:
    result = rebuild_marts(settings, tags)
    status = "SUCCESS" if result.success else "FAILED"
    print(f"dagster run {result.run_id}: {status} (marts rebuilt, tagged {tags})")
    if not result.success:
        print(
            "error: the marts run failed; the batch stands: run the same command again",
            file=sys.stderr,
        )
        return 1
    return 0


def cmd_discard(args, settings: Settings) -> None:
    from odavl_pipeline.billing import corrections

    database_work(settings, lambda conn: corrections.discard(conn, args.batch))
    print(f"batch {args.batch} discarded")


def cmd_list(args, settings: Settings) -> None:
    from odavl_pipeline.billing import corrections

    batches = database_work(settings, lambda conn: corrections.listing(conn, args.org))
    if args.json:
        print(json.dumps(batches))
        return
    print(f"{'id':>6}  {'org':<22}{'state':<11}{'window':<37}{'events':<48}by: reason")
    for batch in batches:
        window = f"{batch['start'][:16]} – {batch['end'][:16]}"
        print(
            f"{batch['id']:>6}  {batch['org']:<22}{batch['state']:<11}{window:<37}"
            f"{_events(batch['events']):<48}{batch['by']}: {batch['reason']}"
        )


def cmd_show(args, settings: Settings) -> None:
    from odavl_pipeline.billing import corrections

    batch = database_work(settings, lambda conn: corrections.show(conn, args.batch))
    if args.json:
        print(json.dumps(batch))
        return
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


def _print_rejects(settings: Settings, batch_id: int) -> None:
    from odavl_pipeline.billing import corrections

    shown = database_work(
        settings, lambda conn: corrections.rejected_lines(conn, batch_id, SHOWN_REJECTS)
    )
    for reject in shown:
        print(_reject_line(reject), file=sys.stderr)
    print(
        f"a batch with refused records cannot be committed: correct them and add "
        f"the file again (`corrections preview {batch_id} --json` lists them all)",
        file=sys.stderr,
    )
