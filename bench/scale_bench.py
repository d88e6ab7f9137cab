#!/usr/bin/env python
"""Scale benchmark: one month of landing files for 200 organizations, ingested four ways.

The landing files are generated once (`odavl-pipeline generate --organizations 198 --days 30`,
ending yesterday: 198 generated organizations plus the two demo ones, every source), and each
scenario gets a fresh state folder of its own (its own ODAVL_HOME, so its own embedded
PostgreSQL, database and Dagster instance) holding the same files (hard links), seeded with the
CLI (`db upgrade`, `seed`):

  (a) one process   `ingest_days` for each of the four sources, one after the other, in one
                    Python process (a child of this script): the inner path, no Dagster;
  (b) multiprocess  `odavl-pipeline run` with the default executor: the four ingest steps at
                    once on this machine, then the marts;
  (c) celery        `odavl-pipeline run` with ODAVL_EXECUTOR=celery: Debian's redis-server on
                    loopback and two dagster-celery workers with deploy/celery/ (`ingest` on the
                    default queue, `marts` on it and the marts' queue), started as
                    tests/test_celery.py starts them and ready before the clock starts;
  (d) halves        the landed days split in two halves, ingested at once by two processes
                    (each runs `ingest_days` for every source, one after the other, over its
                    half): the files of one source written by two processes at once;
  copy              the baseline: a raw `COPY … FROM STDIN` of the usage rows the first
                    scenario stored, into a table like `usage_events` (as pipeline_bench.py's
                    (a) measures it), in that scenario's database once it is done.

(a) and (d) are timed inside their processes, from the first `ingest_days` call to the end of
the last; (b) and (c) from the command's launch to its exit (start-up, Dagster, the four sources,
the marts). It prints each scenario's accepted rows (the four sources), seconds, rows/s and their
ratio to the COPY's rows/s, when ingestion ended and what the marts took; the CPU seconds spent
meanwhile by PostgreSQL, by the pipeline's processes and by the whole machine (sampled from
/proc); and whether every scenario ended with the same per-source totals in its ledger and the
same rows in its tables. It only prints; it asserts nothing.

    python bench/scale_bench.py [--organizations N] [--days N] [--usage-per-day N]
                                [--errors-per-day N] [--attestations-per-day N]
                                [--audits-per-day N] [--seed N] [--only a,b,c,d]
                                [--home DIR] [--keep] [--json]

As in pipeline_bench.py, the commands and processes get the caller's environment without its
ODAVL_*, DAGSTER_* and STRIPE_* variables, and ODAVL_HOME set to the scenario's folder:
ODAVL_DATABASE_URL is not honoured.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import common
import pipeline_bench
import psycopg
from common import (
    STARTED,
    T0_VARIABLE,
    Environment,
    log,
    postmaster_pid,
    server_facts,
)
from ingest_bench import checkpoint, run_copy
from pipeline_bench import (
    CLI,
    SERVER_SETTINGS,
    RunFigure,
    cli_environment,
    odavl,
    print_steps,
    state_folder,
    stored_usage_rows,
    timed_run,
)

from odavl_pipeline import clock
from odavl_pipeline.db.server import DAGSTER_DB, libpq_url
from odavl_pipeline.defs.execution import (
    BROKER_VARIABLE,
    CELERY,
    DEFAULT_QUEUE,
    EXECUTOR_VARIABLE,
    MARTS_QUEUE,
)
from odavl_pipeline.ingest.landing import SOURCES, landed_days
from odavl_pipeline.ingest.progress import Throttled
from odavl_pipeline.ingest.sources import SPECS
from odavl_pipeline.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = {
    "a": "a-one-process",
    "b": "b-multiprocess",
    "c": "c-celery",
    "d": "d-halves",
}
LABELS = {
    "a": "(a) one process, sources in turn",
    "b": "(b) run, multiprocess executor",
    "c": "(c) run, Celery, two workers",
    "d": "(d) two processes, half the days each",
    "copy": "raw COPY, usage_events only",
}
COUNT_COLUMNS = ("files", "lines", "accepted", "duplicate", "pending", "rejected")
LEDGER_SQL = (
    "SELECT source::text, count(*), sum(lines), sum(accepted), sum(duplicate), sum(pending), "
    "sum(rejected) FROM ingested_files GROUP BY source ORDER BY source"
)
# what each source stored, as one digest: its rows' payloads (the accepted version of each line)
CONTENT_SQL = "SELECT md5(string_agg(h, '' ORDER BY h)) FROM (SELECT md5(payload::text) h FROM {})"
PROGRESS_SECONDS = 10.0
STOP_SECONDS = 10.0  # a child's grace period after SIGTERM, before SIGKILL


# --- the landing files, once ------------------------------------------------------------


def generate(base: Path, args: argparse.Namespace, end_day: date) -> dict[str, Any]:
    """`odavl-pipeline generate` into base/landing and base/reference.json (untimed setup)."""
    landing, reference = base / "landing", base / "reference.json"
    shutil.rmtree(landing, ignore_errors=True)
    command = [
        str(CLI),
        "generate",
        "--out",
        str(landing),
        "--reference-out",
        str(reference),
        "--seed",
        str(args.seed),
        "--organizations",
        str(args.organizations),
        "--days",
        str(args.days),
        "--end",
        end_day.isoformat(),
        *pipeline_bench.Volume(
            args.usage_per_day, args.errors_per_day, args.attestations_per_day, args.audits_per_day
        ).args(),
        "--quiet",
    ]
    log(f"generating: odavl-pipeline {' '.join(command[1:])}")
    started = time.perf_counter()
    done = subprocess.run(command, env=cli_environment(base), capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"`odavl-pipeline generate` failed:\n{done.stderr[-4000:]}")
    summary = done.stdout.strip().splitlines()[0]
    log(f"{summary} ({seconds:.1f} s)")
    return {"summary": summary, "seconds": round(seconds, 1), "end_day": end_day.isoformat()}


@contextmanager
def scenario_folder(
    base: Path, key: str, remove: bool, keep: bool
) -> Iterator[tuple[Environment, list[date]]]:
    """Scenario `key`'s fresh state folder (pipeline_bench's `state_folder`: embedded PostgreSQL,
    `db upgrade`), with hard links to the generated files and seeded (`seed` adds the demo's
    files); yields it with its landed days."""
    with state_folder(base / SCENARIOS[key], remove, keep, f"({key}) ") as env:
        shutil.copytree(base / "landing", env.home / "landing", copy_function=os.link)
        odavl(env, "seed", "--reference", str(base / "reference.json"))
        yield env, landed_days(env.home / "landing")


def stored_content(env: Environment) -> dict[str, str]:
    """A digest of what each source's table holds (the payloads of its rows), to compare
    scenarios: the same counts can hide different versions of conflicting lines."""
    with psycopg.connect(env.dsn) as conn:
        return {
            source: conn.execute(CONTENT_SQL.format(SPECS[source].table)).fetchone()[0] or ""
            for source in SOURCES
        }


def unread_files(env: Environment) -> list[dict[str, str]]:
    """The ledger's files not ingested (failed: the next run tries them again; misplaced)."""
    with psycopg.connect(env.dsn) as conn:
        rows = conn.execute(
            "SELECT source::text, path, status::text, error FROM ingested_files "
            "WHERE status <> 'ingested' ORDER BY path"
        ).fetchall()
    return [
        {"source": source, "path": path, "status": status, "error": (error or "").split("\n")[0]}
        for source, path, status, error in rows
    ]


