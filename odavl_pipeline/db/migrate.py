"""Alembic, driven from code: the project's `alembic.ini` and `migrations/`."""

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import URL

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def alembic_config(url: URL | None = None) -> Config:
    """The project's Alembic config; `url` overrides the settings' database."""
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    if url is not None:
        config.attributes["url"] = url
    return config


def upgrade(url: URL | None = None, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: URL | None = None, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)


@dataclass(frozen=True)
class Revisions:
    """Where a database stands against this code's migrations."""

    current: str | None  # None: never migrated
    head: str
    known: bool  # whether this code knows `current`


def revisions(url: URL) -> Revisions:
    """The database's revision and this code's newest."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy import create_engine

    script = ScriptDirectory.from_config(alembic_config())
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
    known = current is None or current in {rev.revision for rev in script.walk_revisions()}
    head = script.get_current_head()
    assert head is not None  # migrations/ holds the project's revisions
    return Revisions(current, head, known)
