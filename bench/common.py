"""What the benchmarks share: progress lines, and their own server, database and state folder."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL, make_url

from odavl_pipeline.db import migrate
from odavl_pipeline.db.server import libpq_url, server_url, stop_embedded_server
from odavl_pipeline.ingest.progress import Throttled
from odavl_pipeline.settings import Settings

T0_VARIABLE = "ODAVL_BENCH_T0"  # the parent's start, so a child's lines share its clock
STARTED = float(os.environ.get(T0_VARIABLE) or time.time())


def log(message: str) -> None:
    """A progress line on stderr, stamped with the seconds since the start."""
    print(f"[bench {time.time() - STARTED:7.1f}s] {message}", file=sys.stderr, flush=True)


def throttled(interval: float = 5.0) -> Throttled:
    """A progress callback that logs at most once every `interval` seconds."""
    return Throttled(log, interval)


@dataclass
class Environment:
    """Where a benchmark runs: its state folder, database and what to clean up."""

    home: Path
    url: URL
    settings: Settings | None  # set when this run started the embedded server
    remove_home: bool

    @property
    def dsn(self) -> str:
        return libpq_url(self.url)

    @property
    def database(self) -> str:
        return self.url.database


def set_up(home_arg: str | None, database: str) -> Environment:
    """State folder, server (embedded unless ODAVL_DATABASE_URL) and a fresh, migrated database."""
    remove_home = home_arg is None
    home = Path(home_arg).resolve() if home_arg else Path(tempfile.mkdtemp(prefix="odavl-bench-"))
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o755)  # as root, the embedded server runs as its own user
    configured = os.environ.get("ODAVL_DATABASE_URL")
    started = None
    if configured:
        base = make_url(configured)
        log(f"using the server of ODAVL_DATABASE_URL, database {database}")
    else:
        settings = Settings.from_env({"ODAVL_HOME": str(home)})
        already_running = (settings.embedded_pgdata / "postmaster.pid").exists()
        log(f"starting the embedded PostgreSQL in {settings.embedded_pgdata}")
        base = server_url(settings)
        started = None if already_running else settings
    url = base.set(database=database)
    with psycopg.connect(libpq_url(url.set(database="postgres")), autocommit=True) as admin:
        name = sql.Identifier(database)
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(name))
    log("migrating")
    migrate.upgrade(url)
    return Environment(home, url, started, remove_home)


def tear_down(env: Environment, keep: bool) -> None:
    """Stop the embedded server this run started and remove its temporary folder."""
    if keep:
        log(f"kept: {env.home} (database {env.database} at {env.url.render_as_string()})")
        return
    if env.settings is not None:
        stop_embedded_server(env.settings)
    elif os.environ.get("ODAVL_DATABASE_URL"):
        with psycopg.connect(libpq_url(env.url.set(database="postgres")), autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(env.database)
                )
            )
    if env.remove_home:
        shutil.rmtree(env.home, ignore_errors=True)


def server_facts(env: Environment, names: tuple[str, ...]) -> dict[str, str]:
    """The values of the given server settings."""
    with psycopg.connect(env.dsn) as conn:
        return {
            name: conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(name))).fetchone()[0]
            for name in names
        }


@dataclass(frozen=True)
class ChildRun:
    """What a measurement run in a child process wrote, and what it cost."""

    result: dict
    process_seconds: float
    peak_rss_mib: float


def run_child(script: str, flag: str, spec: dict, result_path: Path) -> ChildRun:
    """Run `script flag <spec as JSON>` in a child process; it writes its result to
    `result_path`. Returns that result, the wall clock and the child's own peak RSS."""
    result_path.unlink(missing_ok=True)
    command = [sys.executable, str(Path(script).resolve()), flag, json.dumps(spec)]
    started = time.perf_counter()
    child = subprocess.Popen(command, env={**os.environ, T0_VARIABLE: repr(STARTED)})
    _, status, usage = os.wait4(child.pid, 0)  # the rusage of this child alone
    process_seconds = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"the child process ({flag}) failed with exit code {code}")
    return ChildRun(
        json.loads(result_path.read_text()), process_seconds, round(usage.ru_maxrss / 1024, 1)
    )  # Linux: KiB


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def processes() -> dict[int, tuple[int, int, float]]:
    """Every process: pid -> (parent, start time, CPU seconds so far, user + system)."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as stat:
                    fields = stat.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
            found[int(entry)] = (int(fields[1]), int(fields[19]), cpu)
    return found


def machine_cpu() -> tuple[float, float]:
    """CPU seconds of the whole machine since boot, every core: busy, and idle waiting for I/O."""
    with open("/proc/stat") as stat:
        user, nice, system, _, iowait, irq, softirq, steal = map(int, stat.readline().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS, iowait / CLOCK_TICKS


SAMPLE_SECONDS = 0.5


class CpuMeter:
    """CPU seconds spent while a measurement runs, by the process trees below `roots` (name ->
    pid; a pid in `uncounted` is walked through but not counted) and by the whole machine (from
    /proc/stat: other work on it included). Processes are sampled from /proc every half second,
    so a process's last half second before it exits is missed. After the block: `wall`,
    `totals` (name -> CPU seconds), `machine_busy` and `machine_iowait`."""

    def __init__(self, roots: dict[str, int | None], uncounted: frozenset[int] = frozenset()):
        self.roots, self.uncounted = roots, uncounted
        self.first: dict[tuple[int, int], float] = {}  # (pid, start) -> CPU at first sight
        self.last: dict[tuple[int, int], tuple[str, float]] = {}  # -> (whose, CPU at last sight)

    def __enter__(self):
        self.started, (self._busy, self._iowait) = time.perf_counter(), machine_cpu()
        self._sample(initial=True)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample_until_stopped, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        busy, iowait = machine_cpu()
        self.wall = time.perf_counter() - self.started
        self.machine_busy, self.machine_iowait = busy - self._busy, iowait - self._iowait
        self.totals = dict.fromkeys(self.roots, 0.0)
        for key, (whose, cpu) in self.last.items():
            self.totals[whose] += cpu - self.first[key]

    def _sample_until_stopped(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self._sample()

    def _sample(self, initial: bool = False) -> None:
        running = processes()
        below: dict[int, list[int]] = {}
        for pid, (parent, _, _) in running.items():
            below.setdefault(parent, []).append(pid)
        whose: dict[int, str] = {}
        for name, root in self.roots.items():
            frontier = [root] if root else []
            while frontier:
                pid = frontier.pop()
                if pid not in whose:
                    whose[pid] = name
                    frontier.extend(below.get(pid, []))
        for pid, name in whose.items():
            if pid in running and pid not in self.uncounted:
                _, start, cpu = running[pid]
                self.first.setdefault((pid, start), cpu if initial else 0.0)
                self.last[(pid, start)] = (name, cpu)


def postmaster_pid(env: Environment) -> int:
    """The embedded PostgreSQL server's main process, below which all its processes run."""
    return int((env.home / "postgres" / "postmaster.pid").read_text().split()[0])