def server_deadlocks(env: Environment) -> int:
    """The deadlocks the scenario's server detected (its log: each rolled back a transaction)."""
    log_file = env.home / "postgres" / "log"
    if not log_file.exists():
        return 0
    with open(log_file, errors="replace") as lines:
        return sum("ERROR:  deadlock detected" in line for line in lines)


def ledger_counts(env: Environment) -> dict[str, dict[str, int]]:
    """Per-source totals of the ledger (`ingested_files`), every source listed."""
    counts = {source: dict.fromkeys(COUNT_COLUMNS, 0) for source in SOURCES}
    with psycopg.connect(env.dsn) as conn:
        for source, *numbers in conn.execute(LEDGER_SQL).fetchall():
            counts[source or "(misplaced)"] = dict(
                zip(COUNT_COLUMNS, map(int, numbers), strict=True)
            )
    return counts


# --- where the CPU goes ------------------------------------------------------------------


class CpuMeter(common.CpuMeter):
    """CPU seconds spent while a measurement runs: by the scenario's PostgreSQL (its postmaster
    and every process below it, both databases), by the processes below this script (the
    command, Dagster, the step processes, parsers, Celery workers and Redis; this script's own
    too when `this_process`), and by the whole machine."""

    def __init__(self, env: Environment, this_process: bool = False):
        uncounted = frozenset() if this_process else frozenset({os.getpid()})
        super().__init__({"postgres": postmaster_pid(env), "pipeline": os.getpid()}, uncounted)

    @property
    def figures(self) -> dict[str, float]:
        return {
            "wall_seconds": round(self.wall, 2),
            "postgres_cpu": round(self.totals["postgres"], 1),
            "pipeline_cpu": round(self.totals["pipeline"], 1),
            "machine_busy_cpu": round(self.machine_busy, 1),
            "machine_iowait": round(self.machine_iowait, 1),
        }


