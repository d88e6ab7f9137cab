"""Test fixtures: a real PostgreSQL (embedded, or ODAVL_DATABASE_URL's server), real files, and
the clock.

Each test gets its own database, cloned from a template migrated once per session. The clock
(odavl_pipeline/clock.py) runs from the instant in ODAVL_TEST_NOW when it is set, else from the
system's; a module or test marked `@pytest.mark.clock("2026-11-29T12:00:00Z")` runs from that
instant, and `clock_at(instant)` moves it within a test. Each reaches this process, the
processes a test starts and PostgreSQL.
"""

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import psycopg
import pytest
from hypothesis import settings as hypothesis_settings
from psycopg import sql
from sqlalchemy import create_engine
from sqlalchemy.engine import URL, make_url

from odavl_pipeline import clock
from odavl_pipeline.db import migrate, seed
from odavl_pipeline.db.server import ensure_embedded_server, libpq_url, stop_embedded_server
from odavl_pipeline.settings import Settings

from .clocks import CALENDAR_INSTANTS, ClockSetter, instant

TEMPLATE_DB = f"odavl_template_{os.getpid()}"

# Hypothesis's per-example deadline is a timed assertion: on a loaded machine it fails examples
# that are only slow, so no property here has one.
hypothesis_settings.register_profile("odavl", deadline=None)
hypothesis_settings.load_profile("odavl")
SUITE_INSTANT_VARIABLE = "ODAVL_TEST_NOW"  # the instant the whole suite runs from


# --- the clock (tests/clocks.py) ----------------------------------------------------------


def pytest_configure(config):
    """ODAVL_TEST_NOW moves the clock of the whole run, its processes and PostgreSQL."""
    text = os.environ.get(SUITE_INSTANT_VARIABLE)
    if text:
        os.environ.update(clock.environment(clock.offset_to(instant(text))))


@pytest.fixture
def clock_at(monkeypatch) -> ClockSetter:
    """`clock_at(instant)` sets the clock for the rest of the test."""
    return ClockSetter(monkeypatch)


@pytest.fixture(autouse=True)
def _clock_mark(request, monkeypatch) -> None:
    """A test or module marked `clock(instant)` runs from that instant."""
    mark = request.node.get_closest_marker("clock")
    if mark:
        ClockSetter(monkeypatch)(mark.args[0])


@pytest.fixture(scope="session")
def server_url() -> Iterator[URL]:
    """The server the tests use: ODAVL_DATABASE_URL's, else an embedded one for this session.

    The embedded server lives outside pytest's temporary folders: pytest tightens and
    rotates those, and the server runs as its own system user when tests run as root.
    """
    configured = os.environ.get("ODAVL_DATABASE_URL")
    if configured:
        yield make_url(configured)
        return
    home = Path(tempfile.mkdtemp(prefix="odavl-test-"))
    home.chmod(0o755)
    settings = Settings.from_env({"ODAVL_HOME": str(home)})
    socket_dir = ensure_embedded_server(settings)
    yield URL.create(
        "postgresql+psycopg", username="postgres", database="postgres", query={"host": socket_dir}
    )
    stop_embedded_server(settings)
    shutil.rmtree(home, ignore_errors=True)


def _admin(url: URL) -> psycopg.Connection:
    return psycopg.connect(libpq_url(url.set(database="postgres")), autocommit=True)


@pytest.fixture(scope="session")
def template_url(server_url) -> Iterator[URL]:
    url = server_url.set(database=TEMPLATE_DB)
    with _admin(server_url) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(TEMPLATE_DB)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEMPLATE_DB)))
    migrate.upgrade(url)
    engine = create_engine(url)
    with engine.begin() as conn:
        seed.load_reference(conn, seed.read_reference(seed.SEEDS_DIR / "reference.json"))
    engine.dispose()
    yield url
    with _admin(server_url) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(TEMPLATE_DB))
        )


