"""The dashboards' server under faults: a thousand slow clients on real sockets, and the
database unreachable (a TCP relay of the test's own to PostgreSQL, stopped and started again)."""

import socket
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from dashlib.session_routes import DATABASE_DOWN
from odavl_pipeline.db.dashboard_sessions import COOKIE
from odavl_pipeline.db.server import connect
from odavl_pipeline.marts.build import refresh_marts
from odavl_pipeline.settings import Settings

from .dashboard_server import call, dashboards_process, free_port, running_dashboards
from .dashboards_fixtures import (
    ALICE,
    MAYA,
    PASSWORD,
    add_people,
    demo_marts,
    environment,
    main_module_kept,
    scratch_database,
    signed_in_app,
)
from .database_relay import DatabaseRelay
from .marts_helpers import add_many, anchor_subscription, at
from .records import ORG
from .test_dashboards_browser import VIEWPORT, WAIT_MS, chromium_executable, sign_in

SLOW_HEADS, SLOW_BODIES, BIG_BODIES = 400, 300, 300  # 1,000 slow clients
MOST_ABOVE_IDLE = 100 * 1024 * 1024  # bytes of resident memory
CLOSE_WAIT_SECONDS = 90  # a wait for the server's timeouts (10 s, 20 s), not a speed claim


def resident_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.fixture
def people_settings(server_url, template_url, tmp_path) -> Settings:
    """Settings on a database of their own holding the test people (no marts: the sign-in
    and a page's shell do not read them)."""
    with scratch_database(server_url, template_url.database) as url:
        settings = Settings.from_env(
            {
                "ODAVL_HOME": str(tmp_path / "home"),
                "ODAVL_DATABASE_URL": url.render_as_string(hide_password=False),
            }
        )
        with connect(settings) as conn:
            add_people(conn)
        yield settings


def served_to_others(base: str) -> None:
    """Someone else meanwhile: the form, a sign-in, a page."""
    assert call(base, "GET", "/auth/sign-in", source="127.0.0.2").status == 200
    signed_in = call(
        base,
        "POST",
        "/auth/sign-in",
        {"email": MAYA.email, "password": PASSWORD, "next": "/"},
        source="127.0.0.2",
    )
    assert signed_in.status == 303
    page = call(base, "GET", "/", cookie=f"{COOKIE}={signed_in.cookie(COOKIE).value}")
    assert page.status == 200 and "<noscript>" in page.body


