#!/usr/bin/env python
"""Corrections benchmark: a batch that voids and adds a million events, and a one-event
amendment, with `odavl-pipeline corrections` as users run it, beside a from-scratch rebuild of
the marts measured in the same run.

One invocation sets up its own database and state folder (as `marts_bench.py` does), fills
`usage_events` with set-based SQL (a year ending yesterday for a thousand organizations, ten
million events by default), plus `--batch-events` more events of one organization over its
last 30 days, across its current period and the one before (closed by the first build), then:

  rebuild      `refresh_marts(full=True)` in a child process: the baseline;
  big batch    `corrections create`, `void --where "quantity >= 1"` (every event of the
               window), `add` of a file of as many new events, `preview --json`, `commit`
               (its transaction, then the marts rebuilt by a Dagster run): each a subprocess,
               with its wall clock and peak RSS;
  one event    `create`, `add` of one amended event, `commit`, end to end;
  flat memory  with `--small-batch N` (100,000 by default; 0 skips it) the big batch's steps
               again for N events of another organization first: peak RSS against the batch's
               size.

It prints each figure against its target (preview < 30 s, commit with the marts < 60 s, one
event < 5 s) and the ratio of the commit to the rebuild. It only prints; it asserts nothing.

    python bench/corrections_bench.py [--events N] [--organizations N] [--batch-events N]
                                      [--small-batch N] [--home DIR] [--keep] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from common import Environment, log, run_child, tear_down
from marts_bench import (
    create_fleet,
    events_per_day,
    load_days,
    marts_path,
    set_up,
    settle,
)

TARGETS = {"preview": 30.0, "commit": 60.0, "one_event": 5.0}

# `count` more events of one organization, evenly over [start, end), in one statement
BATCH_EVENTS = """
    INSERT INTO usage_events (organization_id, event_id, event_type, occurred_at, quantity,
                              project_id, user_email, payload, file_id, line_no, ingested_at)
    SELECT %(org)s, %(prefix)s::text || n, 'insight_analysis', at, 1, NULL, NULL,
           jsonb_build_object('event_id', %(prefix)s::text || n, 'org', %(slug)s::text,
                              'event_type', 'insight_analysis', 'occurred_at', at, 'quantity', 1),
           %(file)s, n, at + interval '1 minute'
    FROM (SELECT n, %(start)s::timestamptz + (%(end)s::timestamptz - %(start)s::timestamptz)
                    * (n::float8 / %(count)s::int) AS at
          FROM generate_series(1, %(count)s::int) AS n) AS e
"""


def add_batch_events(env: Environment, org: tuple, count: int, start: datetime, end: datetime):
    """`count` analyses of `org` (ordinal, id, slug, …) in [start, end), with a ledger row."""
    with psycopg.connect(env.dsn) as conn:
        file_id = conn.execute(
            "INSERT INTO ingested_files (source, path, day, sha256, size_bytes, lines, accepted, "
            "duplicate, pending, rejected, run_id, ingested_at) VALUES ('usage_events', %s, %s, "
            "md5(%s) || md5(%s), 0, %s, %s, 0, 0, 0, 'bench', now()) RETURNING id",
            (f"usage_events/{org[2]}-batch.ndjson", start.date(), org[2], "b", count, count),
        ).fetchone()[0]
        conn.execute(
            BATCH_EVENTS,
            {
                "org": org[1],
                "slug": org[2],
                "prefix": f"{org[2]}-batch-",
                "file": file_id,
                "start": start,
                "end": end,
                "count": count,
            },
        )
    log(f"{count:,} events of {org[2]} from {start:%Y-%m-%d} to {end:%Y-%m-%d}")


def write_additions(path: Path, slug: str, count: int, start: datetime, end: datetime) -> None:
    """`count` new usage records of `slug` in [start, end), NDJSON (untimed)."""
    step = (end - start) / (count + 1)
    with path.open("w") as out:
        for n in range(count):
            at = (start + step * (n + 1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            out.write(
                f'{{"event_id":"{slug}-new-{n}","org":"{slug}","event_type":"insight_analysis",'
                f'"occurred_at":"{at}","quantity":1}}\n'
            )


def command(env: Environment, label: str, *args: str) -> dict[str, Any]:
    """`odavl-pipeline ARGS` as a subprocess, as users run it: its wall clock, peak RSS and the
    last line of its standard output."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("ODAVL_", "DAGSTER_", "STRIPE_"))
    }
    environment.update(
        ODAVL_HOME=str(env.home),
        ODAVL_DATABASE_URL=env.url.render_as_string(hide_password=False),
        ODAVL_MARTS_PATH=str(marts_path(env)),
    )
    out_path, err_path = env.home / "command.out", env.home / "command.err"
    with out_path.open("w") as out, err_path.open("w") as err:
        started = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, "-m", "odavl_pipeline.cli", *args],
            stdout=out,
            stderr=err,
            env=environment,
        )
        _, status, usage = os.wait4(child.pid, 0)  # the rusage of this child alone
        seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"`{' '.join(args)}` failed: {err_path.read_text()[-2000:]}")
    peak = round(usage.ru_maxrss / 1024, 1)  # Linux: KiB
    log(f"{label}: {seconds:.2f} s, peak RSS {peak:,.0f} MiB")
    lines = out_path.read_text().strip().splitlines()
    return {"seconds": round(seconds, 3), "peak_rss_mib": peak, "last": lines[-1] if lines else ""}


