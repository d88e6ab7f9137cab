"""dagster-celery workers as an operator starts them (deploy/celery/celery.yaml), each in a
process group of its own so that stopping one stops the Celery process below its launcher."""

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .processes import command_line, group_members, wait_until_gone

ROOT = Path(__file__).resolve().parents[1]
CELERY_YAML = ROOT / "deploy" / "celery" / "celery.yaml"
READY_SECONDS = 90  # two workers loading Dagster at once on two cores


@dataclass
class Worker:
    name: str
    queues: tuple[str, ...]
    process: subprocess.Popen
    log: Path

    @property
    def node(self) -> str:
        """The Celery node name (`-n name`, completed by dagster-celery with `@<host>`)."""
        return f"{self.name}@{os.uname().nodename}"

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def pids(self) -> set[int]:
        """The launcher and the Celery worker below it (one process: the `solo` pool)."""
        return set(group_members(self.process.pid))


class CeleryWorkers:
    """Starts `dagster-celery worker start` processes in `env`, waits until each is ready."""

    def __init__(self, env: dict[str, str], folder: Path):
        self.env = env
        self.folder = folder
        self.workers: list[Worker] = []
        self.ended: list[Worker] = []  # replaced, their processes reaped at `close`

    def start(self, name: str, *queues: str) -> Worker:
        bin_dir = Path(sys.executable).parent  # dagster-celery starts `celery` from the PATH
        env = {**self.env, "PATH": f"{bin_dir}{os.pathsep}{self.env.get('PATH', '')}"}
        log = self.folder / f"worker-{name}-{len(self.workers)}.log"  # a restart: a new log
        command = [
            str(bin_dir / "dagster-celery"),
            "worker",
            "start",
            "-A",
            "dagster_celery.app",
            "-y",
            str(CELERY_YAML),
            "-n",
            name,
            "--loglevel",
            "INFO",
        ]
        # one -q, comma-separated: dagster-celery passes each -q on as a -Q, of which Celery
        # keeps the last
        command += ["-q", ",".join(queues)]
        with log.open("wb") as out:
            process = subprocess.Popen(
                command,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: stopped with the Celery process below
            )
        worker = Worker(name, queues, process, log)
        self.workers.append(worker)
        return worker

    def replace(self, dead: Worker) -> Worker:
        """Start a worker in the place of `dead` (ended), as an operator restarts it."""
        self.workers.remove(dead)
        self.ended.append(dead)
        return self.start(dead.name, *dead.queues)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_SECONDS
        for worker in self.workers:
            while f"{worker.node} ready." not in worker.log_text():
                if worker.process.poll() is not None:
                    raise AssertionError(
                        f"celery worker {worker.name} ended ({worker.process.returncode}):\n"
                        f"{worker.log_text()[-3000:]}"
                    )
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"celery worker {worker.name} not ready in {READY_SECONDS} s:\n"
                        f"{worker.log_text()[-3000:]}"
                    )
                time.sleep(0.2)

    def close(self) -> list[str]:
        """Stop every worker (a warm shutdown, then SIGKILL); return those still running."""
        groups = {worker.process.pid: group_members(worker.process.pid) for worker in self.workers}
        for pgid in groups:
            try:
                os.killpg(pgid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        members = [pid for pids in groups.values() for pid in pids]
        if wait_until_gone(members, seconds=30):
            for pgid in groups:
                try:
                    os.killpg(pgid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for worker in self.workers + self.ended:
            try:
                worker.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        return [f"{pid}: {command_line(pid)}" for pid in wait_until_gone(members, seconds=10)]
