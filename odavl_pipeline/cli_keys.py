"""`odavl-pipeline keys …` (CONTRACT.md section 7): the API keys of a user. The work is
odavl_pipeline/api/keys.py's; what is printed, output/keys.py's (`create` prints the new key
alone on its last line, once)."""

import argparse

from odavl_pipeline.cli_arguments import Commands
from odavl_pipeline.errors import database_work
from odavl_pipeline.output import keys as shown
from odavl_pipeline.settings import Settings


def add_commands(commands: Commands) -> None:
    from odavl_pipeline.api.keys import MAX_EXPIRES_DAYS, SCOPES

    keys = commands.add_parser("keys", help="API keys of a user").add_subparsers(
        required=True, metavar="action"
    )

    create = keys.add_parser("create", help="a new key; prints it once, alone on the last line")
    create.add_argument("email", help="the user the key acts for")
    create.add_argument("--name", required=True, help="what the key is for")
    create.add_argument("--scopes", required=True, help=f"comma-separated, of: {', '.join(SCOPES)}")
    create.add_argument(
        "--expires-days",
        type=int,
        default=None,
        help=f"ends after that many days (1 to {MAX_EXPIRES_DAYS}; default: never)",
    )
    create.set_defaults(handler=cmd_create)

    listing = keys.add_parser("list", help="every key, newest first (never the key itself)")
    listing.add_argument("--email", default=None, help="one user's keys only")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_list)

    revoke = keys.add_parser("revoke", help="end a key at once")
    revoke.add_argument("prefix", help="the key's 8-character prefix, as `keys list` shows it")
    revoke.set_defaults(handler=cmd_revoke)


def cmd_create(args: argparse.Namespace, settings: Settings) -> None:
    from odavl_pipeline.api import keys

    scopes = keys.parse_scopes(args.scopes)
    key, row = database_work(
        settings,
        lambda conn: keys.create(conn, args.email, args.name, scopes, args.expires_days),
    )
    shown.print_created(key, row)


def cmd_list(args: argparse.Namespace, settings: Settings) -> None:
    from odavl_pipeline.api import keys

    rows = database_work(settings, lambda conn: keys.listing(conn, email=args.email))
    shown.print_keys(rows, args.json)


def cmd_revoke(args: argparse.Namespace, settings: Settings) -> None:
    from odavl_pipeline.api import keys

    shown.print_revoked(database_work(settings, lambda conn: keys.revoke(conn, args.prefix)))
