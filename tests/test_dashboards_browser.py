"""The dashboards in a real browser: `odavl-pipeline dashboard` started as a server on
loopback, Debian's headless chromium driven by Playwright (never a downloaded browser).

A shared link leads to the sign-in form and back; the session survives a reload and another
shared link; signing out ends it in every tab. On the way, each page is photographed into
test-artifacts/dashboards/; with ODAVL_UPDATE_SCREENSHOTS=1 the same shots replace the
README's in docs/dashboards/."""

import os
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from odavl_pipeline.db.dashboard_sessions import COOKIE
from odavl_pipeline.db.server import connect
from odavl_pipeline.db.sign_in import set_password
from odavl_pipeline.settings import Settings

from .dashboard_server import call, running_dashboards
from .dashboards_fixtures import BOB, MAYA, PASSWORD, STAFF, VERA, demo_marts

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts" / "dashboards"
DOCS = ROOT / "docs" / "dashboards"
CHROMIUM_NAMES = ("chromium", "chromium-browser")
WAIT_MS = 30_000
VIEWPORT = {"width": 1400, "height": 1100}
SHARED_LINK = "/insight?org=odavl-test-org&from=2026-10-27&to=2026-11-05"


def chromium_executable() -> str:
    """Debian's chromium; its absence fails the test and says how to install it."""
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(
        "chromium is missing: install Debian's package (`apt-get install -y chromium`); "
        "the browser test never downloads a browser",
        pytrace=False,
    )


@pytest.fixture(scope="module")
def demo(server_url, template_url, tmp_path_factory) -> tuple[Settings, Path]:
    """The demo marts and their database, with the clock where the marts were built."""
    root = tmp_path_factory.mktemp("browser")
    with demo_marts(server_url, template_url.database, root) as settings:
        yield settings, root


@pytest.fixture(scope="module")
def server(demo):
    """The dashboards serving the demo marts on a loopback port."""
    settings, root = demo
    with running_dashboards(settings, root / "server.log") as base:
        yield base


@pytest.fixture
def browser():
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium_executable(), headless=True, args=["--no-sandbox"]
        )
        try:
            yield launched
        finally:
            launched.close()


def no_exception_text(page: Page) -> None:
    errors = page.get_by_test_id("stException")
    expect(errors).to_have_count(0)
    body = page.inner_text("body")
    for marker in ("Traceback", "Exception:", "Error:"):
        assert marker not in body, body[:3000]


def shot(page: Page, name: str) -> None:
    """A screenshot of the page once its charts are drawn; kept for the docs when asked."""
    # loaded, and no script running: the app's own signal (a second tab's scripts, from the
    # browser's cache, may never count as finished for "networkidle")
    page.wait_for_load_state("load")
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0)
    page.wait_for_timeout(800)  # the charts' own rendering
    no_exception_text(page)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    # the page scrolls inside Streamlit's main area: a window as tall as it shows all of it
    height = page.get_by_test_id("stMain").evaluate("main => main.scrollHeight")
    page.set_viewport_size({**VIEWPORT, "height": max(VIEWPORT["height"], min(height, 8000))})
    page.wait_for_timeout(800)  # the charts redraw at the new size
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
    page.set_viewport_size(VIEWPORT)
    if os.environ.get("ODAVL_UPDATE_SCREENSHOTS") == "1":
        shutil.copyfile(ARTIFACTS / f"{name}.png", DOCS / f"{name}.png")


def sign_in(page: Page, email: str, password: str) -> None:
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()


def open_page(page: Page, name: str) -> None:
    page.get_by_test_id("stSidebarNav").get_by_text(name, exact=True).click()
    expect(
        page.get_by_role("heading", name=name if name != "Overview" else "ODAVL Test Org")
    ).to_be_visible()


