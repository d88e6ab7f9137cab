#!/usr/bin/env python
"""Pipeline benchmark: `odavl-pipeline run` end to end, as users run it.

Each scenario gets a fresh state folder (its own ODAVL_HOME, so its own embedded PostgreSQL
and its own Dagster instance), prepared with the CLI (`db upgrade`, `generate`, `seed`), and
times the `odavl-pipeline run --log-level WARNING --json` command as a subprocess: wall clock,
Python start-up, Dagster orchestration, ingestion and marts included.

  (a) run vs COPY  the demo's default files plus about 500,000 usage events over 30 days:
                   usage rows stored ÷ run seconds, against a raw `COPY … FROM STDIN` of the
                   same rows into a table like `usage_events`;
  (b) daily run    a year of history for a thousand organizations, ingested beforehand, then
                   one new day (yesterday, or the Friday before on a weekend): the run that
                   ingests it;
  (c) first file   five years of landed days, none ingested: how long the run takes to commit
                   its first file (the operational database polled every 50 ms).

It prints each figure against its target. It only prints; it asserts nothing.

    python bench/pipeline_bench.py [--events N] [--organizations-daily N] [--history-days N]
                                   [--years N] [--only a,b,c] [--home DIR] [--keep] [--json]

The subprocesses get the caller's environment without its ODAVL_*, DAGSTER_* and STRIPE_*
variables, and ODAVL_HOME set to the scenario's folder: ODAVL_DATABASE_URL is not honoured.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from common import STARTED, Environment, log, server_facts, tear_down
from ingest_bench import COLUMNS, COPY_CHUNK_BYTES, Prepared, checkpoint, run_copy, verdict

from odavl_pipeline import clock
from odavl_pipeline.db.server import DAGSTER_DB, libpq_url, server_url, stop_embedded_server
from odavl_pipeline.generate import GenerateOptions, synthetic_reference
from odavl_pipeline.settings import Settings

CLI = Path(sys.executable).with_name("odavl-pipeline")
CALLER_SETTINGS = ("ODAVL_", "DAGSTER_", "STRIPE_")  # prefixes left out of the CLI's environment
SERVER_SETTINGS = (
    "server_version",
    "shared_buffers",
    "fsync",
    "synchronous_commit",
    "max_wal_size",
)
SCENARIOS = {"a": "a-run-vs-copy", "b": "b-daily-run", "c": "c-first-file"}
CLI_ORGANIZATIONS = 5  # `generate`'s default, besides the two demo organizations
COPY_DAYS = 30
COPY_SEED = 8  # (a)'s usage files; the demo's defaults use seed 7
DAILY_SEED = 7  # (b): history and new day alike, so that the organizations are the same
POLL_SECONDS = 0.05
FIRST_FILE_SQL = "SELECT count(*) FROM ingested_files WHERE status = 'ingested'"
STEP_EVENTS = [
    "PIPELINE_START",
    "PIPELINE_SUCCESS",
    "PIPELINE_FAILURE",
    "STEP_START",
    "STEP_SUCCESS",
    "STEP_FAILURE",
]

TARGET_VS_COPY = 0.3  # run rows/s ÷ COPY rows/s, at least
TARGET_DAILY_SECONDS = 10.0
TARGET_FIRST_FILE_SECONDS = 10.0


@dataclass(frozen=True)
class Volume:
    """Lines a day: usage per organization; errors, attestations and audits per project."""

    usage: int
    errors: int
    attestations: int
    audits: int

    def args(self) -> list[str]:
        return [
            "--usage-per-day",
            str(self.usage),
            "--errors-per-day",
            str(self.errors),
            "--attestations-per-day",
            str(self.attestations),
            "--audits-per-day",
            str(self.audits),
        ]


# (b): a thin year of history (no attestations, so that the new day's chains start cleanly
# at their genesis; no audits, the heaviest lines), then a busy weekday with every source
# (the generator scales a weekday's usage by 1.26: about 20 events per organization).
HISTORY_VOLUME = Volume(usage=2, errors=1, attestations=0, audits=0)
NEW_DAY_VOLUME = Volume(usage=16, errors=2, attestations=1, audits=1)
# (c): many days, few lines a day, every source.
FIVE_YEARS_VOLUME = Volume(usage=5, errors=1, attestations=1, audits=1)


# --- the CLI as a subprocess ------------------------------------------------------------


def cli_environment(home: Path) -> dict[str, str]:
    """The caller's environment without its ODAVL_/DAGSTER_/STRIPE_ settings; ODAVL_HOME set."""
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith(CALLER_SETTINGS)
    }
    environment["ODAVL_HOME"] = str(home)
    return environment


