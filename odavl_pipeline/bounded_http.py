"""Serving an ASGI app on uvicorn within bounds that slow or many clients cannot outlast.

uvicorn on its own waits for a request's head and body as long as the client keeps the
connection open, and accepts every connection it is offered. `serve` runs it with:

- a head timeout: a request's head (request line and headers) must arrive whole within
  `head_seconds` of the connection opening, or of the previous response on a kept-alive one;
- a body timeout: its body within `body_seconds` of the head;
- a largest body: a request declaring more than `largest_body` bytes is answered 413, one
  without a declared length (chunked) 411, both before a byte of the body is read;
- a cap on open connections (websockets included): one more is answered 503 and closed at once.

A connection past its timeout is closed; an app waiting for the rest of its body is told the
client disconnected. Forwarded headers (`X-Forwarded-For`, `X-Forwarded-Proto`) are believed
only from `trusted_proxies` (addresses or networks), and from nobody when there are none.
"""

import asyncio
import contextlib
import ctypes
import json
import logging
import os
import resource
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

SPARE_FILES = 256  # descriptors kept for everything but client connections
SHORTEST_WORKER_LIFE = 5.0  # seconds: a worker that dies sooner is not replaced
PR_SET_PDEATHSIG = 1  # prctl(2)


@dataclass(frozen=True)
class Bounds:
    head_seconds: float
    body_seconds: float
    largest_body: int  # bytes
    connections: int


def serve(
    app,
    host: str,
    port: int,
    bounds: Bounds,
    trusted_proxies: Sequence[str] = (),
    **uvicorn_options: Any,
) -> None:
    """Serve `app` on host:port within `bounds` until SIGINT or SIGTERM."""
    config = _config(app, host, port, bounds, trusted_proxies, **uvicorn_options)
    uvicorn.Server(config).run()


def serve_workers(
    make_app: Callable[[], Any],
    workers: int,
    host: str,
    port: int,
    bounds: Bounds,
    trusted_proxies: Sequence[str] = (),
    **uvicorn_options: Any,
) -> None:
    """Serve the app `make_app` makes in each of `workers` processes forked from this one, all
    on one listening socket, each within `bounds`, until SIGINT or SIGTERM: this process then
    asks each worker to end (SIGTERM) and waits for them. A worker that dies otherwise is
    replaced."""
    if workers == 1:
        serve(make_app(), host, port, bounds, trusted_proxies, **uvicorn_options)
        return
    listening = _config(None, host, port, bounds, trusted_proxies).bind_socket()

    supervisor = os.getpid()

    def start_worker() -> int:
        pid = os.fork()
        if pid == 0:
            os.setpgid(0, 0)  # a terminal's Ctrl-C reaches the supervisor, which ends us once
            _end_with_parent()
            if os.getppid() != supervisor:  # it died before we asked
                os._exit(1)
            status = 1
            try:
                config = _config(make_app(), host, port, bounds, trusted_proxies, **uvicorn_options)
                uvicorn.Server(config).run(sockets=[listening])
                status = 0
            finally:
                os._exit(status)
        started[pid] = time.monotonic()
        return pid

    started: dict[int, float] = {}
    running = {start_worker() for _ in range(workers)}
    ending = False

    def end(signum=None, frame=None) -> None:
        nonlocal ending
        ending = True
        for pid in running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, end)
    failed = False
    while running:
        pid, status = os.wait()
        running.discard(pid)
        if ending:
            continue
        lived = time.monotonic() - started.pop(pid)
        logging.getLogger("uvicorn.error").warning(
            "worker %s ended (wait status %s) after %.0f s", pid, status, lived
        )
        if lived < SHORTEST_WORKER_LIFE:  # it cannot start: end the others rather than loop
            failed = True
            end()
        else:
            running.add(start_worker())
    listening.close()
    if failed:
        raise SystemExit(1)


