"""Helpers for the dashboards' tests: real marts built from generated demo data, people with
known passwords and roles, and the dashboards' own modules importable."""

import json
import sys
import tomllib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy import create_engine
from sqlalchemy.engine import URL
from streamlit import config
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

from odavl_pipeline.db import passwords, seed
from odavl_pipeline.db.server import connect, libpq_url, server_url
from odavl_pipeline.generate import GenerateOptions, generate_landing
from odavl_pipeline.ingest.landing import SOURCES, landed_days
from odavl_pipeline.ingest.run import ingest_days
from odavl_pipeline.marts.build import refresh_marts
from odavl_pipeline.marts.store import open_marts
from odavl_pipeline.settings import Settings

from .clocks import clock_set_to
from .marts_helpers import add_usage, anchor_subscription, at
from .records import ORG, OTHER_ORG

DASHBOARDS = Path(__file__).resolve().parents[1] / "dashboards"
APP = DASHBOARDS / "app.py"
STREAMLIT_OPTIONS = DASHBOARDS / ".streamlit" / "config.toml"  # the options they are served with

EMPTY_ORG = "empty-org"  # a member organization with no data at all
OIDC_SECRETS = {
    "auth": {
        "redirect_uri": "http://127.0.0.1:8501/oauth2callback",
        "cookie_secret": "a-test-cookie-secret-of-some-length",
    }
}
PASSWORD = "correct horse battery staple"  # every test person's password
# the demo's instants: its landing files are ingested, then its marts built; the clock reads
# them, so that the demo's fixed days are the recent past on any date
INGESTED_AT = at("2026-11-06T00:00:00Z")
BUILT_AT = at("2026-11-06T02:00:00Z")


@dataclass(frozen=True)
class Person:
    email: str
    org: str | None
    role: str | None


ALICE = Person("alice@odavl.com", ORG, "OWNER")  # from the demo seeds
BOB = Person("bob@odavl.com", OTHER_ORG, "ADMIN")  # from the demo seeds
VERA = Person("vera@odavl.com", ORG, "VIEWER")
DEV = Person("dev@odavl.com", ORG, "DEVELOPER")
ERIN = Person("erin@odavl.com", EMPTY_ORG, "OWNER")
MAYA = Person("maya@odavl.com", ORG, "OWNER")  # also a VIEWER of OTHER_ORG
STAFF = Person("sam@odavl.com", None, None)  # listed in ODAVL_STAFF_EMAILS, member of nothing


def app_test() -> AppTest:
    """The app in AppTest, on the Streamlit options the dashboards are served with: AppTest reads
    the working directory's `.streamlit`, the repository's root here. The served options turn
    magic off, which would `ast.parse` each page in the script's thread and on CPython 3.11 race
    a traceback's own `ast.parse` in another ("AST constructor recursion depth mismatch")."""
    for section, options in tomllib.loads(STREAMLIT_OPTIONS.read_text()).items():
        for name, value in options.items():
            config.set_option(f"{section}.{name}", value)
    return AppTest.from_file(str(APP), default_timeout=30)


def signed_in_app(person: Person, query: dict | None = None) -> AppTest:
    """The app as `person`, signed in through OpenID Connect (`[auth]` configured)."""
    app = app_test()
    app.secrets = OIDC_SECRETS
    app.user = {"is_logged_in": True, "email": person.email, "email_verified": True}
    app.query_params = dict(query or {})
    return app.run()


