"""`odavl-pipeline api` on a loopback port for the HTTP API's tests (tests/test_api_http.py,
tests/test_api_fuzz.py)."""

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

from .dashboard_server import free_port
from .processes import stop

STARTUP_SECONDS = 60


@contextmanager
def api_server(settings, log_path, *arguments: str, **environment: str) -> Iterator[str]:
    """`odavl-pipeline api` on a free port, with more `arguments` (`--workers 2`) and variables
    added to the environment; its base URL. Stopped (SIGTERM, then SIGKILL) after."""
    port = free_port()
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "odavl_pipeline.cli", "api", "--port", str(port), *arguments],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **environment},
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + STARTUP_SECONDS
            while True:
                assert process.poll() is None, log_path.read_text()[-3000:]
                try:
                    urllib.request.urlopen(f"{base}/openapi.json", timeout=2).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, log_path.read_text()[-3000:]
                    time.sleep(0.2)
            yield base
        finally:
            stop(process)