def _end_with_parent() -> None:
    """Have the kernel send this process SIGTERM when its parent dies (Linux), so that a
    supervisor killed outright leaves no worker behind."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _config(
    app, host: str, port: int, bounds: Bounds, trusted_proxies: Sequence[str], **options: Any
) -> uvicorn.Config:
    bounds = _within_open_files(bounds)
    config = uvicorn.Config(
        LargestBody(app, bounds.largest_body),
        host=host,
        port=port,
        http=bounded_protocol(bounds),
        proxy_headers=bool(trusted_proxies),
        forwarded_allow_ips=list(trusted_proxies),
        **options,
    )
    # Streamlit, for one, attaches its handler to uvicorn's access log again once it has started
    logging.getLogger("uvicorn.access").disabled = not config.access_log
    return config


class LargestBody:
    """ASGI middleware: a request body longer than `largest` bytes, or of no declared length, is
    refused before it is read."""

    def __init__(self, app, largest: int):
        self.app, self.largest = app, largest

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            declared = headers.get(b"content-length", b"0")
            if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
                await _refuse(send, 411, "length_required", "a request body needs a Content-Length")
                return
            if not declared.isdigit() or int(declared) > self.largest:
                await _refuse(send, 413, "too_large", f"the body is over {self.largest:,} bytes")
                return
        await self.app(scope, receive, send)


async def _refuse(send, status: int, error: str, detail: str) -> None:
    """Answer `{"error", "detail"}` with `status`, and close the connection."""
    message = json.dumps({"error": error, "detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(message)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": message})


def _within_open_files(bounds: Bounds) -> Bounds:
    """`bounds` with as many connections as the process may open files for (its soft limit
    raised to the hard one when needed)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = bounds.connections + SPARE_FILES
    if soft != resource.RLIM_INFINITY and soft < wanted:
        soft = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    if soft == resource.RLIM_INFINITY:
        return bounds
    return Bounds(
        bounds.head_seconds,
        bounds.body_seconds,
        bounds.largest_body,
        max(1, min(bounds.connections, soft - SPARE_FILES)),
    )


_TOO_MANY = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 38\r\nconnection: close\r\n\r\nToo many connections: try again soon.\n"
)


def bounded_protocol(bounds: Bounds) -> type[H11Protocol]:
    """uvicorn's HTTP/1.1 protocol (its `http` option) with the deadlines and the cap of
    `bounds` (for an app that refuses large bodies itself)."""

    class Bounded(_BoundedH11):
        pass

    Bounded.bounds = bounds
    return Bounded


class _BoundedH11(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with a deadline for each request's head and body, and a cap
    on the connections open at once."""

    bounds: Bounds

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._waiting_for: str | None = None  # "head", "body" or nothing
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        if len(self.connections) > self.bounds.connections:
            transport.write(_TOO_MANY)
            transport.close()
            return
        self._follow()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow()

    def handle_websocket_upgrade(self, event) -> None:
        self._wait_for(None)  # a websocket's own pings watch it from here on
        super().handle_websocket_upgrade(event)

    def connection_lost(self, exc) -> None:
        self._wait_for(None)
        super().connection_lost(exc)

    def _follow(self) -> None:
        """Start the deadline of what the client owes now: a head, a body, or nothing."""
        if self.transport.is_closing() or self.transport.get_protocol() is not self:
            self._wait_for(None)
        elif self.conn.their_state is h11.IDLE:
            self._wait_for("head")
        elif self.conn.their_state is h11.SEND_BODY and not (
            self.cycle and self.cycle.response_complete
        ):
            self._wait_for("body")
        else:
            self._wait_for(None)

    def _wait_for(self, part: str | None) -> None:
        if part == self._waiting_for:
            return
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._waiting_for = part
        if part is not None:
            seconds = self.bounds.head_seconds if part == "head" else self.bounds.body_seconds
            self._deadline = self.loop.call_later(seconds, self._too_slow)

    def _too_slow(self) -> None:
        self._deadline, self._waiting_for = None, None
        if not self.transport.is_closing():
            self.transport.close()