def odavl(env: Environment, *args: str) -> None:
    """`odavl-pipeline args` on this state folder, untimed setup."""
    started = time.perf_counter()
    done = subprocess.run(
        [str(CLI), *args], env=cli_environment(env.home), capture_output=True, text=True
    )
    text = f"odavl-pipeline {' '.join(args)}"
    if done.returncode != 0:
        raise SystemExit(
            f"`{text}` failed with exit code {done.returncode}:\n{done.stderr[-4000:]}"
        )
    log(f"{text}: {time.perf_counter() - started:.1f} s")


@dataclass
class RunFigure:
    """One `odavl-pipeline run`: its wall clock, the counts it printed and its Dagster steps."""

    seconds: float
    counts: dict[str, dict[str, int]]
    steps: list[dict[str, Any]]
    launched_at: datetime  # naive UTC, as Dagster's event log
    first_file_seconds: float | None = None

    def as_dict(self) -> dict[str, Any]:
        figure = {"seconds": round(self.seconds, 3), "counts": self.counts, "steps": self.steps}
        if self.first_file_seconds is not None:
            figure["first_file_seconds"] = round(self.first_file_seconds, 3)
        return figure


def timed_run(
    env: Environment,
    label: str,
    watch_first_file: bool = False,
    extra: tuple[str, ...] = (),
    variables: dict[str, str] | None = None,
) -> RunFigure:
    """`odavl-pipeline run [extra] --log-level WARNING --json` as a subprocess, timed from its
    launch to its exit (its output kept as <label>.stdout/.stderr in the state folder), with
    `variables` added to its environment. With `watch_first_file`, also the time until the
    ledger holds an ingested file."""
    checkpoint(env)  # the run does not pay for the setup's dirty buffers
    out_path, err_path = env.home / f"{label}.stdout", env.home / f"{label}.stderr"
    command = [str(CLI), "run", *extra, "--log-level", "WARNING", "--json"]
    log(f"{label}: odavl-pipeline {' '.join(command[1:])}")
    with (
        psycopg.connect(env.dsn, autocommit=True) as watcher,
        open(out_path, "wb") as out,
        open(err_path, "wb") as err,
    ):
        launched_at = datetime.now(UTC).replace(tzinfo=None)  # Dagster's event log is naive UTC
        started = time.perf_counter()
        child = subprocess.Popen(
            command,
            env={**cli_environment(env.home), **(variables or {})},
            stdout=out,
            stderr=err,
        )
        try:
            first_file = wait_for_first_file(watcher, child, started) if watch_first_file else None
            if first_file is not None:
                log(f"{label}: first file committed after {first_file:.2f} s")
            code = child.wait()
            seconds = time.perf_counter() - started
        finally:
            if child.poll() is None:  # interrupted: do not leave the run behind
                child.terminate()
                child.wait()
    if code != 0:
        raise SystemExit(
            f"`odavl-pipeline run` ({label}) failed with exit code {code}:\n"
            f"{err_path.read_text()[-4000:]}"
        )
    log(f"{label}: done in {seconds:.2f} s")
    return RunFigure(
        seconds,
        run_counts(out_path.read_text(), label),
        step_timeline(env, launched_at),
        launched_at,
        first_file,
    )