# --- (a) and (d): ingest_days in child processes ----------------------------------------


def ingest_in_processes(env: Environment, key: str, parts: list[list[date]]) -> dict[str, Any]:
    """One child per part of the days, all started at once: each runs `ingest_days` for every
    source over its days. Timed from the first call's start to the last one's end (wall clock,
    read in the children), and from the first launch to the last exit."""
    checkpoint(env)  # the ingestion does not pay for the setup's dirty buffers
    children: list[tuple[subprocess.Popen, Path]] = []
    environment = {**cli_environment(env.home), T0_VARIABLE: repr(STARTED)}
    with CpuMeter(env) as meter:
        launched = time.perf_counter()
        try:
            for number, days in enumerate(parts, 1):
                result = env.home / f"{key}-process-{number}.json"
                result.unlink(missing_ok=True)
                spec = {
                    "label": f"({key}) process {number}" if len(parts) > 1 else f"({key})",
                    "days": [day.isoformat() for day in days],
                    "run_id": f"bench-{key}-{number}",
                    "result": str(result),
                }
                log(f"{spec['label']}: ingest_days for every source over {len(days)} days")
                child = subprocess.Popen(
                    [sys.executable, str(Path(__file__).resolve()), "--child-ingest"]
                    + [json.dumps(spec)],
                    env=environment,
                    start_new_session=True,  # its own group: stopped with its parser process
                )
                children.append((child, result))
            codes = [child.wait() for child, _ in children]
            process_seconds = time.perf_counter() - launched
        finally:
            stop_children([child for child, _ in children])
    if any(codes):
        raise SystemExit(f"({key}) an ingesting process failed: exit codes {codes}")
    processes = [json.loads(result.read_text()) for _, result in children]
    spans = [span for process in processes for span in process["sources"]]
    first, last = min(span["start"] for span in spans), max(span["end"] for span in spans)
    for process in processes:  # seconds from the first call's start, as the Dagster timelines
        for span in process["sources"]:
            span["start"], span["end"] = (
                round(span["start"] - first, 2),
                round(span["end"] - first, 2),
            )
    seconds = last - first
    log(f"({key}) done in {seconds:.2f} s")
    return {
        "seconds": round(seconds, 3),
        "process_seconds": round(process_seconds, 3),
        "ingest_ended": round(seconds, 3),
        "cpu": meter.figures,
        "processes": [
            {"days": [days[0].isoformat(), days[-1].isoformat(), len(days)], **process}
            for days, process in zip(parts, processes, strict=True)
        ],
    }


