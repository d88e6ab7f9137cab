"""The dashboards as a person meets them: served by `dashboards/server.py` (what
`odavl-pipeline dashboard` runs), driven in Debian's headless chromium through Playwright.

Times run from the moment of the navigation or of the click. A heading is seen in the browser
(`performance.now()`, polled at each animation frame); a script's end is Streamlit's
`script_finished` message read off the page's websocket as it arrives, so a run too quick to
show in the page is still counted:

  open     a page's address opened in a new tab, signed in: until its heading is drawn
           (`first`) and until its script has finished (`done`);
  switch   the page chosen in the sidebar, from the page before it: the same two moments;
  filter   the viewer's other organization chosen in the sidebar, and back: until the page's
           script has run again and finished (Streamlit keeps the old content meanwhile).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from odavl_pipeline.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SERVER = ROOT / "dashboards" / "server.py"
WAIT_MS = 60_000
VIEWPORT = {"width": 1400, "height": 1100}
REPEAT = 3  # each measure is the median of this many

# resolves with performance.now() once an <h1> reads `title` (any <h1> when it is null)
_HEADING = """title => {
  const found = [...document.querySelectorAll('h1')].some(
    h => h.offsetParent !== null && (title === null || h.innerText.trim() === title));
  return found ? performance.now() : false;
}"""


class Runs:
    """When each script run of a page's sessions finished: Streamlit's `script_finished`
    message, read off the page's websocket as it arrives (a run too quick to show in the page
    is still counted)."""

    def __init__(self, page) -> None:
        self.page = page
        self.finished: list[float] = []
        page.on("websocket", lambda socket: socket.on("framereceived", self._frame))

    def _frame(self, payload) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        if isinstance(payload, bytes):
            message = ForwardMsg.FromString(payload)
            if message.script_finished == ForwardMsg.FINISHED_SUCCESSFULLY:
                self.finished.append(time.perf_counter())

    def after(self, moment: float) -> float:
        """Milliseconds from `moment` (perf_counter) to the end of the first run after it."""
        deadline = time.perf_counter() + WAIT_MS / 1000
        while time.perf_counter() < deadline:
            ends = [end for end in self.finished if end > moment]
            if ends:
                return (ends[0] - moment) * 1000
            self.page.wait_for_timeout(5)  # lets Playwright deliver the frames
        raise TimeoutError(f"no script run finished within {WAIT_MS / 1000:.0f} s")


@dataclass(frozen=True)
class Visit:
    page: str  # the path after the host: "" is the Overview
    title: str | None  # the heading that shows the page is there; None: any heading
    label: str  # its name in the sidebar


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    raise SystemExit("chromium is missing: install Debian's package (apt-get install chromium)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# the floor: a Streamlit app that draws a heading and one filter and reads nothing, served by
# uvicorn as the dashboards are (`st.App`), without their sign-in
FLOOR_APP = """import streamlit as st
st.sidebar.selectbox("Organization", ["First", "Second"])
st.title("Floor")
"""
FLOOR_SERVER = """import sys, uvicorn, streamlit as st
uvicorn.run(st.App(sys.argv[1]), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
"""
FLOOR = [Visit("", "Floor", "Floor")]


@contextmanager
def served(settings: Settings, staff: str, log: Path) -> Iterator[str]:
    """The dashboards on `settings`, on a free loopback port, until the block ends."""
    env = {
        "ODAVL_HOME": str(settings.home),
        "ODAVL_MARTS_PATH": str(settings.marts_path),
        "ODAVL_DATABASE_URL": settings.database_url.get_secret_value(),
        "ODAVL_STAFF_EMAILS": staff,
    }
    with _serving([str(SERVER), "--host", "127.0.0.1", "--port"], env, log) as base:
        yield base


@contextmanager
def served_floor(folder: Path) -> Iterator[str]:
    """The floor app, served from `folder`, until the block ends."""
    (folder / "floor.py").write_text(FLOOR_APP)
    (folder / "floor_server.py").write_text(FLOOR_SERVER)
    command = [str(folder / "floor_server.py"), str(folder / "floor.py")]
    with _serving(command, {}, folder / "floor.log") as base:
        yield base


@contextmanager
def _serving(command: list[str], env: dict[str, str], log: Path) -> Iterator[str]:
    """`command` with a free port appended, until it answers its health check; its base URL."""
    port = _free_port()
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, *command, str(port)],
            cwd=SERVER.parent,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, process, log)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_healthy(base: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the dashboards ended: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError("the dashboards did not answer within 60 s")


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return round(ordered[len(ordered) // 2] / 1000, 3)


def _sign_in(page, runs: Runs, email: str, password: str) -> None:
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    started = time.perf_counter()
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_function(_HEADING, arg=None, polling="raf")
    runs.after(started)


def _open(context, base: str, visit: Visit, query: str) -> tuple[float, float]:
    """Milliseconds from navigation start to the heading, and to the script's end."""
    page = context.new_page()
    runs = Runs(page)
    try:
        started = time.perf_counter()
        page.goto(f"{base}/{visit.page}?{query}", wait_until="commit")
        first = page.wait_for_function(_HEADING, arg=visit.title, polling="raf").json_value()
        navigated = page.evaluate("() => performance.timeOrigin") / 1000
        return first, runs.after(started) - (navigated - _epoch(started)) * 1000
    finally:
        page.close()


def _epoch(moment: float) -> float:
    """The wall-clock time (seconds) of a perf_counter `moment` of this process."""
    return time.time() - (time.perf_counter() - moment)


def _switch(page, runs: Runs, visit: Visit) -> tuple[float, float]:
    """Milliseconds from the sidebar click to the heading, and to the script's end."""
    link = page.get_by_test_id("stSidebarNav").get_by_text(visit.label, exact=True)
    link.wait_for()
    clicked = page.evaluate("() => performance.now()")
    started = time.perf_counter()
    link.click()
    first = page.wait_for_function(_HEADING, arg=visit.title, polling="raf").json_value()
    return first - clicked, runs.after(started)


def _filter(page, runs: Runs) -> float:
    """Milliseconds from choosing the other organization in the sidebar to the page's script
    ending."""
    page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").first.click()
    other = page.locator("[role=option]:not([aria-selected=true])").first
    other.wait_for()
    started = time.perf_counter()
    other.click()
    return runs.after(started)


def page_times(
    base: str,
    email: str | None,
    password: str | None,
    visits: list[Visit],
    start: date,
    end: date,
    filters: bool = True,
    org: str | None = None,
) -> dict[str, dict[str, float]]:
    """For each visit, as `email` (None: no sign-in; `filters`: the sidebar's first select box
    has another choice, as a viewer's second organization), in `org`: `open_first`, `open_done`, `switch_first`, `switch_done`, `filter`
    seconds, each the median of REPEAT."""
    from playwright.sync_api import sync_playwright

    query = f"from={start.isoformat()}&to={end.isoformat()}" + (f"&org={org}" if org else "")
    times: dict[str, dict[str, list[float]]] = {
        v.label: {k: [] for k in ("open_first", "open_done", "switch_first", "switch_done")}
        | {"filter": []}
        for v in visits
    }
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium(), headless=True, args=["--no-sandbox"]
        )
        try:
            context = browser.new_context(viewport=VIEWPORT)
            context.set_default_timeout(WAIT_MS)
            page = context.new_page()
            runs = Runs(page)
            page.goto(f"{base}/{visits[-1].page}?{query}")  # each round starts elsewhere
            if email:
                _sign_in(page, runs, email, password)
            for _ in range(REPEAT):
                for visit in visits:
                    seen = times[visit.label]
                    if len(visits) > 1:
                        first, done = _switch(page, runs, visit)
                        seen["switch_first"].append(first)
                        seen["switch_done"].append(done)
                    if filters:  # to the other organization and back
                        seen["filter"] += [_filter(page, runs), _filter(page, runs)]
                    first, done = _open(context, base, visit, query)
                    seen["open_first"].append(first)
                    seen["open_done"].append(done)
        finally:
            browser.close()
    return {label: {k: _median(v) for k, v in seen.items() if v} for label, seen in times.items()}
