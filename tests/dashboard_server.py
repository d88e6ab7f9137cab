"""The dashboards as users meet them: their server (`dashboards/server.py`, what
`odavl-pipeline dashboard` runs) started on a loopback port, with a plain HTTP client for its
sign-in routes."""

import http.client
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from odavl_pipeline.settings import Settings

from .dashboards_fixtures import DASHBOARDS, environment
from .processes import stop

STARTUP_SECONDS = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_dashboards(
    settings: Settings, log_path: Path, extra_env: dict[str, str] | None = None
) -> Iterator[str]:
    """The dashboards on these settings, serving on a free loopback port; its base URL. The
    server runs on this process's clock as it is when the block starts (it inherits the
    environment): set the clock before. It is stopped (SIGTERM, then SIGKILL) when the block
    ends."""
    with dashboards_process(settings, log_path, extra_env) as (base, _):
        yield base


@contextmanager
def dashboards_process(
    settings: Settings, log_path: Path, extra_env: dict[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen]]:
    """`running_dashboards`, with the server's process."""
    port = free_port()
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                str(DASHBOARDS / "server.py"),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=log_path.parent,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **environment(settings), **(extra_env or {})},
        )
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_until_healthy(base, process, log_path)
            yield base, process
        finally:
            stop(process)


def _wait_until_healthy(base: str, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        assert process.poll() is None, log_path.read_text()[-3000:]
        assert time.monotonic() < deadline, f"the dashboards did not start in {STARTUP_SECONDS} s"
        time.sleep(0.3)


@dataclass(frozen=True)
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: str

    @property
    def location(self) -> str | None:
        return self.headers.get("location")

    def cookie(self, name: str):
        """The Set-Cookie of `name` (a Morsel), or None."""
        return self.cookies().get(name)

    def cookies(self) -> SimpleCookie:
        """Every Set-Cookie of the reply, by name."""
        jar = SimpleCookie()
        for header in self.headers.get_all("set-cookie") or []:
            jar.load(header)
        return jar


def call(
    base: str,
    method: str,
    path: str,
    form: dict[str, str] | bytes | None = None,
    cookie: str | None = None,
    headers: dict[str, str] | None = None,
    source: str | None = None,
) -> Reply:
    """One request, redirects not followed (they are what is tested); from the loopback
    address `source` (127.0.0.2, …: another client to the server) when given."""
    address = urlsplit(base)
    body = form if isinstance(form, bytes) or form is None else urlencode(form).encode()
    sent = {"Content-Type": "application/x-www-form-urlencoded"} if form is not None else {}
    if cookie:
        sent["Cookie"] = cookie
    connection = http.client.HTTPConnection(
        address.hostname, address.port, timeout=30, source_address=(source, 0) if source else None
    )
    try:
        connection.request(method, path, body=body, headers={**sent, **(headers or {})})
        reply = connection.getresponse()
        return Reply(reply.status, reply.headers, reply.read().decode("utf-8", "replace"))
    finally:
        connection.close()
