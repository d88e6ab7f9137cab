"""The processes a test started, read from /proc: what is below a process, and what still runs."""

import os
import subprocess
import time


def descendants(pid: int) -> dict[int, int]:
    """Every process below `pid`, with its parent."""
    parents = {}
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as stat:
                parents[int(entry)] = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    found, frontier = {}, [pid]
    while frontier:
        parent = frontier.pop()
        for child, its_parent in parents.items():
            if its_parent == parent and child not in found:
                found[child] = parent
                frontier.append(child)
    return found


def group_members(pgid: int) -> list[int]:
    """Every process of the process group `pgid`, those whose leader has ended included."""
    members = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and os.getpgid(int(entry)) == pgid:
                members.append(int(entry))
        except ProcessLookupError:
            continue
    return members


def running(pids) -> list[int]:
    """Those of `pids` that still run (a zombie has ended: its parent has yet to reap it)."""
    alive = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as status:
                if "zombie" not in status.read():
                    alive.append(pid)
        except OSError:
            continue
    return alive


def command_line(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def wait_until_gone(pids, seconds: float = 20.0) -> list[int]:
    """Wait until none of `pids` runs, for at most `seconds`; return those still running."""
    deadline = time.monotonic() + seconds
    while (alive := running(pids)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return alive


def stop(process: subprocess.Popen, seconds: float = 20.0) -> None:
    """SIGTERM, then SIGKILL if it has not ended within `seconds`; reaped either way."""
    process.terminate()
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
