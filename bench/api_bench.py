#!/usr/bin/env python
"""API benchmark: `odavl-pipeline api` as users run it, over loopback, against `odavl-pipeline
run` on the same events landed as files, measured in the same invocation.

One invocation sets up a fresh state folder (its own ODAVL_HOME, so its own embedded PostgreSQL
and its own Dagster instance) with `odavl-pipeline db upgrade`, a fleet of organizations (as
marts_bench.py makes it: 1–2 projects and a subscription each), one user who is an ADMIN of every
one of them and one API key of that user with every scope. Then:

  baseline  `--events` fresh usage events written as landing files (ndjson, CONTRACT.md
            section 2) and `odavl-pipeline run --log-level WARNING --json` as a subprocess,
            end to end: usage events accepted ÷ the command's seconds. Its marts build is the
            first one.
  server    `odavl-pipeline api --workers N` as a subprocess, with ODAVL_API_RATE_PER_SECOND
            raised to 1,000,000 (the default, 200 a second per key, would refuse most of the
            load: every client sends with the same key).
  batches   as many fresh events again, in batches of `--batch` (500) records, from `--clients`
            (8) keep-alive connections, each sending its next batch as soon as the last one
            is answered: events/s, and p50/p99 per request.
  singles   `--single-requests` requests of one record each, from the same clients: requests/s
            and p50/p99.
  quota     a marts build (`refresh_marts`, in this process: what the sensor would run), then
            `GET /v1/organizations/{org}/quota` for random organizations at a fixed offered
            rate (`--quota-rate`, 500/s) for `--quota-seconds`: open loop, each request's
            latency counted from the moment it was due, so a slow answer cannot hide the
            requests queued behind it. Meanwhile a background client (a child process) sends
            batches of usage at `--background-rate` events/s.

The clients are threads of this script (a child process for the background usage) speaking
HTTP/1.1 over keep-alive sockets; the bodies are made before the clock starts. It prints each
figure against its target, and the CPU seconds the server, PostgreSQL and the clients spent
meanwhile. It only prints; it asserts nothing.

    python bench/api_bench.py [--organizations N] [--events N] [--batch N] [--clients N]
                              [--single-requests N] [--quota-rate N] [--quota-seconds N]
                              [--quota-connections N] [--background-rate N] [--workers N]
                              [--seed N] [--home DIR] [--keep] [--json]

As in pipeline_bench.py, the commands get the caller's environment without its ODAVL_*,
DAGSTER_* and STRIPE_* variables, and ODAVL_HOME set to the state folder: ODAVL_DATABASE_URL is
not honoured.
"""

from __future__ import annotations

import argparse
import bisect
import json
import math
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import common
import orjson
import psycopg
from common import (
    STARTED,
    T0_VARIABLE,
    Environment,
    log,
    postmaster_pid,
    processes,
    server_facts,
)
from marts_bench import EVENT_TYPE_CUMULATIVE, create_fleet
from pipeline_bench import CLI, SERVER_SETTINGS, cli_environment, state_folder, timed_run

from odavl_pipeline import clock
from odavl_pipeline.api import keys
from odavl_pipeline.settings import MOST_API_RATE_PER_SECOND, Settings

HOST = "127.0.0.1"
EMAIL = "api-bench@example.com"
RATE_VARIABLE = "ODAVL_API_RATE_PER_SECOND"
RATE = MOST_API_RATE_PER_SECOND  # per key: high enough never to refuse the benchmark's load
FILE_LINES = 50_000  # landing files of the baseline
OCCURRED_SPREAD_SECONDS = 600  # events occurred up to ten minutes before they were made
TIMEOUT_SECONDS = 60.0  # per request
STARTUP_SECONDS = 60.0
STOP_SECONDS = 10.0
WARM_UP_REQUESTS = 4  # per connection, untimed, before each phase
DUE_AHEAD_SECONDS = 0.2  # an open loop's first request is due this long after its start

TARGET_BATCH_RATE = 20_000  # events/s, at least
TARGET_BATCH_VS_RUN = 0.7  # API events/s ÷ run events/s, at least
TARGET_BATCH_P99_MS = 150.0
TARGET_SINGLE_RATE = 1_000  # requests/s, at least
TARGET_SINGLE_P99_MS = 30.0
TARGET_QUOTA_P99_MS = 10.0


# --- events ---------------------------------------------------------------------------