def stop_children(children: list[subprocess.Popen]) -> None:
    """Stop the children still running (interrupted): SIGTERM to each one's process group, then
    SIGKILL to the group after a grace period, so that their parser processes go with them."""
    running = [child for child in children if child.poll() is None]
    for child in running:
        _signal_group(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_SECONDS
    for child in running:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        _signal_group(child.pid, signal.SIGKILL)  # the child, if still there, and its parser
        child.wait()


def _signal_group(pgid: int, number: int) -> None:
    try:
        os.killpg(pgid, number)
    except (ProcessLookupError, PermissionError):
        pass


def child_ingest(spec_json: str) -> None:
    """The child side of (a) and (d): `ingest_days` for each source over the given days, one
    after the other, each on a connection of its own, as each ingest asset calls it."""
    from odavl_pipeline.db.server import connect
    from odavl_pipeline.ingest.run import ingest_days

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the parser process is closed too
    spec = json.loads(spec_json)
    settings = Settings.from_env()
    days = [date.fromisoformat(day) for day in spec["days"]]
    label = spec["label"]
    spans = []
    for source in SOURCES:
        started = time.time()
        with connect(settings) as conn:
            report = ingest_days(
                conn,
                settings.landing,
                source,
                days,
                run_id=spec["run_id"],
                progress=Throttled(lambda message: log(f"{label}: {message}"), PROGRESS_SECONDS),
            )
        spans.append(
            {
                "step": source,
                "start": started,
                "end": time.time(),
                "counts": report.counts.as_dict(),
                "failed_files": [list(failure) for failure in report.failed],
                "retried_lines": report.retried.lines,
            }
        )
        log(f"{label}: {source} {report.counts.accepted:,} accepted in {report.seconds:.1f} s")
        for path, error in report.failed:
            log(f"{label}: {path} failed: {error}")
    Path(spec["result"]).write_text(json.dumps({"sources": spans}))


# --- (b) and (c): odavl-pipeline run ----------------------------------------------------


def metered_run(
    env: Environment, label: str, variables: dict[str, str] | None = None
) -> dict[str, Any]:
    """pipeline_bench's `timed_run` (with `variables` added to the command's environment), with
    the CPU it cost."""
    with CpuMeter(env) as meter:
        run = timed_run(env, label, variables=variables)
    return {**run_figures(run), "cpu": meter.figures}


def run_figures(run: RunFigure) -> dict[str, Any]:
    """The run's figures: its wall clock, when its last ingest step ended and its marts step,
    in seconds from the command's launch."""
    ingest = [span for span in run.steps if span["step"] in SOURCES]
    marts = next((span for span in run.steps if span["step"] == "marts"), None)
    ends = [span.get("end") for span in ingest]
    return {
        "seconds": round(run.seconds, 3),
        "ingest_started": min((span.get("start", run.seconds) for span in ingest), default=None),
        "ingest_ended": max(ends) if ingest and None not in ends else None,
        "marts": marts,
        "launched_at": run.launched_at.isoformat(),
        **run.as_dict(),
    }


def multiprocess_run(env: Environment) -> dict[str, Any]:
    """(b) `odavl-pipeline run` with the default executor."""
    return metered_run(env, "b-run")


def celery_run(env: Environment) -> dict[str, Any]:
    """(c) `odavl-pipeline run` with ODAVL_EXECUTOR=celery: Redis on loopback and two
    dagster-celery workers, with the instance of deploy/celery/, as tests/test_celery.py runs
    them; everything stopped at the end."""
    sys.path.insert(1, str(ROOT))  # the tests' helpers, from the repository
    from odavl_pipeline.orchestration import prepare_instance_environment
    from tests.celery_workers import CeleryWorkers
    from tests.redis_server import RedisServer

    settings = Settings.from_env({"ODAVL_HOME": str(env.home)})
    settings.dagster_home.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "deploy" / "celery" / "dagster.yaml", settings.dagster_home / "dagster.yaml")
    redis = RedisServer()
    workers = None
    try:
        log(f"(c) redis-server on {redis.url}")
        variables = {EXECUTOR_VARIABLE: CELERY, BROKER_VARIABLE: redis.url}
        worker_environment = {
            **cli_environment(env.home),
            **prepare_instance_environment(settings),  # the instance: a worker does not derive it
            **variables,
        }
        workers = CeleryWorkers(worker_environment, env.home)
        started = time.perf_counter()
        workers.start("ingest", DEFAULT_QUEUE)
        workers.start("marts", DEFAULT_QUEUE, MARTS_QUEUE)
        workers.wait_ready()
        ready = time.perf_counter() - started
        log(f"(c) two dagster-celery workers ready in {ready:.1f} s (untimed)")
        figures = metered_run(env, "c-run", variables)
        figures["workers_ready_seconds"] = round(ready, 1)
        figures["workers"] = worker_placements(env, figures["launched_at"])
        return figures
    finally:
        if workers is not None:
            left = workers.close()
            if left:
                log(f"(c) celery worker processes still running after SIGKILL: {left}")
        redis.close()


