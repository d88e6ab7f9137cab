"""`odavl-pipeline db …`, `seed` and `users …`: the operational database, its reference data and
who may sign in. The work is odavl_pipeline/db's; what is printed, output/database.py's."""

import argparse
from pathlib import Path

from odavl_pipeline import workflow
from odavl_pipeline.cli_arguments import Commands
from odavl_pipeline.errors import PipelineError, database_work, require_migrated
from odavl_pipeline.output import database
from odavl_pipeline.settings import Settings


def add_commands(commands: Commands) -> None:
    db = commands.add_parser("db", help="the operational database").add_subparsers(
        required=True, metavar="action"
    )
    db.add_parser("upgrade", help="migrate to the newest revision").set_defaults(
        handler=cmd_db_upgrade
    )
    down = db.add_parser("downgrade", help="migrate down to a revision (default: empty)")
    down.add_argument("revision", nargs="?", default="base")
    down.set_defaults(handler=cmd_db_downgrade)
    db.add_parser("url", help="print the SQLAlchemy URL in use").set_defaults(handler=cmd_db_url)
    db.add_parser("stop", help="stop the embedded server").set_defaults(handler=cmd_db_stop)

    seed = commands.add_parser("seed", help="load the demo reference data (idempotent)")
    seed.add_argument(
        "--reference",
        action="append",
        default=[],
        metavar="FILE",
        help="also load a reference.json written by `generate`",
    )
    seed.set_defaults(handler=cmd_seed)

    users = commands.add_parser("users", help="the dashboards' users").add_subparsers(
        required=True, metavar="action"
    )
    set_password = users.add_parser(
        "set-password", help="set a user's password (prompted, or the first line of standard input)"
    )
    set_password.add_argument("email")
    set_password.set_defaults(handler=cmd_users_set_password)


def cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> None:
    workflow.upgrade(settings)


def cmd_db_downgrade(args: argparse.Namespace, settings: Settings) -> None:
    from odavl_pipeline.db import migrate
    from odavl_pipeline.db.server import server_url

    migrate.downgrade(server_url(settings), args.revision)


def cmd_db_url(args: argparse.Namespace, settings: Settings) -> None:
    from odavl_pipeline.db.server import server_url

    database.print_url(server_url(settings))


def cmd_db_stop(args: argparse.Namespace, settings: Settings) -> None:
    from odavl_pipeline.db.server import stop_embedded_server

    if settings.database_url:
        raise PipelineError("ODAVL_DATABASE_URL is set: there is no embedded server to stop")
    database.print_stopped(stop_embedded_server(settings))


def cmd_seed(args: argparse.Namespace, settings: Settings) -> None:
    workflow.seed(settings, [Path(path) for path in args.reference])


def cmd_users_set_password(args: argparse.Namespace, settings: Settings) -> None:
    from odavl_pipeline.db.sign_in import password_problem, set_password

    require_migrated(settings)
    password = database.read_new_password()
    if problem := password_problem(password):
        raise PipelineError(problem)
    email = database_work(settings, lambda conn: set_password(conn, args.email, password))
    if email is None:
        raise PipelineError(
            f"no user has the email {args.email!r} (`seed` loads the users of a reference.json)"
        )
    database.print_password_set(email)