@pytest.fixture
def database_url(server_url, template_url) -> Iterator[URL]:
    """A fresh, migrated, seeded database for one test."""
    name = f"odavl_test_{uuid.uuid4().hex[:12]}"
    with _admin(server_url) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(TEMPLATE_DB)
            )
        )
    yield server_url.set(database=name)
    with _admin(server_url) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture
def settings(tmp_path, database_url, monkeypatch) -> Settings:
    """Settings pointing at this test's database and landing zone, also in the environment."""
    env = {
        "ODAVL_HOME": str(tmp_path / "home"),
        "ODAVL_DATABASE_URL": database_url.render_as_string(hide_password=False),
        "ODAVL_LANDING_DIR": str(tmp_path / "landing"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Settings.from_env(env)


@pytest.fixture
def conn(settings) -> Iterator[psycopg.Connection]:
    from odavl_pipeline.db.server import connect

    with connect(settings) as connection:
        yield connection


@pytest.fixture
def dagster_instance(settings):
    """The Dagster instance the command line uses, with no day landed (registered) and nothing
    materialized yet: its storage, the server's `dagster` database, is shared by the session's
    tests."""
    from odavl_pipeline import orchestration

    return forget_landed_days(orchestration.instance(settings))


@pytest.fixture
def schedules_stopped(settings):
    """The Dagster instance with the project's schedules stopped, for a test that starts Dagster's
    daemon: a schedule ticks by the wall clock, which no test sets, and `hourly_stripe` (at :20)
    or `daily_billing` (00:15) would start a run of its own in the middle of the test."""
    from dagster._cli.workspace.cli_target import get_repository_from_cli_opts
    from dagster.version import __version__
    from dagster_shared.cli import WorkspaceOpts

    from odavl_pipeline import orchestration

    instance = orchestration.instance(settings)
    # the location `ui` and the workspace file name, whose schedules' states the daemon reads
    workspace = WorkspaceOpts(module_name=["odavl_pipeline.definitions"])
    with get_repository_from_cli_opts(instance, __version__, workspace, None) as repository:
        for schedule in repository.get_schedules():
            instance.stop_schedule(schedule.get_remote_origin_id(), schedule.selector_id, schedule)
    return instance


def forget_landed_days(instance):
    """Unregister every landed day and wipe the assets' history: a run then covers exactly this
    test's days, in one range, and what is materialized is this test's, whatever the earlier
    tests of this worker registered and ran."""
    from odavl_pipeline.defs.ingest.partitions import landed_days

    for key in instance.get_dynamic_partitions(landed_days.name):
        instance.delete_dynamic_partition(landed_days.name, key)
    instance.wipe_assets(instance.get_asset_keys())
    return instance


class Landing:
    """Writes landing files the way a producer does."""

    def __init__(self, root: Path):
        self.root = root

    def write(self, source: str, day: str, name: str, records: list, gz: bool = False) -> Path:
        lines = [
            r if isinstance(r, (str, bytes)) else json.dumps(r, ensure_ascii=False) for r in records
        ]
        data = b"".join(
            (line if isinstance(line, bytes) else line.encode()) + b"\n" for line in lines
        )
        return self.write_bytes(source, day, name, data, gz)

    def write_bytes(self, source: str, day: str, name: str, data: bytes, gz: bool = False) -> Path:
        import gzip

        folder = self.root / source / day
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        temporary = folder / f".{name}.tmp"
        temporary.write_bytes(gzip.compress(data, mtime=0) if gz else data)
        temporary.rename(path)
        return path


@pytest.fixture
def landing(settings) -> Landing:
    settings.landing_dir.mkdir(parents=True, exist_ok=True)
    return Landing(settings.landing_dir)


# --- Object storage: moto's S3 server on loopback (tests/s3_server.py) ----------------------


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    from .s3_server import running_s3_server

    with running_s3_server() as endpoint:
        yield endpoint


@pytest.fixture
def landing_url(settings, s3_endpoint, monkeypatch) -> str:
    """A bucket of this test's own as its landing zone, in ODAVL_LANDING_URL."""
    from .s3_server import new_bucket, s3_environment

    for key, value in s3_environment(s3_endpoint).items():
        monkeypatch.setenv(key, value)
    url = new_bucket()
    monkeypatch.setenv("ODAVL_LANDING_URL", url)
    return url


# --- Stripe: localstripe on loopback (tests/stripe_emulator.py) ---------------------------


@pytest.fixture(scope="session")
def stripe_emulator_server():
    from .stripe_emulator import StripeEmulator

    emulator = StripeEmulator()
    yield emulator
    emulator.close()


@pytest.fixture
def stripe_emulator(stripe_emulator_server):
    """The Stripe emulator, emptied for this test."""
    stripe_emulator_server.reset()
    return stripe_emulator_server


@pytest.fixture
def stripe_settings(settings, stripe_emulator, monkeypatch) -> Settings:
    """`settings` with Stripe pointed at the emulator, also in the environment."""
    from .stripe_emulator import TEST_API_KEY, TEST_WEBHOOK_SECRET

    env = {
        "STRIPE_API_KEY": TEST_API_KEY,
        "STRIPE_API_BASE": stripe_emulator.url,
        "STRIPE_WEBHOOK_SECRET": TEST_WEBHOOK_SECRET,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return settings.replace(
        stripe_api_key=TEST_API_KEY,
        stripe_api_base=stripe_emulator.url,
        stripe_webhook_secret=TEST_WEBHOOK_SECRET,
    )


# --- no process left behind ---------------------------------------------------------------

# multiprocessing's own helpers, which end with this process
_PROCESS_HELPERS = (
    "from multiprocessing.forkserver import main",
    "from multiprocessing.resource_tracker import main",
)


def pytest_sessionfinish(session, exitstatus):
    """The run fails if a test left a process of its own running (a server, a worker)."""
    from .processes import command_line, descendants, wait_until_gone

    started = [
        pid
        for pid in descendants(os.getpid())
        if not any(helper in command_line(pid) for helper in _PROCESS_HELPERS)
    ]
    left = wait_until_gone(started, seconds=10)
    if left:
        lines = "\n".join(f"  {pid}: {command_line(pid)[:200]}" for pid in left)
        session.config.get_terminal_writer().line(
            f"\nthe tests left {len(left)} process(es) running:\n{lines}", red=True
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(params=CALENDAR_INSTANTS, ids=lambda moment: moment or "clock-as-is")
def calendar_now(request, clock_at) -> datetime:
    """The calendar tier: the test runs at each instant of tests/clocks.py, the clock set there
    for everything it starts; returns the instant the clock read when set."""
    return clock_at(request.param) if request.param else clock.now()


# --- the dashboards' tests (tests/dashboards_fixtures.py) ------------------------------------


@pytest.fixture(scope="module")
def marts(server_url, template_url, tmp_path_factory, request) -> Iterator[Settings]:
    """The dashboards' demo marts on a database of the module's own, the clock where they were
    built (`demo_marts`). A module that needs more data defines its own `marts`."""
    from .dashboards_fixtures import demo_marts

    root = tmp_path_factory.mktemp(request.module.__name__.rpartition(".")[2])
    with demo_marts(server_url, template_url.database, root) as settings:
        yield settings


@pytest.fixture
def app_test_leaves_main_alone() -> Iterator[None]:
    """For modules that run the app with AppTest (`usefixtures`): `__main__` put back after."""
    from .dashboards_fixtures import main_module_kept

    with main_module_kept():
        yield


@pytest.fixture
def dashboard_environment(marts, monkeypatch) -> None:
    """The dashboards' variables for the module's `marts` (`usefixtures`)."""
    from .dashboards_fixtures import environment

    for key, value in environment(marts).items():
        monkeypatch.setenv(key, value)