def run_counts(stdout: str, label: str) -> dict[str, dict[str, int]]:
    """The counts `run --json` prints last; says so when other output came before them."""
    text = stdout.strip()
    last_line = text.rsplit("\n", 1)[-1]
    counts = last_line[last_line.index("{") :]
    if noise := text[: -len(counts)].strip():
        log(
            f"{label}: the run's standard output has {len(noise):,} characters before its "
            f"JSON (DuckDB's progress bar?): {noise[:60]!r}"
        )
    return json.loads(counts)


def wait_for_first_file(
    conn: psycopg.Connection, child: subprocess.Popen, started: float
) -> float | None:
    """Seconds from `started` until an ingested file is visible; None if the run ends first."""
    while True:
        if conn.execute(FIRST_FILE_SQL).fetchone()[0]:
            return time.perf_counter() - started
        if child.poll() is not None:
            return None
        time.sleep(POLL_SECONDS)


def step_timeline(env: Environment, launched_at: datetime) -> list[dict[str, Any]]:
    """The Dagster runs and steps since `launched_at`, in seconds from it (its event log)."""
    spans: dict[tuple[str, str], dict[str, Any]] = {}
    with psycopg.connect(libpq_url(env.url.set(database=DAGSTER_DB))) as conn:
        rows = conn.execute(
            "SELECT run_id, step_key, dagster_event_type, timestamp FROM event_logs "
            "WHERE timestamp >= %s AND dagster_event_type = ANY(%s) ORDER BY id",
            (launched_at, STEP_EVENTS),
        ).fetchall()
    for run_id, step, kind, stamp in rows:
        span = spans.setdefault((run_id, step or ""), {"step": step or "dagster run"})
        offset = round((stamp - launched_at).total_seconds(), 2)
        if kind.endswith("_START"):
            span["start"] = offset
        else:
            span["end"] = offset
            span["status"] = "failed" if kind.endswith("_FAILURE") else "success"
    return list(spans.values())


# --- scenarios ----------------------------------------------------------------------------


@contextmanager
def scenario_environment(base: Path, key: str, remove: bool, keep: bool) -> Iterator[Environment]:
    """Scenario `key`'s state folder (see `state_folder`)."""
    with state_folder(base / SCENARIOS[key], remove, keep, f"({key}) ") as env:
        yield env


@contextmanager
def state_folder(home: Path, remove: bool, keep: bool, label: str = "") -> Iterator[Environment]:
    """A fresh state folder with its embedded PostgreSQL started and migrated by the CLI;
    the server stopped (and the folder removed when `remove`) afterwards, unless `keep`."""
    settings = Settings.from_env({"ODAVL_HOME": str(home)})
    if home.exists():  # left by an earlier run with the same --home
        stop_embedded_server(settings)
        shutil.rmtree(home)
    home.mkdir(parents=True)
    home.chmod(0o755)  # as root, the embedded server runs as its own user
    log(f"{label}state folder {home}")
    env = Environment(home, server_url(settings), settings, remove)
    try:
        odavl(env, "db", "upgrade")
        yield env
    finally:
        tear_down(env, keep)


def run_vs_copy(env: Environment, events: int, end_day: date) -> dict[str, Any]:
    """(a) The demo's files plus `events` usage events: the run against a raw COPY of its rows."""
    odavl(env, "generate")  # the demo's defaults: 30 days ending yesterday
    odavl(env, "seed", "--reference", str(env.home / "reference.json"))
    probe = GenerateOptions(
        seed=COPY_SEED, days=COPY_DAYS, end_day=end_day, organizations=CLI_ORGANIZATIONS
    )
    organizations = len(synthetic_reference(probe)["organizations"])
    usage_per_day = max(1, round(events / (organizations * COPY_DAYS)))
    reference = env.home / "reference-usage.json"
    odavl(
        env,
        "generate",
        "--seed",
        str(COPY_SEED),
        "--days",
        str(COPY_DAYS),
        "--end",
        end_day.isoformat(),
        "--organizations",
        str(CLI_ORGANIZATIONS),
        *Volume(usage_per_day, 0, 0, 0).args(),
        "--reference-out",
        str(reference),
    )
    odavl(env, "seed", "--reference", str(reference))
    run = timed_run(env, "a-run")
    log("reading back the rows the run stored (untimed)")
    stored = stored_usage_rows(env)
    copy = run_copy(env, stored)
    run_rate = stored.rows / run.seconds
    return {
        "organizations": organizations,
        "usage_per_day": usage_per_day,
        "run": {**run.as_dict(), "rows": stored.rows, "rows_per_s": round(run_rate, 1)},
        "copy": copy.as_dict(),
        "ratio": round(run_rate / copy.rate, 3),
    }