def worker_placements(env: Environment, launched_at: str) -> dict[str, str]:
    """The Celery worker that took each step (dagster-celery's engine event in the run's log)."""
    placements = {}
    with psycopg.connect(libpq_url(env.url.set(database=DAGSTER_DB))) as conn:
        rows = conn.execute(
            "SELECT step_key, event FROM event_logs WHERE timestamp >= %s "
            "AND dagster_event_type = 'ENGINE_EVENT' AND step_key IS NOT NULL ORDER BY id",
            (datetime.fromisoformat(launched_at),),
        ).fetchall()
    for step, event in rows:
        node = _celery_worker(json.loads(event))
        if node:
            placements[step] = node
    return placements


def _celery_worker(value: Any) -> str | None:
    """The "Celery worker" metadata of a serialized engine event, wherever it is nested."""
    if isinstance(value, dict):
        if value.get("label") == "Celery worker":
            return value.get("entry_data", {}).get("text")
        if "Celery worker" in value:
            found = value["Celery worker"]
            return found.get("text") if isinstance(found, dict) else str(found)
        value = list(value.values())
    if isinstance(value, list):
        for item in value:
            if found := _celery_worker(item):
                return found
    return None


# --- the run ----------------------------------------------------------------------------


def measure(key: str, env: Environment, days: list[date]) -> dict[str, Any]:
    if key == "a":
        return ingest_in_processes(env, key, [days])
    if key == "d":
        half = len(days) // 2
        return ingest_in_processes(env, key, [days[:half], days[half:]])
    if key == "b":
        return multiprocess_run(env)
    return celery_run(env)


def summarize(result: dict[str, Any]) -> None:
    """Each scenario's accepted rows, rows/s and ratio to the COPY; whether the counts agree."""
    copy_rate = result["copy"]["rows_per_s"] if "copy" in result else None
    reference = None
    for key in SCENARIOS:
        scenario = result["scenarios"].get(key)
        if scenario is None:
            continue
        accepted = sum(row["accepted"] for row in scenario["ledger"].values())
        scenario["accepted"] = accepted
        scenario["usage_accepted"] = scenario["ledger"]["usage_events"]["accepted"]
        scenario["rows_per_s"] = round(accepted / scenario["seconds"], 1)
        if scenario.get("ingest_ended"):
            scenario["rows_per_s_to_ingest_end"] = round(accepted / scenario["ingest_ended"], 1)
        if copy_rate:
            scenario["vs_copy"] = round(scenario["rows_per_s"] / copy_rate, 3)
        if reference is None:
            reference = (key, scenario)
    result["counts_reference"] = reference[0]
    result["same_counts"] = all(
        scenario["ledger"] == reference[1]["ledger"] for scenario in result["scenarios"].values()
    )
    result["content_differs"] = {
        key: [
            source
            for source in SOURCES
            if scenario["content"][source] != reference[1]["content"][source]
        ]
        for key, scenario in result["scenarios"].items()
    }
    result["same_content"] = not any(result["content_differs"].values())


