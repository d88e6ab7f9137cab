"""The dashboards in a real browser: `odavl-pipeline dashboard` started as a server on
loopback, Debian's headless chromium driven by Playwright (never a downloaded browser).

A shared link leads to the sign-in form and back; the session survives a reload and another
shared link; signing out ends it in every tab. On the way, each page is photographed into
test-artifacts/dashboards/; with ODAVL_UPDATE_SCREENSHOTS=1 the same shots replace the
README's in docs/dashboards/."""

import os
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from .dashboard_server import running_dashboards
from .dashboards_fixtures import MAYA, PASSWORD, STAFF, demo_marts

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
def server(server_url, template_url, tmp_path_factory):
    """The demo marts, and the dashboards serving them on a loopback port, started and used
    with the clock where the marts were built."""
    root = tmp_path_factory.mktemp("browser")
    with (
        demo_marts(server_url, template_url.database, root) as settings,
        running_dashboards(settings, root / "server.log") as base,
    ):
        yield base


def no_exception_text(page: Page) -> None:
    errors = page.get_by_test_id("stException")
    expect(errors).to_have_count(0)
    body = page.inner_text("body")
    for marker in ("Traceback", "Exception:", "Error:"):
        assert marker not in body, body[:3000]


def shot(page: Page, name: str) -> None:
    """A screenshot of the page once its charts are drawn; kept for the docs when asked."""
    page.wait_for_load_state("networkidle")
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0)  # no script running
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