def make_events(rng: random.Random, slugs: list[str], count: int) -> list[dict[str, Any]]:
    """`count` fresh usage events of random organizations, in the generator's shares of event
    types, each with a new UUID as its event_id, occurred in the last ten minutes."""
    now = clock.now()
    types = [name for name, _ in EVENT_TYPE_CUMULATIVE]
    edges = [edge for _, edge in EVENT_TYPE_CUMULATIVE][:-1]
    events = []
    for _ in range(count):
        slug = slugs[int(rng.random() * len(slugs))]
        roll = rng.random()
        event_type = types[bisect.bisect(edges, roll)]
        at = now - timedelta(seconds=rng.random() * OCCURRED_SPREAD_SECONDS)
        event: dict[str, Any] = {
            "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "org": slug,
            "event_type": event_type,
            "occurred_at": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }
        if event_type != "api_call" and rng.random() < 0.06:
            event["quantity"] = 2 + int(rng.random() * 9)
        if rng.random() < 0.9:
            event["user"] = f"user{int(rng.random() * 7)}@{slug}.example"
        if rng.random() < (0.4 if event_type == "api_call" else 0.85):
            event["project"] = "project-1"  # every organization of the fleet has it
        if event_type == "api_call":
            event["endpoint"] = "/api/v1/analyze"
            event["request_id"] = f"req_{rng.getrandbits(96):024x}"
            event["duration_ms"] = 12 + int(rng.random() ** 3 * 2400)
            event["status"] = 200
        else:
            event["duration_ms"] = 800 + int(rng.random() * 60_000)
        events.append(event)
    return events


def batch_bodies(events: list[dict[str, Any]], size: int) -> list[bytes]:
    """The events as JSON arrays of `size` records (the last one may be shorter)."""
    return [orjson.dumps(events[start : start + size]) for start in range(0, len(events), size)]


def deal(items: list, hands: int) -> list[list]:
    """`items` dealt round-robin into `hands` lists."""
    return [items[hand::hands] for hand in range(hands)]


# --- setup ----------------------------------------------------------------------------


def prepare(env: Environment, organizations: int, seed: int) -> tuple[list[str], str]:
    """The fleet, a user who is an ADMIN of every organization, and a key of that user with
    every scope; (the organizations' slugs, the key)."""
    started = time.perf_counter()
    fleet = create_fleet(env, organizations, seed, clock.now())
    with psycopg.connect(env.dsn, autocommit=True) as conn:
        [user_id] = conn.execute(
            "INSERT INTO users (email, name) VALUES (%s, 'API bench') RETURNING id", (EMAIL,)
        ).fetchone()
        conn.execute(
            "INSERT INTO organization_members (organization_id, user_id, role) "
            "SELECT id, %s, 'ADMIN' FROM organizations",
            (user_id,),
        )
        key, _ = keys.create(conn, EMAIL, "api bench", list(keys.SCOPES))
    slugs = [slug for _, _, slug, _, _ in fleet.orgs]
    log(
        f"{len(slugs):,} organizations, {EMAIL} an ADMIN of each, one key with every scope "
        f"({time.perf_counter() - started:.1f} s)"
    )
    return slugs, key


def land_files(env: Environment, events: list[dict[str, Any]]) -> dict[str, Any]:
    """The events as ndjson files of FILE_LINES lines in today's folder of the landing zone."""
    folder = env.home / "landing" / "usage_events" / clock.today().isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    files = 0
    size = 0
    for start in range(0, len(events), FILE_LINES):
        text = b"".join(orjson.dumps(event) + b"\n" for event in events[start : start + FILE_LINES])
        temporary = folder / f".api-bench-{files:03d}.ndjson.tmp"
        temporary.write_bytes(text)
        temporary.rename(folder / f"api-bench-{files:03d}.ndjson")
        files += 1
        size += len(text)
    return {"files": files, "lines": len(events), "mib": round(size / 2**20, 1)}


# --- the HTTP client --------------------------------------------------------------------


