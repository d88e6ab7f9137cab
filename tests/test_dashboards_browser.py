"""The dashboards in a real browser: `odavl-pipeline dashboard` started as a server on
loopback, Debian's headless chromium driven by Playwright (never a downloaded browser).

A shared link leads to the sign-in form and back; the session survives a reload and another
shared link; signing out ends it in every tab. An analyst compares this period with the last and
clicks a billed number through to its landing line; an owner adds an alert endpoint, chooses
thresholds and receives a signed test alert; staff find an organization and open it read-only.
On the way, each page is photographed into test-artifacts/dashboards/; with
ODAVL_UPDATE_SCREENSHOTS=1 the same shots replace the README's in docs/dashboards/."""

import gzip
import json
import os
import re
import shutil
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from odavl_pipeline.alerts import thresholds
from odavl_pipeline.db.dashboard_sessions import COOKIE
from odavl_pipeline.db.server import connect
from odavl_pipeline.db.sign_in import set_password
from odavl_pipeline.settings import Settings

from .alert_receiver import AlertReceiver
from .dashboard_server import call, running_dashboards
from .dashboards_fixtures import ALICE, BOB, MAYA, PASSWORD, STAFF, VERA, demo_marts
from .records import ORG

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts" / "dashboards"
DOCS = ROOT / "docs" / "dashboards"
CHROMIUM_NAMES = ("chromium", "chromium-browser")
WAIT_MS = 30_000
expect.set_options(timeout=WAIT_MS)  # bounds each wait on a busy machine; no speed claim
VIEWPORT = {"width": 1400, "height": 1100}
SHARED_LINK = "/insight?org=odavl-test-org&from=2026-10-27&to=2026-11-05"
ALERT_MASTER_SECRET = "the-browser-test-master-secret"  # ODAVL_ALERT_WEBHOOK_SECRET
GRID_ROW_PX = 35  # the height of a glide data grid's header and of each of its rows


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
    with running_dashboards(
        settings, root / "server.log", {"ODAVL_ALERT_WEBHOOK_SECRET": ALERT_MASTER_SECRET}
    ) as base:
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
    # the page scrolls inside Streamlit's main area: a window as tall as it shows all of it,
    # grown again while what was below the fold draws itself in
    height = VIEWPORT["height"]
    for _ in range(4):
        content = page.get_by_test_id("stMain").evaluate("main => main.scrollHeight")
        if content <= height:
            break
        height = min(content, 8000)
        page.set_viewport_size({**VIEWPORT, "height": height})
        page.wait_for_timeout(800)  # the charts redraw at the new size
    page.mouse.move(0, 0)  # no table's toolbar or tooltip shown by hovering
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


def test_a_session_survives_reloads_and_shared_links_until_signed_out(server, browser):
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


def test_staff_find_an_organization_and_open_its_pages_read_only(server, browser):
    page = browser.new_page(viewport=VIEWPORT)
    page.set_default_timeout(WAIT_MS)
    page.goto(f"{server}/staff?from=2026-10-27&to=2026-11-05")
    sign_in(page, STAFF.email, PASSWORD)
    expect(page.get_by_role("heading", name="Staff: all organizations")).to_be_visible()
    shot(page, "staff")

    search = page.get_by_label("Search organizations", exact=True)
    search.fill("TEST org")
    search.press("Enter")
    expect(page.get_by_text(re.compile(r"^1 of \d+ organizations match\.$"))).to_be_visible()
    opening = page.get_by_role("combobox", name="Open an organization's pages (read-only)")
    expect(opening).to_have_value(f"ODAVL Test Org ({ORG})")
    page.get_by_test_id("stButton").filter(has_text="Open").click()

    expect(page.get_by_role("heading", name="ODAVL Test Org")).to_be_visible()
    assert f"org={ORG}" in page.url
    expect(
        page.get_by_text("You are viewing this organization as ODAVL staff: read-only.")
    ).to_be_visible()
    expect(page.get_by_test_id("stMetric").filter(has_text="Your role")).to_contain_text(
        "Staff, read-only"
    )
    # read-only: the pages that show its numbers, none that changes its settings
    nav = page.get_by_test_id("stSidebarNav")
    expect(nav.get_by_text("Billing", exact=True)).to_be_visible()
    expect(nav.get_by_text("Alerts", exact=True)).to_have_count(0)
    shot(page, "staff-open")

    open_page(page, "Billing")
    assert f"org={ORG}" in page.url
    periods = grid_rows(page.locator(".st-key-drill-periods"))
    assert {row["Period (UTC days)"] for row in periods} == {"Nov 01 – Nov 30", "Oct 01 – Oct 31"}


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
    assert path.startswith("/media/")
    assert content.startswith(b"\xef\xbb\xbfProject,Detector,Severity,")  # UTF-8 with a BOM
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


