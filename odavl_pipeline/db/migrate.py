"""Alembic, driven from code: the project's `alembic.ini` and `migrations/`."""

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