class Connection:
    """One keep-alive HTTP/1.1 connection, as a load tool keeps it: a request is written whole,
    the answer read by its Content-Length. Broken or closed by the server: reopened on the next
    request."""

    def __init__(self, port: int, key: str):
        self.port = port
        self.authorization = f"Authorization: Bearer {key}\r\n".encode()
        self.sock: socket.socket | None = None
        self.buffer = bytearray()
        self.opened = 0

    def request(
        self, method: str, path: str, body: bytes = b"", content_type: str = "application/json"
    ) -> tuple[int, bytes]:
        if self.sock is None:
            self.sock = socket.create_connection((HOST, self.port), timeout=TIMEOUT_SECONDS)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.buffer.clear()
            self.opened += 1
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\n".encode()
            + self.authorization
            + (
                f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                if method == "POST"
                else b"\r\n"
            )
        )
        try:
            self.sock.sendall(head + body if len(body) < 65_536 else head)
            if len(body) >= 65_536:
                self.sock.sendall(body)
            return self._answer()
        except BaseException:
            self.close()
            raise

    def _answer(self) -> tuple[int, bytes]:
        while (end := self.buffer.find(b"\r\n\r\n")) < 0:
            self._read()
        lines = bytes(self.buffer[:end]).split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        headers = dict(line.split(b":", 1) for line in lines[1:])
        headers = {name.strip().lower(): value.strip() for name, value in headers.items()}
        length = int(headers[b"content-length"])
        total = end + 4 + length
        while len(self.buffer) < total:
            self._read()
        data = bytes(self.buffer[end + 4 : total])
        del self.buffer[:total]
        if headers.get(b"connection", b"").lower() == b"close":
            self.close()
        return status, data

    def _read(self) -> None:
        chunk = self.sock.recv(1 << 18)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self.buffer += chunk

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


@dataclass
class Load:
    """What one load phase saw: each request's latency (seconds) and status, the records the
    answers counted, and the phase's span."""

    latencies: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    records: Counter = field(default_factory=Counter)  # accepted, duplicate, pending, rejected
    failures: Counter = field(default_factory=Counter)  # exceptions, by name
    lags: list[float] = field(default_factory=list)  # open loop: how late each request left
    started: float = math.inf
    ended: float = 0.0
    connections: int = 0

    def add(self, other: Load) -> None:
        self.latencies += other.latencies
        self.lags += other.lags
        self.statuses.update(other.statuses)
        self.records.update(other.records)
        self.failures.update(other.failures)
        self.started = min(self.started, other.started)
        self.ended = max(self.ended, other.ended)
        self.connections += other.connections

    @property
    def seconds(self) -> float:
        return max(self.ended - self.started, 1e-9)

    def summary(self) -> dict[str, Any]:
        ok = self.statuses.get(200, 0)
        figures = {
            "requests": len(self.latencies) + sum(self.failures.values()),
            "ok": ok,
            "seconds": round(self.seconds, 3),
            "requests_per_s": round(len(self.latencies) / self.seconds, 1),
            "statuses": {str(status): count for status, count in sorted(self.statuses.items())},
            "failures": dict(self.failures),
            "records": dict(self.records),
            "records_per_s": round(self.records.get("accepted", 0) / self.seconds, 1),
            "connections_opened": self.connections,
            **{f"{name}_ms": percentile(self.latencies, q) for name, q in QUANTILES},
        }
        if self.lags:
            figures["send_lag_p99_ms"] = percentile(self.lags, 0.99)
        return figures


QUANTILES = (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0))