def test_a_session_survives_reloads_and_shared_links_until_signed_out(server):
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_executable(), headless=True, args=["--no-sandbox"]
        )
        try:
            context = browser.new_context(viewport=VIEWPORT)
            context.set_default_timeout(WAIT_MS)
            page = context.new_page()
            page.goto(server + SHARED_LINK)
            expect(page).to_have_title("Sign in · ODAVL dashboards")
            sign_in(page, MAYA.email, "not the password")
            expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
            sign_in(page, MAYA.email, PASSWORD)
            # the shared link's page and filters, after signing in
            expect(page.get_by_role("heading", name="Insight")).to_be_visible()
            assert "org=odavl-test-org" in page.url and "from=2026-10-27" in page.url
            shot(page, "insight")

            page.reload()
            expect(page.get_by_role("heading", name="Insight")).to_be_visible()
            expect(page.get_by_text(f"Signed in as {MAYA.email}")).to_be_visible()

            shared = context.new_page()  # a link opened from a chat, in the same browser
            shared.goto(f"{server}/guardian?org=odavl-test-org&from=2026-10-27&to=2026-11-05")
            expect(shared.get_by_role("heading", name="Guardian")).to_be_visible()
            shot(shared, "guardian")
            for name in ("Overview", "Billing", "Autopilot"):
                open_page(shared, name)
                assert "from=2026-10-27" in shared.url  # the filters follow across pages
                shot(shared, name.lower())

            shared.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").first.click()
            shared.get_by_role("option", name="Enterprise Corp").click()
            shared.wait_for_url("**org=enterprise-corp**")
            # a VIEWER of Enterprise Corp: no billing page in the menu
            expect(shared.get_by_test_id("stSidebarNav").get_by_text("Billing")).to_have_count(0)

            shared.get_by_role("button", name="Sign out").click()
            expect(shared.get_by_role("status")).to_have_text("You are signed out.")
            page.reload()  # the other tab: signed out as well
            expect(page).to_have_title("Sign in · ODAVL dashboards")
            page.goto(server + SHARED_LINK)
            expect(page.get_by_label("Password", exact=True)).to_be_visible()
        finally:
            browser.close()


def test_staff_see_the_staff_page(server):
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_executable(), headless=True, args=["--no-sandbox"]
        )
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.set_default_timeout(WAIT_MS)
            page.goto(f"{server}/staff?from=2026-10-27&to=2026-11-05")
            sign_in(page, STAFF.email, PASSWORD)
            expect(page.get_by_role("heading", name="All organizations")).to_be_visible()
            shot(page, "staff")
        finally:
            browser.close()


def download(page: Page, name: str) -> tuple[str, bytes]:
    """Click the download button of the table `name`: the address it was served from (a path of
    the server) and its bytes."""
    with page.expect_download() as started:
        page.get_by_role("button", name=f"Download {name} (CSV)").click()
    served = started.value
    return urlsplit(served.url).path, Path(served.path()).read_bytes()


def session_cookie(context) -> str:
    (value,) = [cookie["value"] for cookie in context.cookies() if cookie["name"] == COOKIE]
    return f"{COOKIE}={value}"


def test_a_download_is_served_only_to_the_session_it_was_shown_to(server, demo, browser):
    """The issue's download leak: the address of a download, fetched without the session that
    was shown it, by another organization's member, after signing out, after a new password."""
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    page.goto(server + SHARED_LINK)
    sign_in(page, VERA.email, PASSWORD)
    expect(page.get_by_role("heading", name="Insight")).to_be_visible()
    path, content = download(page, "top signatures")
    assert path.startswith("/media/") and content.startswith(b"Project,Detector,Severity,")
    cookie = session_cookie(context)
    served = call(server, "GET", path, cookie=cookie)
    assert served.status == 200 and served.body == content.decode()
    assert served.headers["cache-control"] == "no-store"

    without = call(server, "GET", path)
    assert without.status == 404 and "Detector" not in without.body
    assert call(server, "GET", path, cookie=f"{COOKIE}=forged-{'x' * 36}").status == 404
    bobs = call(
        server, "POST", "/auth/sign-in", {"email": BOB.email, "password": PASSWORD, "next": "/"}
    )
    assert bobs.status == 303
    bob = f"{COOKIE}={bobs.cookie(COOKIE).value}"
    assert call(server, "GET", path, cookie=bob).status == 404  # another organization's member

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("status")).to_have_text("You are signed out.")
    assert call(server, "GET", path, cookie=cookie).status == 404  # the ended session's copy

    page.goto(server + SHARED_LINK)
    sign_in(page, VERA.email, PASSWORD)
    expect(page.get_by_role("heading", name="Insight")).to_be_visible()
    path, content = download(page, "top signatures")
    cookie = session_cookie(context)
    assert call(server, "GET", path, cookie=cookie).status == 200
    with connect(demo[0]) as conn:  # what `odavl-pipeline users set-password` does
        set_password(conn, VERA.email, "a brand new password")
    assert call(server, "GET", path, cookie=cookie).status == 404