def stored_usage_rows(env: Environment) -> Prepared:
    """Every row of `usage_events`, in insertion order, as COPY text in 4 MiB chunks."""
    chunks: list[bytes] = []
    buffer: list[bytes] = []
    size = 0
    with psycopg.connect(env.dsn) as conn, conn.cursor() as cur:
        rows = cur.execute("SELECT count(*) FROM usage_events").fetchone()[0]
        with cur.copy(
            f"COPY (SELECT {', '.join(COLUMNS)} FROM usage_events ORDER BY id) TO STDOUT"
        ) as copy:
            for block in copy:
                buffer.append(bytes(block))
                size += len(block)
                if size >= COPY_CHUNK_BYTES:
                    chunks.append(b"".join(buffer))
                    buffer, size = [], 0
    if buffer:
        chunks.append(b"".join(buffer))
    return Prepared(chunks, rows, [])


def latest_weekday(day: date) -> date:
    """`day`, or the Friday before it on a weekend (the generator makes weekends quiet)."""
    return day - timedelta(days=max(0, day.weekday() - 4))


def daily_run(
    env: Environment, organizations: int, history_days: int, end_day: date
) -> dict[str, Any]:
    """(b) A year of history, ingested untimed; then one new day (`end_day`) and its run."""
    history_reference = env.home / "reference.json"
    new_day_reference = env.home / "reference-new-day.json"
    generate = ("generate", "--seed", str(DAILY_SEED), "--organizations", str(organizations))
    odavl(
        env,
        *generate,
        "--days",
        str(history_days),
        "--end",
        (end_day - timedelta(days=1)).isoformat(),
        *HISTORY_VOLUME.args(),
        "--reference-out",
        str(history_reference),
    )
    odavl(env, "seed", "--reference", str(history_reference))
    history = timed_run(env, "b-history-run")
    odavl(
        env,
        *generate,
        "--days",
        "1",
        "--end",
        end_day.isoformat(),
        *NEW_DAY_VOLUME.args(),
        "--reference-out",
        str(new_day_reference),
    )
    known = organizations_and_projects(history_reference)
    if organizations_and_projects(new_day_reference) != known:
        raise SystemExit("the new day's organizations or projects differ from the history's")
    new_day = timed_run(env, "b-daily-run")
    return {
        "organizations": len(known),
        "history_days": history_days,
        "history_volume": asdict(HISTORY_VOLUME),
        "new_day_volume": asdict(NEW_DAY_VOLUME),
        "new_day": end_day.isoformat(),
        "history": history.as_dict(),
        "daily": new_day.as_dict(),
    }


def organizations_and_projects(reference: Path) -> dict[str, list[str]]:
    """Each organization's project slugs, from a reference.json written by `generate`."""
    return {
        org["slug"]: sorted(project["slug"] for project in org["projects"])
        for org in json.loads(reference.read_text())["organizations"]
    }


def first_file(env: Environment, years: int, end_day: date) -> dict[str, Any]:
    """(c) `years` of landed days, seeded but not ingested: the time to the first committed file."""
    days = round(years * 365.25)
    odavl(
        env,
        "generate",
        "--days",
        str(days),
        "--end",
        end_day.isoformat(),
        *FIVE_YEARS_VOLUME.args(),
    )
    odavl(env, "seed", "--reference", str(env.home / "reference.json"))
    run = timed_run(env, "c-run", watch_first_file=True)
    return {"years": years, "days": days, "volume": asdict(FIVE_YEARS_VOLUME), "run": run.as_dict()}