def percentile(values: list[float], q: float) -> float | None:
    """The nearest-rank percentile of `values` (seconds), in milliseconds."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[max(0, math.ceil(q * len(ordered)) - 1)] * 1000, 2)


def send(
    connection: Connection,
    load: Load,
    path: str,
    body: bytes,
    content_type: str,
    due: float | None = None,
) -> None:
    """One request; its latency (from `due` when given, else from its send), status and the
    records its answer counted go into `load`."""
    started = time.perf_counter()
    try:
        status, data = connection.request("POST" if body else "GET", path, body, content_type)
    except (OSError, ValueError, KeyError, IndexError) as error:
        load.failures[type(error).__name__] += 1
        return
    load.latencies.append(time.perf_counter() - (started if due is None else due))
    if due is not None:
        load.lags.append(started - due)
    load.statuses[status] += 1
    if status == 200 and body:
        try:
            answer = orjson.loads(data)
            for outcome in ("accepted", "duplicate", "pending", "rejected"):
                load.records[outcome] += answer[outcome]
        except (ValueError, KeyError, TypeError):
            load.failures["unreadable answer"] += 1


def closed_loop(
    port: int, key: str, path: str, bodies: list[list[bytes]], content_type: str
) -> Load:
    """One thread per list of `bodies`, each on its own connection, sending its bodies one
    after the other (the next as soon as the last is answered), all released at once."""
    loads = [Load() for _ in bodies]
    barrier = threading.Barrier(len(bodies) + 1)

    def client(number: int) -> None:
        load, connection = loads[number], Connection(port, key)
        for _ in range(WARM_UP_REQUESTS):  # untimed: the connection and its server process
            warm_up(connection)
        barrier.wait()
        load.started = time.perf_counter()
        for body in bodies[number]:
            send(connection, load, path, body, content_type)
        load.ended = time.perf_counter()
        load.connections = connection.opened
        connection.close()

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(len(bodies))]
    for thread in threads:
        thread.start()
    barrier.wait()
    for thread in threads:
        thread.join()
    total = Load()
    for load in loads:
        total.add(load)
    return total


WARM_UP_PATH = "/healthz"


def warm_up(connection: Connection) -> None:
    try:
        connection.request("GET", WARM_UP_PATH)
    except OSError:
        pass


def open_loop(
    port: int,
    key: str,
    requests: list[tuple[str, bytes]],
    rate: float,
    connections: int,
    content_type: str = "application/json",
    not_before: float = 0.0,
    warm_path: str = WARM_UP_PATH,
) -> Load:
    """`requests` (path, body) at a fixed offered `rate`: request i is due at start + i/rate,
    whatever became of the others, and is sent by the first of `connections` threads that is
    free; its latency is counted from when it was due (a late send counts in it). Each
    connection first sends one untimed GET of `warm_path`; the first request is due once they
    all have, and not before `not_before` (a perf_counter time)."""
    loads = [Load() for _ in range(connections)]
    taken = iter(range(len(requests)))
    lock = threading.Lock()
    start = [0.0]

    def set_start() -> None:
        start[0] = max(not_before, time.perf_counter()) + DUE_AHEAD_SECONDS

    barrier = threading.Barrier(connections, action=set_start)

    def client(number: int) -> None:
        load, connection = loads[number], Connection(port, key)
        try:
            connection.request("GET", warm_path)
        except OSError:
            pass
        barrier.wait()
        while True:
            with lock:
                index = next(taken, None)
            if index is None:
                break
            due = start[0] + index / rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            path, body = requests[index]
            load.started = min(load.started, due)
            send(connection, load, path, body, content_type, due)
            load.ended = time.perf_counter()
        load.connections = connection.opened
        connection.close()

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = Load()
    for load in loads:
        total.add(load)
    return total


# --- the server -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


class ApiServer:
    """`odavl-pipeline api --port P --workers N` as a subprocess of its own session, with the
    rate raised; stopped (SIGTERM, then SIGKILL to it and the workers it forked) at the end."""

    def __init__(self, env: Environment, workers: int):
        self.env, self.workers = env, workers
        self.port = free_port()
        self.log_path = env.home / "api.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = [str(CLI), "api", "--host", HOST, "--port", str(self.port)]
        command += ["--workers", str(self.workers)]
        log(f"odavl-pipeline {' '.join(command[1:])} ({RATE_VARIABLE}={RATE})")
        with open(self.log_path, "wb") as output:
            self.process = subprocess.Popen(
                command,
                env={**cli_environment(self.env.home), RATE_VARIABLE: str(RATE)},
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + STARTUP_SECONDS
        probe = Connection(self.port, "")
        while True:
            if self.process.poll() is not None:
                raise SystemExit(f"`odavl-pipeline api` ended:\n{self.log_tail()}")
            try:
                if probe.request("GET", "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"`odavl-pipeline api` not ready in time:\n{self.log_tail()}")
            time.sleep(0.2)
        probe.close()
        log(f"the API answers on port {self.port} ({len(self.pids())} processes)")

    def pids(self) -> list[int]:
        """The supervisor and every process below it."""
        if self.process is None:
            return []
        return descendants(self.process.pid)

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        below = self.pids()
        self.process.terminate()  # the supervisor ends its workers and waits for them
        try:
            self.process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for pid in below:  # a worker still there (each is in a process group of its own)
            if pid != self.process.pid and _alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        log("the API server stopped")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def descendants(root: int) -> list[int]:
    """`root` and every process below it."""
    children: dict[int, list[int]] = {}
    for pid, (parent, _, _) in processes().items():
        children.setdefault(parent, []).append(pid)
    found, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        found.append(pid)
        frontier.extend(children.get(pid, []))
    return found


# --- where the CPU goes ------------------------------------------------------------------


class CpuMeter(common.CpuMeter):
    """CPU seconds spent while a phase runs: by PostgreSQL (its postmaster and every process
    below it), by the API server (its supervisor and workers), by this script with its other
    children (the load clients; for the baseline, the `run` command and its processes), and by
    the whole machine."""

    def __init__(self, env: Environment, server: ApiServer | None):
        super().__init__(
            {
                "postgres": postmaster_pid(env),
                "api": server.process.pid if server and server.process else None,
                "bench": os.getpid(),
            }
        )

    @property
    def figures(self) -> dict[str, float]:
        return {
            "wall_seconds": round(self.wall, 2),
            **{f"{name}_cpu": round(seconds, 1) for name, seconds in self.totals.items()},
            "machine_cpu": round(self.machine_busy, 1),
            "busy": round(self.machine_busy / ((os.cpu_count() or 1) * self.wall), 3),
        }


# --- phases -----------------------------------------------------------------------------


def baseline(env: Environment, slugs: list[str], events: int, seed: int) -> dict[str, Any]:
    """The events landed as files and ingested by `odavl-pipeline run`, end to end."""
    made = make_events(random.Random(f"{seed}-files"), slugs, events)
    files = land_files(env, made)
    del made
    log(f"baseline: {files['lines']:,} events in {files['files']} landing files")
    with CpuMeter(env, None) as meter:
        run = timed_run(env, "baseline-run")
    usage = run.counts.get("usage_events", {})
    accepted = usage.get("accepted", 0)
    return {
        **files,
        "run": run.as_dict(),
        "accepted": accepted,
        "events_per_s": round(accepted / run.seconds, 1),
        "cpu": meter.figures,
    }


def batches(
    env: Environment, server: ApiServer, key: str, slugs: list[str], args: argparse.Namespace
) -> dict[str, Any]:
    """`--events` fresh events in batches of `--batch` from `--clients` closed-loop clients."""
    bodies = batch_bodies(
        make_events(random.Random(f"{args.seed}-batches"), slugs, args.events), args.batch
    )
    log(f"batches: {len(bodies):,} requests of {args.batch} events, {args.clients} clients")
    with CpuMeter(env, server) as meter:
        load = closed_loop(
            server.port, key, "/v1/usage-events", deal(bodies, args.clients), "application/json"
        )
    figures = load.summary()
    log(
        f"batches: {figures['records'].get('accepted', 0):,} events accepted in "
        f"{figures['seconds']:.2f} s, {figures['records_per_s']:,.0f} events/s, "
        f"p99 {figures['p99_ms']} ms"
    )
    return {"batch": args.batch, "clients": args.clients, **figures, "cpu": meter.figures}


def singles(
    env: Environment, server: ApiServer, key: str, slugs: list[str], args: argparse.Namespace
) -> dict[str, Any]:
    """`--single-requests` requests of one record each from `--clients` closed-loop clients."""
    events = make_events(random.Random(f"{args.seed}-singles"), slugs, args.single_requests)
    bodies = [orjson.dumps(event) for event in events]
    log(f"single records: {len(bodies):,} requests, {args.clients} clients")
    with CpuMeter(env, server) as meter:
        load = closed_loop(
            server.port, key, "/v1/usage-events", deal(bodies, args.clients), "application/json"
        )
    figures = load.summary()
    log(f"single records: {figures['requests_per_s']:,.0f} requests/s, p99 {figures['p99_ms']} ms")
    return {"clients": args.clients, **figures, "cpu": meter.figures}


def build_marts(env: Environment) -> dict[str, Any]:
    """An incremental marts build over what the API took in, as the sensor would run it."""
    from odavl_pipeline.marts.build import refresh_marts

    settings = Settings.from_env({"ODAVL_HOME": str(env.home)})
    started = time.perf_counter()
    report = refresh_marts(settings, grace=settings.billing_grace)
    seconds = time.perf_counter() - started
    log(f"marts build: {report.usage_events_read:,} usage events read in {seconds:.1f} s")
    return {"seconds": round(seconds, 2), "usage_events_read": report.usage_events_read}


def quota(
    env: Environment, server: ApiServer, key: str, slugs: list[str], args: argparse.Namespace
) -> dict[str, Any]:
    """Quota reads at a fixed offered rate while a background client sends usage."""
    marts = build_marts(env)
    rng = random.Random(f"{args.seed}-quota")
    count = round(args.quota_rate * args.quota_seconds)
    requests = [(f"/v1/organizations/{rng.choice(slugs)}/quota", b"") for _ in range(count)]
    background = Background(env, server.port, key, slugs, args)
    try:
        background.start()
        log(
            f"quota: {count:,} reads at {args.quota_rate:,}/s over "
            f"{args.quota_connections} connections, usage at {args.background_rate:,} events/s"
        )
        with CpuMeter(env, server) as meter:
            load = open_loop(
                server.port,
                key,
                requests,
                args.quota_rate,
                args.quota_connections,
                not_before=background.start_at + 1.0,
                # each connection reads a quota first, untimed: every API process has then
                # read the new marts (once per build)
                warm_path=f"/v1/organizations/{slugs[0]}/quota",
            )
        usage = background.result()
    finally:
        background.stop()
    figures = load.summary()
    log(
        f"quota: {figures['requests_per_s']:,.0f} reads/s, p50 {figures['p50_ms']} ms, "
        f"p99 {figures['p99_ms']} ms; usage meanwhile: "
        f"{usage['records'].get('accepted', 0):,} events accepted"
    )
    return {
        "offered_rate": args.quota_rate,
        "connections": args.quota_connections,
        "marts": marts,
        **figures,
        "cpu": meter.figures,
        "background": usage,
    }


class Background:
    """The usage that keeps arriving while quota is read: a child process sending batches of
    `--batch` events at `--background-rate` events/s (open loop, over two connections), from
    about a second before the reads start for `--quota-seconds` + 5 seconds."""

    def __init__(
        self, env: Environment, port: int, key: str, slugs: list[str], args: argparse.Namespace
    ):
        self.result_path = env.home / "background.json"
        self.spec = {
            "port": port,
            "key": key,
            "slugs": slugs,
            "rate": args.background_rate,
            "batch": args.batch,
            "seconds": args.quota_seconds + 5.0,
            "seed": f"{args.seed}-background",
            "result": str(self.result_path),
        }
        self.process: subprocess.Popen | None = None
        self.start_at = time.perf_counter()

    def start(self) -> None:
        self.result_path.unlink(missing_ok=True)
        if self.spec["rate"] <= 0:
            self.start_at = time.perf_counter()
            return
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--child-background", "-"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, T0_VARIABLE: repr(STARTED)},
            start_new_session=True,
        )
        self.process.stdin.write(json.dumps(self.spec).encode())
        self.process.stdin.close()
        ready = self.process.stdout.readline()  # its bodies are made: it starts sending now
        if not ready:
            raise SystemExit("the background client ended before it was ready")
        self.start_at = time.perf_counter()

    def result(self) -> dict[str, Any]:
        if self.process is None:
            return {"records": {}, "requests": 0}
        code = self.process.wait(timeout=self.spec["seconds"] + 120)
        if code != 0:
            raise SystemExit(f"the background client failed with exit code {code}")
        return json.loads(self.result_path.read_text())

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def child_background(spec_json: str) -> None:
    """The background client's side: make the bodies, say it is ready, send them paced."""
    spec = json.loads(sys.stdin.read() if spec_json == "-" else spec_json)
    per_second = spec["rate"] / spec["batch"]
    count = max(1, round(per_second * spec["seconds"]))
    events = make_events(random.Random(spec["seed"]), spec["slugs"], count * spec["batch"])
    requests = [("/v1/usage-events", body) for body in batch_bodies(events, spec["batch"])]
    print("ready", flush=True)
    load = open_loop(spec["port"], spec["key"], requests, per_second, 2)
    summary = load.summary()
    summary["offered_events_per_s"] = spec["rate"]
    Path(spec["result"]).write_text(json.dumps(summary))