def print_report(result: dict[str, Any]) -> None:
    server = result["server"]
    gen = result["generate"]
    print(
        f"\nScale benchmark: {result['days']} days of landing files for "
        f"{result['organizations']:,} organizations, ingested four ways ({os.cpu_count()} cores; "
        f"load average {result['load_average']['start']:.1f} at the start, "
        f"{result['load_average']['end']:.1f} at the end)"
    )
    print(
        f"PostgreSQL {server['server_version']} (embedded, one per scenario): "
        f"shared_buffers={server['shared_buffers']} fsync={server['fsync']} "
        f"synchronous_commit={server['synchronous_commit']} "
        f"max_wal_size={server['max_wal_size']}"
    )
    print(f"generated: {gen['summary']} ({gen['seconds']:.1f} s, untimed); plus the demo's files")
    reference = result["scenarios"][result["counts_reference"]]["ledger"]
    print("\n  per source, in every scenario's ledger:")
    print(f"    {'source':<18}" + "".join(f"{column:>11}" for column in COUNT_COLUMNS))
    for source, row in reference.items():
        print(f"    {source:<18}" + "".join(f"{row[column]:>11,}" for column in COUNT_COLUMNS))
    if result["same_counts"]:
        print(f"  every scenario ended with these totals ({', '.join(result['scenarios'])})")
    else:
        print(f"  NOT the same in every scenario; these are ({result['counts_reference']})'s, and:")
        for key, scenario in result["scenarios"].items():
            for source, row in scenario["ledger"].items():
                if row != reference.get(source):
                    print(
                        f"  {f'({key}) {source}':<20}"
                        + "".join(f"{row[column]:>11,}" for column in COUNT_COLUMNS)
                    )
    for key, scenario in result["scenarios"].items():
        if scenario["unread"]:
            print(f"  ({key}) left {len(scenario['unread'])} file(s) not ingested: see below")
    if result["same_content"]:
        print("  and the same rows in every source's table (a digest of their payloads)")
    else:
        print(
            "  NOT the same rows in every scenario's tables (a digest of their payloads), "
            f"against ({result['counts_reference']})'s: "
            + "; ".join(
                f"({key}) {', '.join(sources)}"
                for key, sources in result["content_differs"].items()
                if sources
            )
        )

    print(
        f"\n  {'':40}{'accepted':>10}{'seconds':>9}{'rows/s':>9}{'x COPY':>8}"
        f"{'ingested':>10}{'rows/s':>9}{'marts':>8}"
    )
    for key, scenario in result["scenarios"].items():
        vs_copy = f"{scenario['vs_copy']:>8.3f}" if "vs_copy" in scenario else f"{'-':>8}"
        marts = scenario.get("marts")
        marts_text = (
            f"{marts['end'] - marts['start']:>8.2f}"
            if marts and "start" in marts and "end" in marts
            else f"{'-':>8}"
        )
        ended = scenario.get("ingest_ended")
        print(
            f"  {LABELS[key]:40}{scenario['accepted']:>10,}{scenario['seconds']:>9.2f}"
            f"{scenario['rows_per_s']:>9,.0f}{vs_copy}"
            + (f"{ended:>10.2f}" if ended else f"{'?':>10}")
            + f"{scenario.get('rows_per_s_to_ingest_end', 0):>9,.0f}{marts_text}"
        )
    if "copy" in result:
        copy = result["copy"]
        print(
            f"  {LABELS['copy']:40}{copy['rows']:>10,}{copy['seconds']:>9.2f}"
            f"{copy['rows_per_s']:>9,.0f}{1:>8.3f}"
        )
    print(
        "\n  accepted: rows of the four sources; x COPY: rows/s / the COPY's rows/s; ingested:\n"
        "  seconds until the last ingest ended ((b), (c): from the command's launch), rows/s:\n"
        "  accepted rows / those seconds; marts: seconds of the marts step"
    )
    cores = os.cpu_count() or 1
    print(
        f"\n  CPU seconds while timed{'':16}{'wall':>8}{'Postgres':>10}{'pipeline':>10}"
        f"{'other':>8}{'machine':>9}{'busy':>7}{'iowait':>8}"
    )
    metered = {key: scenario["cpu"] for key, scenario in result["scenarios"].items()}
    if "copy" in result:
        metered["copy"] = result["copy"]["cpu"]
    for key, cpu in metered.items():
        busy = cpu["machine_busy_cpu"] / (cores * cpu["wall_seconds"])
        other = cpu["machine_busy_cpu"] - cpu["postgres_cpu"] - cpu["pipeline_cpu"]
        print(
            f"  {LABELS[key]:40}{cpu['wall_seconds']:>8.1f}{cpu['postgres_cpu']:>10.1f}"
            f"{cpu['pipeline_cpu']:>10.1f}{other:>8.1f}{cpu['machine_busy_cpu']:>9.1f}"
            f"{busy:>7.0%}{cpu['machine_iowait']:>8.1f}"
        )
    print(
        "  Postgres: its server's processes (both databases); pipeline: the processes below this\n"
        "  script (command, Dagster, steps, parsers, workers, Redis; for the COPY, this script);\n"
        "  other: the rest of the machine (other work on it, the kernel's own threads); machine:\n"
        f"  every process; busy: machine / ({cores} cores x wall); iowait: idle waiting for the disk"
    )
    for key, scenario in result["scenarios"].items():
        print(f"\n{LABELS[key]} (load average {scenario['load_average_before']:.1f} before)")
        if scenario["deadlocks"]:
            print(
                f"    the server detected {scenario['deadlocks']} deadlocks (its log), each rolling "
                "back a file's transaction"
            )
        for unread in scenario["unread"]:
            print(f"    NOT ingested ({unread['status']}): {unread['path']}: {unread['error']}")
        if "processes" in scenario:
            print_processes(key, scenario)
        else:
            if key == "c":
                taken: dict[str, list[str]] = {}
                for step, node in scenario["workers"].items():
                    taken.setdefault(node, []).append(step)
                print(
                    f"    two workers, ready {scenario['workers_ready_seconds']:.1f} s after their "
                    "start, before the launch (untimed); steps taken: "
                    + "; ".join(f"{node} {', '.join(steps)}" for node, steps in taken.items())
                )
            print_steps(scenario)
            if scenario["counts"] != {s: scenario["ledger"].get(s) for s in scenario["counts"]}:
                print("    note: the run's --json counts differ from its ledger's totals")
    print(f"\n  whole invocation: {result['seconds']:.0f} s")


