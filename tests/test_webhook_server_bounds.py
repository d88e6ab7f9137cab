"""The webhook server under slow clients (issue 21, case 6): `odavl-pipeline stripe listen` in a
process of its own, a thousand real sockets on loopback each declaring a 1 MiB body and sending
it slowly, more that never finish their request's head; the server stays within 100 MB of its
idle memory, serves a signed delivery and its health check meanwhile, and closes the slow ones
itself. And its cap on connections follows its file descriptors."""

import json
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
import requests

from odavl_pipeline.stripe_billing.webhooks import BODY_SECONDS

from .stripe_emulator import TEST_WEBHOOK_SECRET, wait_until
from .stripe_signing import signature_header, signed_now

pytestmark = [pytest.mark.stripe, pytest.mark.slow]

SLOW_CLIENTS = 1000
STALLED_HEADS = 200
DECLARED_BODY = 1 << 20
PIECE = 4096  # each slow client sends this much every TICK: 8 KiB/s
TICK = 0.5
ATTACK_SECONDS = 30  # how long the slow clients keep sending, at most
MEMORY_BOUND = 100 << 20


@dataclass
class Listener:
    process: subprocess.Popen
    base: str
    port: int

    def rss(self) -> int:
        """The server's resident memory, in bytes."""
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise AssertionError("the server has no VmRSS: it ended")


@contextmanager
def stripe_listen(open_files: int | None = None) -> Iterator[Listener]:
    """`odavl-pipeline stripe listen` on a free port of loopback (with at most `open_files`
    file descriptors when given), until the block ends."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    def limit_files() -> None:
        if open_files:
            resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

    process = subprocess.Popen(
        [sys.executable, "-m", "odavl_pipeline.cli", "stripe", "listen", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=limit_files,
    )
    listener = Listener(process, f"http://127.0.0.1:{port}", port)
    try:
        wait_until(lambda: _healthy(listener), "the webhook server to start", seconds=60)
        yield listener
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(20)


def _healthy(listener: Listener) -> bool:
    assert listener.process.poll() is None, "the webhook server ended"
    try:
        return requests.get(f"{listener.base}/healthz", timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


def signed_delivery(listener: Listener, n: int) -> requests.Response:
    """A delivery of Stripe's, of a type we store without processing."""
    body = json.dumps(
        {
            "id": f"evt_during_attack_{n}",
            "type": "invoice.paid",
            "created": signed_now(),
            "data": {"object": {"id": f"in_{n}"}},
        }
    ).encode()
    return requests.post(
        f"{listener.base}/stripe/webhook",
        data=body,
        headers={"Stripe-Signature": signature_header(body, TEST_WEBHOOK_SECRET)},
        timeout=10,
    )


def connect_all(port: int, count: int, first_bytes: bytes) -> list[socket.socket]:
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(first_bytes)
        sock.setblocking(False)
        sockets.append(sock)
    return sockets


def closed_by_server(sock: socket.socket) -> bool:
    """Whether the server closed the connection (what it sent before is read and dropped)."""
    try:
        while chunk := sock.recv(65536):
            del chunk
        return True  # end of file
    except BlockingIOError:
        return False
    except ConnectionError:
        return True


def test_a_thousand_slow_clients_leave_the_server_small_and_serving(stripe_settings):
    forged = f"t={signed_now()},v1={'0' * 64}"  # well formed and recent, so the body is read
    slow_head = (
        f"POST /stripe/webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {DECLARED_BODY}\r\nStripe-Signature: {forged}\r\n\r\n"
    ).encode()
    piece = b" " * PIECE
    with stripe_listen() as listener:
        for n in range(3):  # warm: every code path of a delivery loaded
            assert signed_delivery(listener, -1 - n).status_code == 200
        idle = listener.rss()
        stalled = connect_all(listener.port, STALLED_HEADS, b"POST /stripe/webhook HTTP/1.1\r\n")
        slow = connect_all(listener.port, SLOW_CLIENTS, slow_head)
        peak, served, sent = idle, [], 0
        started = time.monotonic()
        open_slow = list(slow)
        while open_slow and time.monotonic() - started < ATTACK_SECONDS:
            for sock in open_slow:
                try:
                    sock.send(piece)
                    sent += PIECE
                except (BlockingIOError, ConnectionError):
                    pass
            open_slow = [sock for sock in open_slow if not closed_by_server(sock)]
            peak = max(peak, listener.rss())
            if len(served) < (time.monotonic() - started) / 2:  # every 2 s, someone else
                served.append(signed_delivery(listener, len(served)).status_code)
                served.append(requests.get(f"{listener.base}/healthz", timeout=10).status_code)
            time.sleep(TICK)
        peak = max(peak, listener.rss())
        heads_closed = wait_until(
            lambda: all(closed_by_server(sock) for sock in stalled), "stalled heads to close"
        )
        bodies_closed = wait_until(
            lambda: all(closed_by_server(sock) for sock in slow), "slow bodies to close"
        )
        for sock in stalled + slow:
            sock.close()
        after = signed_delivery(listener, 999)
    assert sent > SLOW_CLIENTS * PIECE * (BODY_SECONDS / TICK) / 2  # they did send, slowly
    assert heads_closed and bodies_closed
    assert served and set(served) == {200}, served
    assert after.status_code == 200
    assert peak - idle < MEMORY_BOUND, f"{(peak - idle) / 2**20:.0f} MiB above idle"


def test_connections_beyond_the_cap_are_answered_503_and_closed(stripe_settings):
    """With 300 file descriptors the server keeps (300 - 64) / 2 = 118 connections open: of
    150 opened at once, 32 are answered 503 and closed at once (the others, silent, when their
    head's deadline passes)."""
    with stripe_listen(open_files=300) as listener:
        held = connect_all(listener.port, 150, b"")
        answers = {sock: b"" for sock in held}

        def read_all() -> bool:
            for sock in held:
                try:
                    while chunk := sock.recv(65536):
                        answers[sock] += chunk
                except (BlockingIOError, ConnectionError):
                    pass
            return sum(answer.startswith(b"HTTP/1.1 503") for answer in answers.values()) >= 32

        wait_until(read_all, "the connections beyond the cap to be refused")
        for sock in held:
            sock.close()
        health = requests.get(f"{listener.base}/healthz", timeout=10)
    refused = [answer for answer in answers.values() if answer]
    assert len(refused) == 32 and all(b"503 Service Unavailable" in a for a in refused)
    assert health.status_code == 200
