"""Alembic environment: the URL comes from the ODAVL settings, the target from the models."""

from alembic import context
from sqlalchemy import create_engine, pool

from odavl_pipeline.db.models import Base
from odavl_pipeline.db.server import server_url
from odavl_pipeline.settings import Settings

config = context.config
target_metadata = Base.metadata


def _url():
    """An explicit URL (set by the caller on the config) wins over the settings."""
    return config.attributes.get("url") or server_url(Settings.from_env())


def run_migrations_offline() -> None:
    context.configure(
        url=str(_url()), target_metadata=target_metadata, literal_binds=True, compare_type=True
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        _run(connection)


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