# --- report -----------------------------------------------------------------------------


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    """Each measured figure with its target and verdict."""
    checks: dict[str, Any] = {}
    if "run_vs_copy" in result:
        ratio = result["run_vs_copy"]["ratio"]
        checks["run_vs_copy"] = {
            "value": ratio,
            "target": f">= {TARGET_VS_COPY}",
            "verdict": verdict(ratio >= TARGET_VS_COPY),
        }
    if "daily_run" in result:
        seconds = result["daily_run"]["daily"]["seconds"]
        checks["daily_run_seconds"] = {
            "value": round(seconds, 2),
            "target": f"< {TARGET_DAILY_SECONDS:g}",
            "verdict": verdict(seconds < TARGET_DAILY_SECONDS),
        }
    if "first_file" in result:
        seconds = result["first_file"]["run"].get("first_file_seconds")
        checks["first_file_seconds"] = {
            "value": None if seconds is None else round(seconds, 2),
            "target": f"< {TARGET_FIRST_FILE_SECONDS:g}",
            "verdict": verdict(seconds is not None and seconds < TARGET_FIRST_FILE_SECONDS),
        }
    return checks


def print_counts(counts: dict[str, dict[str, int]]) -> None:
    columns = ("files", "lines", "accepted", "duplicate", "pending", "rejected")
    print(f"    {'source':<18}" + "".join(f"{column:>11}" for column in columns))
    for source, row in counts.items():
        print(f"    {source:<18}" + "".join(f"{row[column]:>11,}" for column in columns))


def print_steps(run: dict[str, Any]) -> None:
    """The Dagster run and its steps, in seconds from the command's launch."""
    print("    Dagster, seconds from the command's launch:")
    for span in run["steps"]:
        start, end = span.get("start"), span.get("end")
        took = f"{end - start:8.2f} s" if start is not None and end is not None else ""
        failed = "  FAILED" if span.get("status") == "failed" else ""
        print(f"      {span['step']:<18}{_offset(start)} -> {_offset(end)}{took}{failed}")
    print(f"      {'command exit':<18}{'':>8}    {run['seconds']:>8.2f}")


def _offset(seconds: float | None) -> str:
    return f"{'?':>8}" if seconds is None else f"{seconds:8.2f}"


def totals(counts: dict[str, dict[str, int]]) -> tuple[int, int, int]:
    """(files, lines, accepted) over every source."""
    return tuple(
        sum(row[column] for row in counts.values()) for column in ("files", "lines", "accepted")
    )


def print_report(result: dict[str, Any]) -> None:
    server = result["server"]
    print(
        f"\nPipeline benchmark: `odavl-pipeline run --log-level WARNING --json` as a subprocess, "
        f"end to end ({os.cpu_count()} cores)"
    )
    print(
        f"PostgreSQL {server['server_version']} (embedded, one per scenario): "
        f"shared_buffers={server['shared_buffers']} fsync={server['fsync']} "
        f"synchronous_commit={server['synchronous_commit']} "
        f"max_wal_size={server['max_wal_size']}"
    )
    if "run_vs_copy" in result:
        a = result["run_vs_copy"]
        run, copy = a["run"], a["copy"]
        print(
            f"\n(a) run vs raw COPY: the demo's default files, then {a['usage_per_day']:,} usage "
            f"events a day for {a['organizations']} organizations over {COPY_DAYS} days"
        )
        print_counts(run["counts"])
        print(f"\n    {'':34}{'rows':>12}{'seconds':>10}{'rows/s':>12}")
        print(
            f"    {'odavl-pipeline run':34}{run['rows']:>12,}{run['seconds']:>10.2f}"
            f"{run['rows_per_s']:>12,.0f}"
        )
        print(
            f"    {'raw COPY into bench_copy':34}{copy['rows']:>12,}{copy['seconds']:>10.2f}"
            f"{copy['rows_per_s']:>12,.0f}"
        )
        if copy["rows"] != run["rows"]:
            print(
                f"    note: the run stored {run['rows']:,} rows but the COPY wrote {copy['rows']:,}"
            )
        print()
        print_steps(run)
    if "daily_run" in result:
        b = result["daily_run"]
        history, daily = b["history"], b["daily"]
        files, lines, accepted = totals(history["counts"])
        print(
            f"\n(b) daily run: {b['organizations']:,} organizations, {b['history_days']} days "
            f"of history ({lines:,} lines in {files:,} files, {accepted:,} accepted; "
            f"ingested untimed in {history['seconds']:.1f} s), then the new day "
            f"{b['new_day']} ({date.fromisoformat(b['new_day']):%A})"
        )
        print_counts(daily["counts"])
        print(f"\n    odavl-pipeline run for the new day: {daily['seconds']:.2f} s\n")
        print_steps(daily)
    if "first_file" in result:
        c = result["first_file"]
        run = c["run"]
        files, lines, accepted = totals(run["counts"])
        first = run.get("first_file_seconds")
        print(
            f"\n(c) first file: {c['years']} years ({c['days']:,} landed days, {files:,} files, "
            f"{lines:,} lines), seeded, not ingested"
        )
        print(
            "    first file committed after "
            + ("(none seen before the run ended)" if first is None else f"{first:.2f} s")
            + f"; the whole run took {run['seconds']:.1f} s ({accepted:,} lines accepted)\n"
        )
        print_steps(run)
    print()
    labels = {
        "run_vs_copy": "(a) run/COPY rows/s",
        "daily_run_seconds": "(b) daily run, s",
        "first_file_seconds": "(c) first file, s",
    }
    for key, check in result["checks"].items():
        value = "-" if check["value"] is None else check["value"]
        print(f"  {labels[key]:24}{value:>10}   target {check['target']:<8} {check['verdict']}")
    print(f"\n  whole invocation: {result['seconds']:.0f} s")