def print_processes(key: str, scenario: dict[str, Any]) -> None:
    """Each process's ingest_days calls, in seconds from the first call's start."""
    print("    ingest_days, seconds from the first call's start:")
    for number, process in enumerate(scenario["processes"], 1):
        first, last, count = process["days"]
        if len(scenario["processes"]) > 1:
            print(f"    process {number}: {count} days, {first} .. {last}")
        for span in process["sources"]:
            counts = span["counts"]
            print(
                f"      {span['step']:<18}{span['start']:8.2f} -> {span['end']:8.2f}"
                f"{span['end'] - span['start']:8.2f} s {counts['accepted']:>10,} accepted"
                f"{counts['lines'] / max(span['end'] - span['start'], 1e-9):>10,.0f} lines/s"
            )
    print(
        f"      {'processes, launch to exit':<34}{scenario['process_seconds']:>8.2f} s "
        "(interpreter start included)"
    )


# --- main -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--organizations",
        type=int,
        default=198,
        help="generated organizations, besides the two demo ones (default 198)",
    )
    parser.add_argument("--days", type=int, default=30, help="landed days (default 30)")
    parser.add_argument(
        "--usage-per-day", type=int, default=150, help="per organization (default 150)"
    )
    parser.add_argument("--errors-per-day", type=int, default=15, help="per project (default 15)")
    parser.add_argument(
        "--attestations-per-day", type=int, default=3, help="per project (default 3)"
    )
    parser.add_argument("--audits-per-day", type=int, default=1, help="per project (default 1)")
    parser.add_argument("--seed", type=int, default=7, help="generator seed (default 7)")
    parser.add_argument(
        "--only", default="a,b,c,d", help="the scenarios to run, comma-separated (default a,b,c,d)"
    )
    parser.add_argument(
        "--home",
        help="folder for the landing files and the scenarios' state folders "
        "(default: a fresh temporary folder)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="leave the servers running and the files in place"
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the figures as one JSON object instead of the report",
    )
    parser.add_argument("--child-ingest", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.only = [key.strip() for key in args.only.split(",") if key.strip()]
    unknown = set(args.only) - set(SCENARIOS)
    if unknown or not args.only:
        parser.error(f"--only takes some of {','.join(SCENARIOS)}, not {','.join(sorted(unknown))}")
    args.only = [key for key in SCENARIOS if key in args.only]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child_ingest:
        child_ingest(args.child_ingest)
        return 0
    if not CLI.exists():
        raise SystemExit(f"no {CLI}: run this script with the virtualenv's Python")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up as on Ctrl-C
    yesterday = clock.today() - timedelta(days=1)
    remove = args.home is None
    base = Path(args.home).resolve() if args.home else Path(tempfile.mkdtemp(prefix="odavl-scale-"))
    base.mkdir(parents=True, exist_ok=True)
    base.chmod(0o755)
    result: dict[str, Any] = {
        "organizations": args.organizations + 2,
        "days": args.days,
        "volume": {
            "usage_per_day": args.usage_per_day,
            "errors_per_day": args.errors_per_day,
            "attestations_per_day": args.attestations_per_day,
            "audits_per_day": args.audits_per_day,
        },
        "scenarios": {},
    }
    result["load_average"] = {"start": round(os.getloadavg()[0], 2)}
    try:
        result["generate"] = generate(base, args, yesterday)
        for key in args.only:
            with scenario_folder(base, key, remove, args.keep) as (env, days):
                result.setdefault("server", server_facts(env, SERVER_SETTINGS))
                result.setdefault("landed_days", [days[0].isoformat(), days[-1].isoformat()])
                load = os.getloadavg()[0]
                scenario = measure(key, env, days)
                scenario["load_average_before"] = round(load, 2)
                scenario["ledger"] = ledger_counts(env)
                scenario["content"] = stored_content(env)
                scenario["unread"] = unread_files(env)
                scenario["deadlocks"] = server_deadlocks(env)
                result["scenarios"][key] = scenario
                if "copy" not in result:  # the baseline, on the rows this scenario stored
                    log(f"({key}) reading back the usage rows it stored (untimed)")
                    stored = stored_usage_rows(env)
                    checkpoint(env)  # so that the meter does not count the scenario's writes
                    with CpuMeter(env, this_process=True) as meter:
                        result["copy"] = run_copy(env, stored).as_dict()
                    result["copy"]["cpu"] = meter.figures
                    del stored
                    log(f"copy: {result['copy']['rows']:,} rows in {result['copy']['seconds']} s")
    finally:
        if remove and not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    summarize(result)
    result["load_average"]["end"] = round(os.getloadavg()[0], 2)
    result["seconds"] = round(time.time() - STARTED, 1)
    if args.json:
        print(json.dumps(result))
    else:
        print_report(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