def grid_rows(grid) -> list[dict[str, str]]:
    """The rows a glide data grid (a `st.dataframe`, drawn on a canvas) holds, from the table it
    keeps for screen readers: each row's cells by column header, in the grid's order."""
    expect(grid.locator("td[role=gridcell]").first).to_be_attached()
    names = grid.locator("th").all_text_contents()
    rows = grid.locator("tr[aria-rowindex]").evaluate_all(
        "rows => rows.map(row => [...row.querySelectorAll('td')].map(cell => cell.textContent))"
    )
    return [dict(zip(names, cells, strict=True)) for cells in rows if cells]


def select_row(page: Page, grid, position: int) -> None:
    """Tick the checkbox at the left of the grid's row `position` (0 for the first)."""
    canvas = grid.locator("canvas").first
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    page.mouse.click(box["x"] + GRID_ROW_PX / 2, box["y"] + GRID_ROW_PX * (position + 1.5))


def bar_day(label: str) -> str:
    """The day (YYYY-MM-DD) of a day bar from its label ("Day (UTC): Oct 28; Units: 4; …"),
    in the demo's year."""
    shown = re.match(r"Day \(UTC\): (\w{3} \d{2});", label).group(1)
    return f"{datetime.strptime(f'{shown} 2026', '%b %d %Y'):%Y-%m-%d}"


def landing_line(landing_dir: Path, path: str, line: int) -> dict:
    """Line `line` (1-based) of the landed file at `path`, relative to the landing root."""
    file = landing_dir / path
    opened = gzip.open(file, "rt") if file.suffix == ".gz" else file.open()
    with opened as lines:
        return json.loads(lines.read().splitlines()[line - 1])