# --- main -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--events",
        type=int,
        default=500_000,
        help="(a) usage events to generate besides the demo's (default 500,000)",
    )
    parser.add_argument(
        "--organizations-daily",
        type=int,
        default=1_000,
        help="(b) generated organizations, besides the two demo ones (default 1,000)",
    )
    parser.add_argument(
        "--history-days",
        type=int,
        default=365,
        help="(b) days of history before the new day (default 365)",
    )
    parser.add_argument("--years", type=int, default=5, help="(c) years of landed days (default 5)")
    parser.add_argument(
        "--only", default="a,b,c", help="the scenarios to run, comma-separated (default a,b,c)"
    )
    parser.add_argument(
        "--home", help="folder for the scenarios' state folders (default: a fresh temporary folder)"
    )
    parser.add_argument(
        "--keep", action="store_true", help="leave the servers running and the files in place"
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the figures as one JSON object instead of the report",
    )
    args = parser.parse_args(argv)
    args.only = [key.strip() for key in args.only.split(",") if key.strip()]
    unknown = set(args.only) - set(SCENARIOS)
    if unknown or not args.only:
        parser.error(f"--only takes some of {','.join(SCENARIOS)}, not {','.join(sorted(unknown))}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not CLI.exists():
        raise SystemExit(f"no {CLI}: run this script with the virtualenv's Python")
    yesterday = clock.today() - timedelta(days=1)
    remove = args.home is None
    base = (
        Path(args.home).resolve()
        if args.home
        else Path(tempfile.mkdtemp(prefix="odavl-pipeline-bench-"))
    )
    base.mkdir(parents=True, exist_ok=True)
    base.chmod(0o755)
    result: dict[str, Any] = {}
    try:
        for key in args.only:
            with scenario_environment(base, key, remove, args.keep) as env:
                result.setdefault("server", server_facts(env, SERVER_SETTINGS))
                if key == "a":
                    result["run_vs_copy"] = run_vs_copy(env, args.events, yesterday)
                elif key == "b":
                    result["daily_run"] = daily_run(
                        env, args.organizations_daily, args.history_days, latest_weekday(yesterday)
                    )
                else:
                    result["first_file"] = first_file(env, args.years, yesterday)
    finally:
        if remove and not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    result["checks"] = summarize(result)
    result["seconds"] = round(time.time() - STARTED, 1)
    if args.json:
        print(json.dumps(result))
    else:
        print_report(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