# --- what the database holds afterwards -------------------------------------------------


def stored(env: Environment) -> dict[str, int]:
    """Usage rows, by files and by the API, and the API requests kept: each accepted record
    must be one row."""
    with psycopg.connect(env.dsn) as conn:
        total, from_api = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE f.path LIKE 'api/%') FROM usage_events AS u "
            "JOIN ingested_files AS f ON f.id = u.file_id"
        ).fetchone()
        requests = conn.execute("SELECT count(*) FROM api_requests").fetchone()[0]
    return {"usage_events": total, "from_api": from_api, "api_requests": requests}


# --- report -----------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def check(value: float | None, target: float, at_least: bool) -> dict[str, Any]:
    ok = value is not None and (value >= target if at_least else value < target)
    return {
        "value": value,
        "target": f"{'>=' if at_least else '<'} {target:,g}",
        "verdict": verdict(ok),
    }


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    b, s, q = result["batches"], result["singles"], result["quota"]
    run_rate = result["baseline"]["events_per_s"]
    ratio = round(b["records_per_s"] / run_rate, 3) if run_rate else None
    return {
        "batch_events_per_s": check(b["records_per_s"], TARGET_BATCH_RATE, True),
        "batch_vs_run": check(ratio, TARGET_BATCH_VS_RUN, True),
        "batch_p99_ms": check(b["p99_ms"], TARGET_BATCH_P99_MS, False),
        "single_requests_per_s": check(s["requests_per_s"], TARGET_SINGLE_RATE, True),
        "single_p99_ms": check(s["p99_ms"], TARGET_SINGLE_P99_MS, False),
        "quota_p99_ms": check(q["p99_ms"], TARGET_QUOTA_P99_MS, False),
    }


