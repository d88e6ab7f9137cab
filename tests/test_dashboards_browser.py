"""The dashboards in a real browser: `odavl-pipeline dashboard` started as a server on
loopback, Debian's headless chromium driven by Playwright (never a downloaded browser):
signing in, switching page and organization, with a screenshot of each step kept in
test-artifacts/dashboards/."""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from odavl_pipeline.settings import Settings

from .dashboards_fixtures import MAYA, PASSWORD, build_demo_marts, environment, scratch_database

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "dashboards"
CHROMIUM_NAMES = ("chromium", "chromium-browser")
WAIT_MS = 30_000


def chromium_executable() -> str:
    """Debian's chromium; its absence fails the test and says how to install it."""
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    pytest.fail("chromium is missing: install Debian's package (`apt-get install -y chromium`); "
                "the browser test never downloads a browser", pytrace=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(server_url, template_url, tmp_path_factory):
    """The demo marts, and the dashboards serving them on a loopback port."""
    root = tmp_path_factory.mktemp("browser")
    with scratch_database(server_url, template_url.database) as url:
        settings = Settings.from_env({"ODAVL_HOME": str(root / "home"),
                                      "ODAVL_DATABASE_URL": url.render_as_string(hide_password=False),
                                      "ODAVL_LANDING_DIR": str(root / "landing")})
        build_demo_marts(settings)
        port = free_port()
        log = open(root / "server.log", "w")
        process = subprocess.Popen(
            [sys.executable, "-m", "odavl_pipeline.cli", "dashboard", "--host", "127.0.0.1",
             "--port", str(port)], cwd=root, stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, **environment(settings)})
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as reply:
                        if reply.status == 200:
                            break
                except OSError:
                    pass
                assert process.poll() is None, (root / "server.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "the dashboard server did not start in 60 s"
                time.sleep(0.3)
            yield base
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
            log.close()


def no_exception_text(page: Page) -> None:
    expect(page.get_by_test_id("stException")).to_have_count(0)
    body = page.inner_text("body")
    for marker in ("Traceback", "Exception:", "Error:"):
        assert marker not in body, body[:3000]


def shot(page: Page, name: str) -> None:
    page.wait_for_timeout(300)  # let the charts draw
    no_exception_text(page)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_sign_in_switch_page_and_organization_in_chromium(server):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    executable = chromium_executable()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True,
                                             args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(WAIT_MS)
            page.goto(f"{server}/insight?org=odavl-test-org&from=2026-10-27&to=2026-11-05")
            page.get_by_label("Email", exact=True).fill(MAYA.email)
            page.get_by_label("Password", exact=True).fill("not the password")
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_text("Wrong email or password.")).to_be_visible()
            page.get_by_label("Password", exact=True).fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            # the shared link's page and filters, after signing in
            expect(page.get_by_role("heading", name="Insight")).to_be_visible()
            expect(page.get_by_text("Error events per UTC day, by severity")).to_be_visible()
            assert "org=odavl-test-org" in page.url and "from=2026-10-27" in page.url
            shot(page, "1-insight-shared-link")

            page.get_by_test_id("stSidebarNav").get_by_text("Overview").click()
            expect(page.get_by_role("heading", name="ODAVL Test Org")).to_be_visible()
            expect(page.get_by_text("Usage per day")).to_be_visible()
            assert "from=2026-10-27" in page.url  # the filters follow the viewer across pages
            shot(page, "2-overview")

            page.get_by_test_id("stSidebarNav").get_by_text("Billing").click()
            expect(page.get_by_role("heading", name="Billing")).to_be_visible()
            expect(page.get_by_text("Where a billed number comes from")).to_be_visible()
            shot(page, "3-billing")

            page.get_by_test_id("stSidebarNav").get_by_text("Guardian").click()
            expect(page.get_by_role("heading", name="Guardian")).to_be_visible()
            page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").first.click()
            page.get_by_role("option", name="Enterprise Corp").click()
            page.wait_for_url("**org=enterprise-corp**")
            expect(page.get_by_role("heading", name="Guardian")).to_be_visible()
            # a VIEWER of Enterprise Corp: no billing page in the menu
            expect(page.get_by_test_id("stSidebarNav").get_by_text("Billing")).to_have_count(0)
            shot(page, "4-guardian-other-organization")

            page.get_by_test_id("stSidebarNav").get_by_text("Autopilot").click()
            expect(page.get_by_role("heading", name="Autopilot")).to_be_visible()
            expect(page.get_by_text("Attestation chains")).to_be_visible()
            shot(page, "5-autopilot")
        finally:
            browser.close()
