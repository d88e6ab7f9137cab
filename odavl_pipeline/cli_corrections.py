"""`odavl-pipeline corrections …` (CONTRACT.md section 8): the arguments. The work is
odavl_pipeline/billing/corrections.py's; the marts rebuild after a commit or a revert is a Dagster
run tagged with the batch; what each action prints is output/corrections.py's."""

import argparse
import getpass
from datetime import UTC, date, datetime
from pathlib import Path

from odavl_pipeline.cli_arguments import Commands
from odavl_pipeline.errors import PipelineError, database_work
from odavl_pipeline.output import corrections as shown
from odavl_pipeline.output.text import print_json
from odavl_pipeline.settings import Settings


def add_commands(commands: Commands) -> None:
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


def cmd_create(args: argparse.Namespace, settings: Settings) -> None:
    from odavl_pipeline.billing import corrections

    batch_id = database_work(
        settings,
        lambda conn: corrections.create(
            conn, args.org, args.start, args.end, args.reason, _author(args.by), args.replace
        ),
    )
    shown.print_created(batch_id, args.org, args.start, args.end)


def cmd_add(args: argparse.Namespace, settings: Settings) -> int:
    from odavl_pipeline.billing import corrections

    try:
        lines = args.file.open("rb")  # read line by line as the records are copied
    except OSError as error:
        raise PipelineError(f"cannot read {args.file}: {error.strerror}") from None
    with lines:
        added = database_work(
            settings, lambda conn: corrections.add(conn, args.batch, args.file.name, lines)
        )
    shown.print_added(args.batch, args.file.name, added)
    if not added.rejected:
        return 0
    refused = database_work(
        settings,
        lambda conn: corrections.rejected_lines(conn, args.batch, shown.SHOWN_REJECTS),
    )
    shown.print_refused(args.batch, refused)
    return 1


def cmd_void(args: argparse.Namespace, settings: Settings) -> None:
    from odavl_pipeline.billing import corrections

    if args.where is not None:
        count = database_work(
            settings, lambda conn: corrections.void_where(conn, args.batch, args.where)
        )
        shown.print_voided_where(args.batch, count)
        return
    try:
        ids = args.ids.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise PipelineError(f"cannot read {args.ids}: {error}") from None
    missing = database_work(settings, lambda conn: corrections.void_ids(conn, args.batch, ids))
    shown.print_voided_ids(args.batch, missing)


def cmd_preview(args: argparse.Namespace, settings: Settings) -> None:
    from odavl_pipeline.billing import corrections

    result = database_work(
        settings, lambda conn: corrections.preview(conn, settings.marts_path, args.batch)
    )
    shown.print_preview(result, args.json)


def cmd_commit(args: argparse.Namespace, settings: Settings) -> int:
    from odavl_pipeline.billing import corrections

    applied = database_work(
        settings, lambda conn: corrections.commit(conn, settings.marts_path, args.batch)
    )
    shown.print_applied(args.batch, applied, "committed")
    return _rebuild_marts(settings, args.batch)


def cmd_revert(args: argparse.Namespace, settings: Settings) -> int:
    from odavl_pipeline.billing import corrections

    reverted = database_work(
        settings,
        lambda conn: corrections.revert(conn, args.batch, args.reason, _author(args.by)),
    )
    shown.print_applied(args.batch, reverted, "reverted")
    return _rebuild_marts(settings, args.batch)


def _rebuild_marts(settings: Settings, batch_id: int) -> int:
    """The marts rebuilt in a Dagster run tagged with the batch; 1 when that run failed."""
    from odavl_pipeline.defs.jobs import CORRECTION_TAG
    from odavl_pipeline.orchestration import rebuild_marts

    tags = {CORRECTION_TAG: str(batch_id)}
    result = rebuild_marts(settings, tags)
    shown.print_rebuilt(result.run_id, result.success, tags)
    return 0 if result.success else 1


def cmd_discard(args: argparse.Namespace, settings: Settings) -> None:
    from odavl_pipeline.billing import corrections

    database_work(settings, lambda conn: corrections.discard(conn, args.batch))
    shown.print_discarded(args.batch)


def cmd_list(args: argparse.Namespace, settings: Settings) -> None:
    from odavl_pipeline.billing import corrections

    batches = database_work(settings, lambda conn: corrections.listing(conn, args.org))
    if args.json:
        print_json(batches)
    else:
        shown.print_batches(batches)


def cmd_show(args: argparse.Namespace, settings: Settings) -> None:
    from odavl_pipeline.billing import corrections

    batch = database_work(settings, lambda conn: corrections.show(conn, args.batch))
    if args.json:
        print_json(batch)
    else:
        shown.print_batch(batch)