def no_exceptions(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def markdown(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown]


def texts(at: AppTest) -> str:
    """Every text the page shows: titles, markdown, captions, notices, metrics and tables."""
    parts = [
        e.value
        for kind in ("title", "markdown", "caption", "info", "warning", "error", "success")
        for e in getattr(at, kind)
    ]
    parts += [str(m.value) for m in at.metric]
    parts += [df.value.to_csv() for df in at.dataframe]
    return "\n".join(parts)


def headers(table) -> list[str]:
    """The headers a table shows: each column's configured label, else its name."""
    config = json.loads(table.proto.columns or "{}")
    return [config.get(name, {}).get("label") or name for name in table.value.columns]


@contextmanager
def main_module_kept() -> Iterator[None]:
    """AppTest runs the app as `__main__` and leaves it there, and multiprocessing's spawn (the
    ingest parser process) would then run the app in every child: put the real one back."""
    main = sys.modules["__main__"]
    try:
        yield
    finally:
        sys.modules["__main__"] = main


@contextmanager
def scratch_database(server_url: URL, template: str, prefix: str = "odavl_dash") -> Iterator[URL]:
    """A database of its own, cloned from the migrated and seeded test template."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = libpq_url(server_url.set(database="postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )
    try:
        yield server_url.set(database=name)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@contextmanager
def demo_marts(server: URL, template: str, root: Path) -> Iterator[Settings]:
    """Settings on a database of their own with the demo marts built (`build_demo_marts`), and
    the clock at BUILT_AT within the block: for this process, PostgreSQL and any server started
    in it (for module-scoped fixtures, which the `clock` mark does not reach)."""
    with scratch_database(server, template) as url, clock_set_to(BUILT_AT):
        settings = Settings.from_env(
            {
                "ODAVL_HOME": str(root / "home"),
                "ODAVL_DATABASE_URL": url.render_as_string(hide_password=False),
                "ODAVL_LANDING_DIR": str(root / "landing"),
            }
        )
        build_demo_marts(settings)
        yield settings


def marts_rows(settings: Settings, query: str, *parameters) -> list[tuple]:
    """The rows of `query` over the published marts."""
    with open_marts(settings.marts_path) as con:
        return con.execute(query, list(parameters)).fetchall()


def environment(settings: Settings) -> dict[str, str]:
    """What the dashboards read from the environment for these settings."""
    return {
        "ODAVL_HOME": str(settings.home),
        "ODAVL_MARTS_PATH": str(settings.marts_path),
        "ODAVL_LANDING_DIR": str(settings.landing_dir),
        "ODAVL_DATABASE_URL": settings.database_url.get_secret_value(),
        "ODAVL_STAFF_EMAILS": STAFF.email,
    }


def add_people(conn: psycopg.Connection) -> None:
    """The test people with PASSWORD (the demo users' passwords replaced), their roles, and an
    organization without data."""
    hashed = passwords.hash_password(PASSWORD)
    conn.execute(
        "INSERT INTO organizations (name, slug, tier, status) "
        "VALUES ('Empty Org', %s, 'FREE', 'ACTIVE')",
        (EMPTY_ORG,),
    )
    for person in (ALICE, BOB, VERA, DEV, ERIN, MAYA, STAFF):
        conn.execute(
            "INSERT INTO users (email, name, hashed_password) VALUES (%s, %s, %s) "
            "ON CONFLICT (email) DO UPDATE SET hashed_password = excluded.hashed_password",
            (person.email, person.email.split("@")[0].title(), hashed),
        )
        if person.org and person not in (ALICE, BOB):
            conn.execute(
                "INSERT INTO organization_members (organization_id, user_id, role) "
                "SELECT o.id, u.id, %s FROM organizations AS o, users AS u "
                "WHERE o.slug = %s AND u.email = %s",
                (person.role, person.org, person.email),
            )
    conn.execute(
        "INSERT INTO organization_members (organization_id, user_id, role) "
        "SELECT o.id, u.id, 'VIEWER' FROM organizations AS o, users AS u "
        "WHERE o.slug = %s AND u.email = %s",
        (OTHER_ORG, MAYA.email),
    )
    conn.commit()


def build_demo_marts(settings: Settings) -> None:
    """Ten days of generated data of every source around a period boundary, ingested and
    built; then one late October event, so November carries a late adjustment, and a burst of
    audits on November 5, so ORG's audits quota is ok but at risk (forecast to run out on
    November 18, before its period ends). The files are ingested with the clock at INGESTED_AT,
    so they arrive the night after their last day, whatever the date."""
    options = GenerateOptions(
        end_day=date(2026, 11, 5),
        days=10,
        organizations=1,
        usage_per_day=30,
        errors_per_day=6,
        attestations_per_day=3,
        audits_per_day=1,
        late_share=0.05,
        files_per_day=1,
        chain_heads=seed.seed_chain_heads(),
    )
    generate_landing(settings.landing_dir, options)
    with clock_set_to(INGESTED_AT):
        engine = create_engine(server_url(settings))
        with engine.begin() as connection:
            seed.load_reference(
                connection, seed.read_reference(settings.landing_dir / "reference.json")
            )
        engine.dispose()
        with connect(settings) as conn:
            add_people(conn)
            anchor_subscription(conn, ORG, "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z")
            anchor_subscription(conn, OTHER_ORG, "2026-10-15T00:00:00Z", "2026-11-15T00:00:00Z")
            for source in SOURCES:
                ingest_days(conn, settings.landing_dir, source, landed_days(settings.landing_dir))
    refresh_marts(settings, as_of=at("2026-11-06T00:30:00Z"))  # closes October
    with connect(settings) as conn:
        add_usage(
            conn, ORG, "late-october", "2026-10-30T12:00:00Z", "2026-11-06T01:00:00Z", quantity=3
        )
        add_usage(
            conn,
            ORG,
            "audit-burst",
            "2026-11-05T12:00:00Z",
            "2026-11-05T12:01:00Z",
            event_type="guardian_test_run",
            quantity=20,
        )
    refresh_marts(settings, as_of=BUILT_AT)


def captured_downloads(monkeypatch) -> dict[str, bytes]:
    """The bytes behind each download button's URL, as Streamlit's media storage got them."""
    stored = {}
    original = MemoryMediaFileStorage.load_and_get_id

    def load_and_get_id(self, path_or_data, mimetype, kind, filename=None):
        file_id = original(self, path_or_data, mimetype, kind, filename)
        stored[self.get_url(file_id)] = path_or_data
        return file_id

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", load_and_get_id)
    return stored