CHECK_LABELS = {
    "batch_events_per_s": "batches, events/s",
    "batch_vs_run": "batches / run, events/s",
    "batch_p99_ms": "batches, p99 ms",
    "single_requests_per_s": "single records, requests/s",
    "single_p99_ms": "single records, p99 ms",
    "quota_p99_ms": "quota reads, p99 ms",
}


def _ms(value: float | None) -> str:
    return f"{'-':>8}" if value is None else f"{value:8.1f}"


def _refused(load: dict[str, Any]) -> str:
    bad = sum(count for status, count in load["statuses"].items() if status != "200")
    bad += sum(load["failures"].values())
    return f"{bad:>7,}"


def _other(cpu: dict[str, float]) -> float:
    """The machine's CPU seconds that none of the measured processes spent."""
    return cpu["machine_cpu"] - cpu["postgres_cpu"] - cpu["api_cpu"] - cpu["bench_cpu"]


def print_report(result: dict[str, Any]) -> None:
    server, base, b, s, q = (
        result[name] for name in ("server", "baseline", "batches", "singles", "quota")
    )
    usage = q["background"]
    print(
        f"\nAPI benchmark: `odavl-pipeline api --workers {result['workers']}` as a subprocess, "
        f"over loopback ({result['cores']} cores; {RATE_VARIABLE}={RATE:,}; load average "
        f"{result['load_average_start']} at the start, {result['load_average_end']} at the end)"
    )
    print(
        f"PostgreSQL {server['server_version']} (embedded): "
        f"shared_buffers={server['shared_buffers']} fsync={server['fsync']} "
        f"synchronous_commit={server['synchronous_commit']} max_wal_size={server['max_wal_size']}"
    )
    print(
        f"{result['organizations']:,} organizations; one key, of a user who is an ADMIN of each\n"
    )
    print(
        f"  {'':40}{'requests':>9}{'records':>10}{'seconds':>9}{'records/s':>11}{'req/s':>9}"
        f"{'p50 ms':>8}{'p99 ms':>8}{'refused':>8}"
    )
    print(
        f"  {'odavl-pipeline run, ' + str(base['files']) + ' landing files':40}{'':>9}"
        f"{base['accepted']:>10,}{base['run']['seconds']:>9.2f}{base['events_per_s']:>11,.0f}"
    )
    for label, load in (
        (f"batches of {b['batch']}, {b['clients']} clients", b),
        (f"single records, {s['clients']} clients", s),
    ):
        print(
            f"  {label:40}{load['requests']:>9,}{load['records'].get('accepted', 0):>10,}"
            f"{load['seconds']:>9.2f}{load['records_per_s']:>11,.0f}"
            f"{load['requests_per_s']:>9,.0f}{_ms(load['p50_ms'])}{_ms(load['p99_ms'])}"
            f"{_refused(load)}"
        )
    print(
        f"  {'quota reads, ' + format(q['offered_rate'], ',') + '/s offered':40}"
        f"{q['requests']:>9,}{'':>10}{q['seconds']:>9.2f}{'':>11}{q['requests_per_s']:>9,.0f}"
        f"{_ms(q['p50_ms'])}{_ms(q['p99_ms'])}{_refused(q)}"
    )
    if usage.get("requests"):
        print(
            f"  {'  usage meanwhile, batches':40}{usage['requests']:>9,}"
            f"{usage['records'].get('accepted', 0):>10,}{usage['seconds']:>9.2f}"
            f"{usage['records_per_s']:>11,.0f}{usage['requests_per_s']:>9,.0f}"
            f"{_ms(usage['p50_ms'])}{_ms(usage['p99_ms'])}{_refused(usage)}"
        )
    print(
        f"\n  quota reads: {q['connections']} connections, latency from when each was due; "
        f"the latest send {q.get('send_lag_p99_ms')} ms late at p99; p90 {q['p90_ms']} ms, "
        f"max {q['max_ms']} ms; marts built before in {q['marts']['seconds']} s"
    )
    print(
        f"  batches: p90 {b['p90_ms']} ms, max {b['max_ms']} ms; single records: "
        f"p90 {s['p90_ms']} ms, max {s['max_ms']} ms"
    )
    for name, load in (("batches", b), ("single records", s), ("quota reads", q)):
        extra = {
            status: count for status, count in load["statuses"].items() if status != "200"
        } | load["failures"]
        if extra:
            print(f"  {name}: refused or failed: {extra}")
    st = result["stored"]
    answered = sum(load["records"].get("accepted", 0) for load in (b, s, usage))
    print(
        f"  usage_events afterwards: {st['usage_events']:,} rows, {st['from_api']:,} of them "
        f"from {st['api_requests']:,} API requests; the answers accepted {answered:,}: "
        + ("each one row" if answered == st["from_api"] else "NOT one row each")
    )
    print(
        f"\n  {'CPU seconds while timed':40}{'wall':>7}{'Postgres':>10}{'API':>8}"
        f"{'clients':>9}{'other':>8}{'machine':>9}{'busy':>7}"
    )
    for label, cpu in (
        ("odavl-pipeline run (clients: the command)", base["cpu"]),
        ("batches", b["cpu"]),
        ("single records", s["cpu"]),
        ("quota reads, with the usage", q["cpu"]),
    ):
        print(
            f"  {label:40}{cpu['wall_seconds']:>7.1f}{cpu['postgres_cpu']:>10.1f}"
            f"{cpu['api_cpu']:>8.1f}{cpu['bench_cpu']:>9.1f}{_other(cpu):>8.1f}"
            f"{cpu['machine_cpu']:>9.1f}{cpu['busy']:>7.0%}"
        )
    print()
    for name, figure in result["checks"].items():
        value = figure["value"]
        text = "-" if value is None else f"{value:,}"
        print(
            f"  {CHECK_LABELS[name]:30}{text:>10}   target {figure['target']:<10} "
            f"{figure['verdict']}"
        )
    print(f"\n  whole invocation: {result['seconds']:.0f} s")