def batch(
    env: Environment, slug: str, count: int, start: datetime, end: datetime, label: str
) -> dict[str, Any]:
    """A batch of `slug` over [start, end) that voids its every event there and adds `count`
    new ones: each step as users run it."""
    additions = env.home / f"{slug}-additions.ndjson"
    write_additions(additions, slug, count, start, end)
    created = command(
        env,
        f"{label}: create",
        "corrections", "create", "--org", slug, "--start", start.isoformat(),
        "--end", end.isoformat(), "--reason", "benchmark", "--by", "bench",
    )  # fmt: skip
    batch_id = created["last"]
    steps = {
        "void": command(
            env, f"{label}: void", "corrections", "void", batch_id, "--where", "quantity >= 1"
        ),
        "add": command(env, f"{label}: add", "corrections", "add", batch_id, str(additions)),
        "preview": command(env, f"{label}: preview", "corrections", "preview", batch_id, "--json"),
        "commit": command(env, f"{label}: commit", "corrections", "commit", batch_id),
    }
    preview = json.loads(steps["preview"].pop("last"))
    additions.unlink()
    return {"batch": int(batch_id), "events": preview["events"], "steps": steps}


def one_event(env: Environment, slug: str, start: datetime, end: datetime) -> dict[str, Any]:
    """A batch amending one event of `slug`: create, add, commit, end to end."""
    line = env.home / "one.ndjson"
    at = (start + (end - start) / 2).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    line.write_text(
        f'{{"event_id":"{slug}-batch-1","org":"{slug}","event_type":"insight_analysis",'
        f'"occurred_at":"{at}","quantity":3}}\n'
    )
    started = time.perf_counter()
    created = command(
        env,
        "one event: create",
        "corrections", "create", "--org", slug, "--start", start.isoformat(),
        "--end", end.isoformat(), "--reason", "benchmark", "--by", "bench",
    )  # fmt: skip
    command(env, "one event: add", "corrections", "add", created["last"], str(line))
    commit = command(env, "one event: commit", "corrections", "commit", created["last"])
    return {"seconds": round(time.perf_counter() - started, 3), "commit": commit}


def rebuild(env: Environment, as_of: datetime) -> dict[str, Any]:
    """The marts from scratch, `refresh_marts(full=True)` in a child process."""
    result_path = env.home / "rebuild.json"
    spec = {"dsn": env.dsn, "home": str(env.home), "as_of": as_of.isoformat()}
    run = run_child(__file__, "--child-rebuild", spec, result_path)
    log(f"rebuild from scratch: {run.result['seconds']:.2f} s, peak RSS {run.peak_rss_mib} MiB")
    return {**run.result, "peak_rss_mib": run.peak_rss_mib}