def test_an_analyst_compares_periods_and_clicks_a_bar_through_to_its_landing_line(
    server, demo, browser
):
    page = browser.new_page(viewport=VIEWPORT)
    page.set_default_timeout(WAIT_MS)
    page.goto(f"{server}/?org={ORG}&from=2026-10-27&to=2026-11-05")
    sign_in(page, MAYA.email, PASSWORD)
    expect(page.get_by_role("heading", name="ODAVL Test Org")).to_be_visible()
    dashed = page.locator(".mark-line path[stroke-dasharray='6,4']")
    expect(dashed).to_have_count(0)
    page.get_by_text("Compare with the previous period", exact=True).click()
    # each quota's chart: this period solid, the last one dashed beside it, named in the legend
    expect(dashed).to_have_count(3)
    expect(page.locator("svg text", has_text="Last period, Oct 01 – Oct 31")).to_have_count(3)
    expect(page.locator("svg text", has_text="This period, Nov 01 – Nov 30")).to_have_count(3)
    expect(page.get_by_text("The last period is drawn dashed beside it")).to_be_visible()
    side_by_side = {row["Metric"]: row for row in grid_rows(page.get_by_test_id("stDataFrame"))}
    assert set(side_by_side) == {"Analyses", "Fixes", "Audits"}
    assert int(side_by_side["Audits"]["Last period, all 31 days"]) > 0
    shot(page, "overview-compare")

    open_page(page, "Billing")
    periods = page.locator(".st-key-drill-periods")
    rows = grid_rows(periods)
    october = next(
        i
        for i, row in enumerate(rows)
        if row["Period (UTC days)"] == "Oct 01 – Oct 31" and row["Metric"] == "analyses"
    )
    select_row(page, periods, october)
    page.wait_for_url(lambda url: "period=2026-10-01" in url and "metric=analyses" in url)
    expect(page.get_by_text(f"{rows[october]['Used']} analyses billed for Oct 01")).to_be_visible()

    bars = page.locator(".st-key-drill-bars")
    expect(
        bars.locator("svg text", has_text="billed per UTC day of occurrence, Oct 01")
    ).to_be_visible()
    bar = bars.locator(".mark-rect path").first
    day = bar_day(bar.get_attribute("aria-label"))
    bar.click()
    page.wait_for_url(f"**day={day}**")

    events = page.locator(".st-key-drill-events")
    expect(events).to_be_visible()
    landed = [(i, row) for i, row in enumerate(grid_rows(events)) if row["Landing line"].strip()]
    assert landed, "none of the day's events shows its landing line"
    position, event = landed[0]
    select_row(page, events, position)
    page.wait_for_url(f"**event={event['Event id']}**")
    codes = page.get_by_test_id("stCode")
    expect(codes).to_have_count(2)
    link, landing = (text.strip() for text in codes.all_inner_texts())
    path, line = re.fullmatch(r"landing/(.+)#L(\d+)", landing).groups()
    assert event["Landing line"] == f"{path}:{line}"
    assert landing_line(demo[0].landing_dir, path, int(line))["event_id"] == event["Event id"]
    shot(page, "billing-drilldown")

    page.goto(link)  # the link the page gives reopens the same event
    expect(page.get_by_test_id("stCode").filter(has_text=landing)).to_be_visible()
    assert f"day={day}" in page.url and "period=2026-10-01" in page.url


def test_an_owner_adds_an_alert_endpoint_and_receives_a_signed_test_alert(server, demo, browser):
    page = browser.new_page(viewport=VIEWPORT)
    page.set_default_timeout(WAIT_MS)
    with AlertReceiver("known once the page shows it") as receiver:
        page.goto(f"{server}/alerts?org={ORG}")
        sign_in(page, ALICE.email, PASSWORD)
        expect(page.get_by_role("heading", name="Alerts")).to_be_visible()
        page.get_by_label("Endpoint URL", exact=True).fill(receiver.url)
        page.get_by_role("button", name="Add endpoint").click()
        added = page.get_by_text("Its signing secret is shown this once")
        expect(added).to_be_visible()
        uid = re.search(r"Endpoint (\S+) added", added.inner_text()).group(1)
        secret = page.get_by_test_id("stCode").inner_text().strip()
        assert secret.startswith("whsec_")
        receiver.secret = secret  # what the receiver verifies each signature with from now on

        percents = page.get_by_test_id("stMultiSelect")
        percents.get_by_role("button", name="Clear all").click()
        typed = percents.get_by_role("combobox")
        for percent in ("50 %", "90 %"):
            # typed, the list shows the option whether a rerun left it open or closed
            typed.fill(percent)
            page.get_by_role("option", name=percent, exact=True).click()
        page.get_by_text("Alert when the forecast runs out", exact=False).click()
        page.get_by_role("button", name="Save thresholds").click()
        expect(page.get_by_text("Thresholds saved")).to_be_visible()
        expect(page.get_by_text(secret)).to_have_count(0)  # shown once, gone at the next run
        with connect(demo[0]) as conn:
            chosen = thresholds.show(conn, ORG, by=ALICE.email).thresholds
        assert (chosen.percents, chosen.forecast) == ((50, 90), False)

        page.get_by_role("button", name="Send a test alert").click()
        expect(page.get_by_text(f"{uid} took the signed test alert: HTTP 200")).to_be_visible()
        (received,) = receiver.requests
        assert received.verified and received.answered == 200
        assert received.body["type"] == "quota.test" and received.body["endpoint"] == uid
        assert received.body["organization"]["slug"] == ORG
        shot(page, "alerts")
