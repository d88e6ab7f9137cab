"""Serving within bounds (`odavl_pipeline.bounded_http`): a small app served in a process of its
own on loopback, met by real sockets that send their heads and bodies too slowly, too big, or
too many at once, and by forwarded headers from a proxy that was or was not named."""

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from .dashboard_server import free_port
from .processes import stop

ROOT = Path(__file__).resolve().parents[1]
STARTUP_SECONDS = 30
CLOSE_WAIT_SECONDS = 10  # a wait for the server to close a connection, not a speed claim
GET = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n"


@contextmanager
def bounded_app(
    tmp_path: Path,
    head: float = 1,
    body: float = 1,
    largest: int = 1024,
    connections: int = 50,
    proxies: str = "",
) -> Iterator[int]:
    """tests/bounded_app.py served within these bounds; its port."""
    port = free_port()
    log_path = tmp_path / f"bounded-{port}.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.bounded_app", str(port), str(head), str(body)]
            + [str(largest), str(connections), proxies],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + STARTUP_SECONDS
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    assert process.poll() is None, log_path.read_text()
                    assert time.monotonic() < deadline, "the bounded app did not start"
                    time.sleep(0.1)
            yield port
        finally:
            stop(process)


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=CLOSE_WAIT_SECONDS)
    return sock


def read_until_closed(sock: socket.socket, trickle: bytes = b"") -> bytes:
    """Everything the server sends until it closes the connection, sending `trickle` a byte at
    a time meanwhile (a slow client); fails if it is still open after CLOSE_WAIT_SECONDS."""
    received, deadline = b"", time.monotonic() + CLOSE_WAIT_SECONDS
    sock.settimeout(0.2)
    while time.monotonic() < deadline:
        if trickle:
            try:
                sock.sendall(trickle[:1])
            except OSError:
                return received
            trickle = trickle[1:]
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk
    pytest.fail(f"the connection was still open after {CLOSE_WAIT_SECONDS} s: {received!r}")


def request(port: int, raw: bytes = GET) -> tuple[int, dict]:
    """One request on a connection of its own: the status and the JSON body."""
    with connect(port) as sock:
        sock.sendall(raw)
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.endswith(b"}"):
            chunk = sock.recv(65536)
            assert chunk, reply
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_a_head_that_does_not_arrive_in_time_is_closed_while_others_are_served(tmp_path):
    with bounded_app(tmp_path) as port:
        silent, slow = connect(port), connect(port)
        slow.sendall(b"GET / HTTP/1.1\r\nHost: test\r\n")
        assert request(port) == (200, {"client": "127.0.0.1", "scheme": "http", "body": 0})
        assert read_until_closed(silent) == b""
        assert read_until_closed(slow, trickle=b"X-Slow: " + b"a" * 100) == b""


def test_a_kept_alive_connection_owes_its_next_head_in_time(tmp_path):
    with bounded_app(tmp_path) as port, connect(port) as sock:
        sock.sendall(GET)
        first = b""
        while not first.endswith(b"}"):
            first += sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200")
        assert read_until_closed(sock, trickle=b"GET / HTTP/1.1\r\nX-Slow: " + b"a" * 100) == b""


def test_a_body_that_does_not_arrive_in_time_is_closed_and_a_prompt_one_is_read(tmp_path):
    with bounded_app(tmp_path) as port:
        slow = connect(port)
        slow.sendall(b"POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\n" + b"a" * 10)
        assert read_until_closed(slow, trickle=b"a" * 90) == b""
        prompt = b"POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\n" + b"a" * 100
        assert request(port, prompt)[1]["body"] == 100


def test_a_body_over_the_largest_or_of_no_length_is_refused_before_it_is_read(tmp_path):
    with bounded_app(tmp_path, largest=1024) as port:
        big = connect(port)
        big.sendall(b"POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 1048576\r\n\r\n")
        refused = read_until_closed(big)
        assert refused.startswith(b"HTTP/1.1 413") and b"connection: close" in refused.lower()
        chunked = connect(port)
        chunked.sendall(b"POST / HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n")
        assert read_until_closed(chunked).startswith(b"HTTP/1.1 411")
        exact = b"POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 1024\r\n\r\n" + b"a" * 1024
        assert request(port, exact)[1]["body"] == 1024


def test_a_connection_beyond_the_cap_is_refused_at_once(tmp_path):
    with bounded_app(tmp_path, head=60, connections=5) as port:
        held = [connect(port) for _ in range(5)]
        time.sleep(0.5)  # the server has accepted them all (their heads may take 60 s)
        refused = read_until_closed(connect(port))
        assert refused.startswith(b"HTTP/1.1 503") and b"Too many connections" in refused
        held.pop().close()
        deadline = time.monotonic() + CLOSE_WAIT_SECONDS
        while True:  # once the server has seen it closed, there is room again
            try:
                assert request(port)[0] == 200
                break
            except (AssertionError, ValueError, OSError):
                assert time.monotonic() < deadline, "no room after a connection closed"
                time.sleep(0.2)
        for sock in held:
            sock.close()


@pytest.mark.parametrize(
    "proxies, forwarded, client, scheme",
    [
        ("", "198.51.100.7", "127.0.0.1", "http"),
        ("127.0.0.1", "198.51.100.7", "198.51.100.7", "https"),
        ("127.0.0.0/8,10.0.0.0/8", "203.0.113.9, 198.51.100.7, 10.0.0.1", "198.51.100.7", "https"),
        ("10.0.0.1", "198.51.100.7", "127.0.0.1", "http"),
    ],
)
def test_forwarded_headers_count_only_from_a_named_proxy(
    tmp_path, proxies, forwarded, client, scheme
):
    raw = (
        b"GET / HTTP/1.1\r\nHost: test\r\nX-Forwarded-For: "
        + forwarded.encode()
        + b"\r\nX-Forwarded-Proto: https\r\n\r\n"
    )
    with bounded_app(tmp_path, proxies=proxies) as port:
        assert request(port, raw) == (200, {"client": client, "scheme": scheme, "body": 0})