def slow_client(port: int, start: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(start)
    sock.setblocking(False)
    return sock


@pytest.mark.slow
def test_a_thousand_slow_clients_are_dropped_and_others_served_within_bounded_memory(
    people_settings, tmp_path
):
    with dashboards_process(people_settings, tmp_path / "server.log") as (base, process):
        port = int(base.rsplit(":", 1)[1])
        for _ in range(3):
            served_to_others(base)
        idle = resident_bytes(process.pid)
        sockets = (
            [slow_client(port, b"GET /insight HTTP/1.1\r\nHost: x\r\n") for _ in range(SLOW_HEADS)]
            + [
                slow_client(
                    port,
                    b"POST /auth/sign-in HTTP/1.1\r\nHost: x\r\nContent-Type: "
                    b"application/x-www-form-urlencoded\r\nContent-Length: 8000\r\n\r\nemail=",
                )
                for _ in range(SLOW_BODIES)
            ]
            + [
                slow_client(
                    port,
                    b"POST /auth/sign-in HTTP/1.1\r\nHost: x\r\nContent-Type: "
                    b"application/x-www-form-urlencoded\r\nContent-Length: 1048576\r\n\r\nemail=",
                )
                for _ in range(BIG_BODIES)
            ]
        )
        served_to_others(base)
        peak, refused, open_ = idle, 0, set(sockets)
        deadline = time.monotonic() + CLOSE_WAIT_SECONDS
        while open_ and time.monotonic() < deadline:
            peak = max(peak, resident_bytes(process.pid))
            for sock in list(open_):
                try:
                    received = sock.recv(65536)
                    if received.startswith(b"HTTP/1.1 413"):
                        refused += 1
                    if received == b"":
                        open_.discard(sock)
                        continue
                except BlockingIOError:
                    pass
                except ConnectionResetError:
                    open_.discard(sock)
                    continue
                try:
                    sock.send(b"a")  # one byte a second: slow, never silent
                except BlockingIOError:
                    pass
                except (BrokenPipeError, ConnectionResetError):
                    open_.discard(sock)
            time.sleep(1)
        print(f"idle {idle / 2**20:.0f} MiB, peak {peak / 2**20:.0f} MiB, 413s {refused}")
        still_open = len(open_)
        for sock in sockets:
            sock.close()
        assert still_open == 0, f"{still_open} slow connections still open"
        assert refused == BIG_BODIES
        assert peak - idle < MOST_ABOVE_IDLE
        served_to_others(base)


def assert_database_down(reply) -> None:
    assert reply.status == 503 and reply.body == DATABASE_DOWN
    assert reply.headers["content-type"].startswith("text/plain")
    assert reply.headers["retry-after"] and reply.headers["cache-control"] == "no-store"


@pytest.mark.slow
@pytest.mark.browser
def test_with_the_database_unreachable_every_page_and_route_answers_503_plainly(
    server_url, template_url, tmp_path
):
    with demo_marts(server_url, template_url.database, tmp_path) as settings:
        relay = DatabaseRelay(settings.database_url.get_secret_value())
        relay.start()
        reached = {"ODAVL_DATABASE_URL": relay.url.render_as_string(hide_password=False)}
        with (
            running_dashboards(settings, tmp_path / "server.log", reached) as base,
            sync_playwright() as playwright,
        ):
            browser = playwright.chromium.launch(
                executable_path=chromium_executable(), headless=True, args=["--no-sandbox"]
            )
            try:
                page = browser.new_page(viewport=VIEWPORT)
                page.set_default_timeout(WAIT_MS)
                page.goto(base + "/insight?org=odavl-test-org&from=2026-10-27&to=2026-11-05")
                sign_in(page, MAYA.email, PASSWORD)
                # a wait for a page's run is bounded by WAIT_MS, as the page's own waits are
                # (`set_default_timeout` does not reach `expect`, whose default is 5 s): the first
                # page of a server just started (its libraries imported, Streamlit's frontend
                # loaded) took 2-3 s on a loaded machine. A bound on a wait, not a speed claim:
                # bench/dashboards_bench.py measures speed
                expect(page.get_by_role("heading", name="Insight")).to_be_visible(timeout=WAIT_MS)
                (cookie,) = [c["value"] for c in page.context.cookies() if c["name"] == COOKIE]
                session = f"{COOKIE}={cookie}"

                relay.stop()
                # the open page's next run (no HTTP request: its websocket) says so plainly
                page.get_by_test_id("stSidebarNav").get_by_text("Guardian", exact=True).click()
                expect(page.get_by_text(DATABASE_DOWN.strip())).to_be_visible(timeout=WAIT_MS)
                expect(page.get_by_test_id("stException")).to_have_count(0)
                assert page.reload().status == 503
                assert page.inner_text("body").strip() == DATABASE_DOWN.strip()
                form = {"email": MAYA.email, "password": PASSWORD, "next": "/"}
                for reply in (
                    call(base, "GET", "/insight", cookie=session),
                    call(base, "GET", "/"),
                    call(base, "GET", "/auth/sign-in"),
                    call(base, "POST", "/auth/sign-in", form),
                    call(base, "POST", "/auth/sign-out", {}, cookie=session),
                    call(base, "GET", "/media/0123456789abcdef.csv", cookie=session),
                ):
                    assert_database_down(reply)

                relay.start()  # back: the session and the sign-in are as they were
                page.reload()
                expect(page.get_by_role("heading", name="Guardian")).to_be_visible(timeout=WAIT_MS)
                assert call(base, "GET", "/insight", cookie=session).status == 200
                assert call(base, "POST", "/auth/sign-in", form, source="127.0.0.3").status == 303
            finally:
                browser.close()
                relay.stop()


@pytest.mark.clock("2026-11-04T00:00:00Z")
def test_with_openid_connect_a_page_that_needs_the_database_says_plainly_it_is_down(
    settings, conn, monkeypatch
):
    """No session to check, but the Overview's quota alerts are in PostgreSQL."""
    add_people(conn)
    anchor_subscription(conn, ORG, "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z")
    add_many(conn, ORG, "first", 10, "2026-11-03T10:00:00Z", "2026-11-03T10:01:00Z")
    refresh_marts(settings, as_of=at("2026-11-04T00:00:00Z"))
    unreachable = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/odavl"
    for key, value in {**environment(settings), "ODAVL_DATABASE_URL": unreachable}.items():
        monkeypatch.setenv(key, value)
    with main_module_kept():
        app = signed_in_app(ALICE)
    assert not app.exception, [e.value for e in app.exception]
    assert [e.value for e in app.error] == [DATABASE_DOWN.strip()]
