"""Debian's redis-server on loopback, for the Celery broker: a free port, no persistence, its
working folder a temporary one; always stopped by whoever started it (`close`)."""

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

STARTUP_SECONDS = 20


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    def __init__(self):
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail(
                "redis-server is missing: the Celery test needs Debian's redis-server "
                "(`apt-get install redis-server`, which .ci/run does when it is missing)",
                pytrace=False,
            )
        self.folder = Path(tempfile.mkdtemp(prefix="odavl-redis-"))
        self.process: subprocess.Popen | None = None
        try:
            self._start(binary)
        except BaseException:
            self.close()
            raise

    def _start(self, binary: str) -> None:
        for _ in range(3):  # the free port may be taken in between: another one then
            self.port = _free_port()
            self.log = self.folder / f"redis-{self.port}.log"
            self.process = subprocess.Popen(
                [
                    binary,
                    "--bind", "127.0.0.1",
                    "--port", str(self.port),
                    "--save", "",
                    "--appendonly", "no",
                    "--dir", str(self.folder),
                    "--logfile", str(self.log),
                    "--daemonize", "no",
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
            if self._ready():
                return
            self._stop()
        raise AssertionError(f"redis-server did not start:\n{self.log_text()[-2000:]}")

    def _ready(self) -> bool:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(64).startswith(b"+PONG"):
                        return True
            except OSError:
                pass
            time.sleep(0.1)
        return False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def _stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()  # SIGTERM: redis-server shuts down (nothing to save)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def close(self) -> None:
        self._stop()
        shutil.rmtree(self.folder, ignore_errors=True)