# --- main -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--organizations", type=int, default=1_000, help="organizations (default 1,000)")
    add(
        "--events",
        type=int,
        default=500_000,
        help="usage events sent in batches, and landed as files for the run (default 500,000)",
    )
    add("--batch", type=int, default=500, help="records per batch (default 500)")
    add("--clients", type=int, default=8, help="concurrent clients (default 8)")
    add(
        "--single-requests",
        type=int,
        default=10_000,
        help="requests of one record (default 10,000)",
    )
    add("--quota-rate", type=float, default=500, help="quota reads offered per second (500)")
    add("--quota-seconds", type=float, default=30, help="seconds of quota reads (default 30)")
    add(
        "--quota-connections",
        type=int,
        default=16,
        help="connections the quota reads share (default 16)",
    )
    add(
        "--background-rate",
        type=int,
        default=2_000,
        help="usage events per second sent meanwhile, in batches (default 2,000; 0: none)",
    )
    add("--workers", type=int, default=2, help="API processes, `api --workers` (default 2)")
    add("--seed", type=int, default=7)
    add("--home", help="the state folder (default: a fresh temporary folder, removed at the end)")
    add("--keep", action="store_true", help="leave the database server and files in place")
    add("--json", action="store_true", help="one JSON object on standard output")
    add("--child-background", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name in ("organizations", "events", "batch", "clients", "single_requests"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.batch > 1_000:
        parser.error("--batch is at most 1,000 (the API's limit)")
    if args.quota_rate <= 0 or args.quota_seconds <= 0 or args.quota_connections < 1:
        parser.error("--quota-rate, --quota-seconds and --quota-connections must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child_background:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        child_background(args.child_background)
        return 0
    if not CLI.exists():
        raise SystemExit(f"no {CLI}: run this script with the virtualenv's Python")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up as on Ctrl-C
    remove = args.home is None
    home = Path(args.home).resolve() if args.home else Path(tempfile.mkdtemp(prefix="odavl-api-"))
    result: dict[str, Any] = {
        "cores": os.cpu_count(),
        "workers": args.workers,
        "rate_per_key": RATE,
        "load_average_start": round(os.getloadavg()[0], 2),
    }
    try:
        with state_folder(home, remove, args.keep) as env:
            result["server"] = server_facts(env, SERVER_SETTINGS)
            slugs, key = prepare(env, args.organizations, args.seed)
            result["organizations"] = len(slugs)
            result["baseline"] = baseline(env, slugs, args.events, args.seed)
            server = ApiServer(env, args.workers)
            try:
                server.start()
                result["batches"] = batches(env, server, key, slugs, args)
                result["singles"] = singles(env, server, key, slugs, args)
                result["quota"] = quota(env, server, key, slugs, args)
            finally:
                server.stop()
            result["stored"] = stored(env)
    finally:
        if remove and not args.keep:
            shutil.rmtree(home, ignore_errors=True)
    result["checks"] = summarize(result)
    result["load_average_end"] = round(os.getloadavg()[0], 2)
    result["seconds"] = round(time.time() - STARTED, 1)
    if args.json:
        print(json.dumps(result))
    else:
        print_report(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