def child_rebuild(spec_json: str) -> None:
    from odavl_pipeline.marts.build import refresh_marts
    from odavl_pipeline.settings import Settings

    spec = json.loads(spec_json)
    os.environ.update(ODAVL_HOME=spec["home"], ODAVL_DATABASE_URL=spec["dsn"])
    settings = Settings.from_env()
    started = time.perf_counter()
    report = refresh_marts(settings, full=True, as_of=datetime.fromisoformat(spec["as_of"]))
    Path(spec["home"], "rebuild.json").write_text(
        json.dumps(
            {
                "seconds": round(time.perf_counter() - started, 3),
                "events": report.usage_events_read,
            }
        )
    )


def print_report(result: dict[str, Any]) -> None:
    print(
        f"\nhistory: {result['events']:,} events of {result['organizations']:,} organizations "
        f"over {result['days']} days; batch organization {result['big_org']}"
    )
    rebuild_seconds = result["rebuild"]["seconds"]
    print(
        f"marts rebuilt from scratch: {rebuild_seconds:.2f} s ({result['rebuild']['events']:,} events)"
    )
    for name, run in result["batches"].items():
        events = run["events"]
        print(
            f"\n{name}: {events['voided']:,} voided, {events['added']:,} added, "
            f"{events['amended']:,} amended"
        )
        for step, figures in run["steps"].items():
            target = TARGETS.get(step)
            verdict = (
                f"  target < {target:.0f} s: {'met' if figures['seconds'] < target else 'MISSED'}"
                if target and name == "big batch"
                else ""
            )
            print(
                f"  {step:<8}{figures['seconds']:>9.2f} s  peak RSS {figures['peak_rss_mib']:>7,.0f} MiB"
                f"{verdict}"
            )
        print(
            f"  commit / rebuild from scratch: {run['steps']['commit']['seconds'] / rebuild_seconds:.2f}"
        )
    one = result["one_event"]
    print(
        f"\none amended event: create + add + commit {one['seconds']:.2f} s, the commit "
        f"{one['commit']['seconds']:.2f} s (target < 5 s: "
        f"{'met' if one['commit']['seconds'] < TARGETS['one_event'] else 'MISSED'})"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000, help="history (default 10M)")
    parser.add_argument("--organizations", type=int, default=1_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--batch-events", type=int, default=1_000_000)
    parser.add_argument("--small-batch", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--home", help="state folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the state folder and database")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--child-rebuild", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child_rebuild:
        child_rebuild(args.child_rebuild)
        return 0
    today = datetime.now(UTC).date()
    history = [today - timedelta(days=n) for n in range(args.days, 0, -1)]
    per_day = events_per_day(history, [], args.events)
    now = datetime.now(UTC)
    start = datetime.combine(today - timedelta(days=30), datetime.min.time(), UTC)
    env = set_up(args.home)
    try:
        fleet = create_fleet(env, args.organizations, args.seed, now)
        load_days(env, history, per_day, f"{args.days} days")
        big, small = fleet.orgs[0], fleet.orgs[1]
        add_batch_events(env, big, args.batch_events, start, now - timedelta(hours=1))
        if args.small_batch:
            add_batch_events(env, small, args.small_batch, start, now - timedelta(hours=1))
        settle(env, vacuum=True)
        baseline = rebuild(env, now)  # the marts the commands start from, and the baseline
        batches = {}
        if args.small_batch:
            batches["small batch"] = batch(env, small[2], args.small_batch, start, now, "small")
        batches["big batch"] = batch(env, big[2], args.batch_events, start, now, "big")
        result = {
            "events": args.events + args.batch_events + args.small_batch,
            "organizations": len(fleet.orgs),
            "days": args.days,
            "big_org": big[2],
            "rebuild": baseline,
            "batches": batches,
            "one_event": one_event(env, big[2], start, now),
        }
    finally:
        tear_down(env, args.keep)
    if args.json:
        print(json.dumps(result))
    else:
        print_report(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
