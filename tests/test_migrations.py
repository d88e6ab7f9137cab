"""Alembic: empty to head, down to base, up again, and the models agree with the migrations."""

import psycopg
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from odavl_pipeline.db import migrate
from odavl_pipeline.db.models import Base
from odavl_pipeline.db.server import libpq_url


def _tables(url) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade_and_models_match(server_url):
    url = server_url.set(database="odavl_migrations_test")
    with psycopg.connect(libpq_url(server_url.set(database="postgres")), autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS odavl_migrations_test")
        admin.execute("CREATE DATABASE odavl_migrations_test")
    try:
        migrate.upgrade(url)
        assert {"usage_events", "ingested_files", "quarantine", "error_signatures"} <= _tables(url)
        migrate.downgrade(url, "base")
        assert _tables(url) <= {"alembic_version"}
        with psycopg.connect(libpq_url(url)) as conn:  # enum types are dropped too
            assert (
                conn.execute("SELECT count(*) FROM pg_type WHERE typtype = 'e'").fetchone()[0] == 0
            )
        migrate.upgrade(url)
        engine = create_engine(url)
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
        engine.dispose()
    finally:
        with psycopg.connect(
            libpq_url(server_url.set(database="postgres")), autocommit=True
        ) as admin:
            admin.execute("DROP DATABASE IF EXISTS odavl_migrations_test WITH (FORCE)")
