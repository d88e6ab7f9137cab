"""What `db`, `seed` and `users` print, and the password `users set-password` asks for."""

import getpass
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from odavl_pipeline.errors import PipelineError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from odavl_pipeline.db.seed import SeedReport


def print_upgraded(url: "URL") -> None:
    print(f"database {url.database} is at the newest revision", file=sys.stderr)


def print_url(url: "URL") -> None:
    print(url.render_as_string(hide_password=True))


def print_stopped(stopped: bool) -> None:
    print("embedded PostgreSQL stopped" if stopped else "embedded PostgreSQL was not running")


def print_seeded(path: Path, report: "SeedReport") -> None:
    """What one reference file added, and the secrets created for it (shown this once)."""
    created = ", ".join(f"{n} {table}" for table, n in report.created.items() if n) or "nothing new"
    print(f"{path.name}: {created}")
    for secret in report.secrets:
        print(f"  {secret}  (shown once; only its hash is stored)")


def print_landing_copied(copied: int, landing_dir: Path) -> None:
    print(f"demo landing files: {copied} placed in {landing_dir}")


def read_new_password() -> str:
    """Prompted twice on a terminal, without echo; else the first line of standard input."""
    if sys.stdin.isatty():
        password = getpass.getpass("new password: ")
        if getpass.getpass("the same again: ") != password:
            raise PipelineError("the two passwords differ; nothing was changed")
        return password
    return sys.stdin.readline().removesuffix("\n").removesuffix("\r")


def print_password_set(email: str) -> None:
    print(f"password set for {email}; only its hash is stored")
