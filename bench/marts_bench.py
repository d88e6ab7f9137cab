#!/usr/bin/env python
"""Marts benchmark: the full rebuild, the incremental run after one new day, and the floor.

One run sets up its own PostgreSQL database and fills `usage_events` with set-based SQL
(about ten million events over a year for a thousand organizations by default; the marts'
triggers mark the changed days as the rows land, as they do in production), then measures:

  30 days    the latest 30 days of history only: a full rebuild of the marts, then one new
             day and the incremental run that follows it;
  365 days   the 335 older days added: a full rebuild over the whole year (the headline
             events/s figure), then another new day and the incremental run after it;
  floor      DuckDB's own aggregation of the rows of that full rebuild, already in an
             in-memory DuckDB (loaded through Arrow beforehand, untimed): usage per
             organization, UTC day and metric, and usage per billing period.

Each build is `refresh_marts(settings, full=…, as_of=…)` in a child process whose wall clock
and peak RSS are measured; inside it, the builder's steps and DuckDB statements are timed.
It prints every figure against its target. It only prints; it asserts nothing.

    python bench/marts_bench.py [--events N] [--organizations N] [--days N] [--recent-days N]
                                [--home DIR] [--keep] [--json] [--no-steps]

With ODAVL_DATABASE_URL set it uses that server (database `odavl_marts_bench`, dropped and
recreated); otherwise it starts an embedded PostgreSQL under its state folder.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import common
import psycopg
from common import Environment, log, run_child, server_facts, tear_down, throttled

from odavl_pipeline.billing.plans import period_containing, periods_covering
from odavl_pipeline.settings import Settings

BENCH_DB = "odavl_marts_bench"
SERVER_SETTINGS = (
    "server_version",
    "shared_buffers",
    "work_mem",
    "fsync",
    "synchronous_commit",
    "max_wal_size",
)  # what matters most for reads and writes
END_DAY = date(2025, 12, 31)  # the last day of history; the new days follow it
AS_OF_AFTER_MIDNIGHT = timedelta(minutes=15)  # each build runs just after its last day
SLOTS = 10_000  # organizations are drawn from this many slots, in proportion to their weight

# Shares of the synthetic generator (odavl_pipeline.generate): event types, the
# share of quantities above 1 (non-API events only), the tiers of the fleet.
EVENT_TYPE_CUMULATIVE = (
    ("api_call", 0.72),
    ("insight_analysis", 0.87),
    ("autopilot_job", 0.93),
    ("guardian_test_run", 1.0),
)
TIER_WEIGHTS = {"FREE": 0.4, "PRO": 1.2, "ENTERPRISE": 3.5}  # relative usage per organization

TARGET_FULL_RATE = 500_000  # full rebuild, usage events per second end to end, at least
TARGET_INCREMENTAL = 0.1  # incremental / full rebuild seconds (365 days), below
TARGET_GROWTH = 1.5  # incremental at 365 days / at 30 days, at most


def midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def as_of_after(day: date) -> datetime:
    """The build moment for history ending with `day`: just after its end."""
    return midnight(day + timedelta(days=1)) + AS_OF_AFTER_MIDNIGHT


# --- setup ----------------------------------------------------------------------------


def set_up(home_arg: str | None) -> Environment:
    """The benchmark's server, database and state folder, without a reused folder's marts."""
    env = common.set_up(home_arg, BENCH_DB)
    for stale in (marts_path(env), marts_path(env).with_name("marts.facts")):
        shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(
            missing_ok=True
        )
    return env


def marts_path(env: Environment) -> Path:
    return env.home / "marts.duckdb"


def settle(env: Environment, vacuum: bool) -> None:
    """Before a measurement: VACUUM ANALYZE after a bulk load (as autovacuum would have by
    then, and so no build pays for hint bits), then a checkpoint so no build pays for
    another's dirty buffers."""
    with psycopg.connect(env.dsn, autocommit=True) as conn:
        if vacuum:
            conn.execute("VACUUM (ANALYZE) usage_events")
        conn.execute("CHECKPOINT")


# --- reference data -----------------------------------------------------------------


@dataclass
class Fleet:
    """The organizations' ordinal, id, slug, tier and relative weight."""

    orgs: list[tuple[int, int, str, str, float]]

    @property
    def tiers(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for _, _, _, tier, _ in self.orgs:
            counts[tier] = counts.get(tier, 0) + 1
        return counts


def org_tier(ordinal: int) -> str:
    """A fixed mix: 55 % FREE, 35 % PRO, 10 % ENTERPRISE."""
    slot = ordinal % 20
    return "FREE" if slot < 11 else "PRO" if slot < 18 else "ENTERPRISE"


def base_anchor(ordinal: int) -> datetime:
    """A billing anchor: every day of the month (29–31 included, so clamping happens), and
    various times of day."""
    return datetime(
        2020, 1, 1 + (ordinal * 7) % 31, (ordinal * 5) % 24, (ordinal * 13) % 60, tzinfo=UTC
    )


def create_fleet(env: Environment, organizations: int, seed: int, now: datetime) -> Fleet:
    """Organizations, 1–2 projects each, one subscription each, and the helper tables the
    generator draws from (`bench_orgs`, `bench_slots`), all with set-based SQL."""
    rng = random.Random(seed)
    ordinals = list(range(1, organizations + 1))
    tiers = [org_tier(n) for n in ordinals]
    weights = [TIER_WEIGHTS[t] * rng.uniform(0.5, 1.5) for t in tiers]
    starts, ends = [], []
    for n in ordinals:  # the console's current period, on each organization's monthly series
        start, end = period_containing(base_anchor(n), now)
        starts.append(start)
        ends.append(end)
    statuses = [
        "TRIALING" if n % 50 == 0 else "PAST_DUE" if n % 37 == 0 else "ACTIVE" for n in ordinals
    ]
    analyses_override = [250 if n % 40 == 3 else None for n in ordinals]  # a few custom plans
    with psycopg.connect(env.dsn) as conn:
        conn.execute(
            "INSERT INTO organizations (name, slug, tier, status) SELECT format('Bench org %%s', n), "
            "format('bench-%%s', lpad(n::text, 4, '0')), t::tier, 'ACTIVE' "
            "FROM unnest(%s::int[], %s::text[]) AS o(n, t) ORDER BY n",
            (ordinals, tiers),
        )
        conn.execute(
            "INSERT INTO projects (organization_id, name, slug, status) "
            "SELECT o.id, format('Project %s', p), format('project-%s', p), 'ACTIVE' "
            "FROM organizations AS o, generate_series(1, 1 + o.id % 2) AS p ORDER BY o.id, p"
        )
        conn.execute(
            "INSERT INTO subscriptions (organization_id, status, analyses_limit, "
            "current_period_start, current_period_end) "
            "SELECT o.id, s.status::subscription_status, s.analyses, s.start_at, s.end_at "
            "FROM unnest(%s::text[], %s::text[], %s::int[], %s::timestamptz[], %s::timestamptz[]) "
            "AS s(slug, status, analyses, start_at, end_at) JOIN organizations AS o USING (slug)",
            ([f"bench-{n:04d}" for n in ordinals], statuses, analyses_override, starts, ends),
        )
        conn.execute(
            "CREATE TABLE bench_orgs AS SELECT o.n AS ordinal, g.id AS org_id, g.slug, "
            "min(p.id) AS first_project, count(p.id)::int AS n_projects "
            "FROM unnest(%s::int[]) AS o(n) "
            "JOIN organizations AS g ON g.slug = format('bench-%%s', lpad(o.n::text, 4, '0')) "
            "JOIN projects AS p ON p.organization_id = g.id GROUP BY 1, 2, 3",
            (ordinals,),
        )
        conn.execute("ALTER TABLE bench_orgs ADD PRIMARY KEY (ordinal)")
        slots = weighted_slots(weights)
        conn.execute(
            "CREATE TABLE bench_slots AS SELECT s - 1 AS slot, n AS ordinal "
            "FROM unnest(%s::int[]) WITH ORDINALITY AS u(n, s)",
            (slots,),
        )
        conn.execute("ALTER TABLE bench_slots ADD PRIMARY KEY (slot)")
        rows = conn.execute(
            "SELECT ordinal, org_id, slug FROM bench_orgs ORDER BY ordinal"
        ).fetchall()
    return Fleet([(n, org_id, slug, tiers[n - 1], weights[n - 1]) for n, org_id, slug in rows])


def weighted_slots(weights: list[float]) -> list[int]:
    """SLOTS ordinals (1-based), each organization holding a share of slots ∝ its weight."""
    total = sum(weights)
    shares = [max(1, round(SLOTS * w / total)) for w in weights]
    while sum(shares) > SLOTS:  # rounding: take the excess from the largest
        shares[shares.index(max(shares))] -= 1
    while sum(shares) < SLOTS:
        shares[shares.index(max(shares))] += 1
    return [n for n, share in enumerate(shares, start=1) for _ in range(share)]


# --- usage events ---------------------------------------------------------------------

# One UTC day of usage in one statement: draws from hashes of (day, n), so the data are the
# same in every run. Event ids are UUID-shaped (as the API's) but ordered by day and number.
_TYPE_CASE = (
    "CASE "
    + " ".join(f"WHEN u_type < {edge} THEN '{name}'" for name, edge in EVENT_TYPE_CUMULATIVE[:-1])
    + f" ELSE '{EVENT_TYPE_CUMULATIVE[-1][0]}' END"
)

DAY_INSERT = f"""
INSERT INTO usage_events (organization_id, event_id, event_type, occurred_at, quantity,
    project_id, user_email, payload, file_id, line_no, ingested_at)
SELECT o.org_id,
       lpad(to_hex(%(day_no)s::int), 8, '0') || '-0000-4000-8000-' || lpad(to_hex(r.n), 12, '0'),
       r.event_type::usage_event_type,
       r.occurred_at,
       CASE WHEN r.event_type <> 'api_call' AND r.u_quantity >= 0.94 THEN 2 + r.misc %% 9 ELSE 1 END,
       CASE WHEN r.u_project < CASE WHEN r.event_type = 'api_call' THEN 0.4 ELSE 0.85 END
            THEN o.first_project + r.misc %% o.n_projects END,
       CASE WHEN r.misc %% 10 < 9 THEN 'user' || r.misc %% 7 || '@' || o.slug || '.example' END,
       jsonb_build_object('client', (ARRAY['cli', 'vscode', 'ci', 'web'])[1 + r.misc %% 4],
                          'duration_ms', 12 + r.misc %% 2400, 'status', 200),
       %(file_id)s,
       row_number() OVER (ORDER BY r.occurred_at, r.n),
       r.occurred_at + (60 + r.misc %% 540) * interval '1 second'
FROM (SELECT n, {_TYPE_CASE} AS event_type, u_quantity, u_project, misc, org_slot,
             %(midnight)s::timestamptz + (at_us %% 86400000000) * interval '1 microsecond'
               AS occurred_at
      FROM (SELECT n,
                   (hashint8extended(k, 1) & 2147483647) / 2147483648.0 AS u_type,
                   (hashint8extended(k, 2) & 2147483647) / 2147483648.0 AS u_quantity,
                   (hashint8extended(k, 3) & 2147483647) / 2147483648.0 AS u_project,
                   hashint8extended(k, 4) & 2147483647 AS misc,
                   hashint8extended(k, 5) & 2147483647 AS org_slot,
                   hashint8extended(k, 6) & 9223372036854775807 AS at_us
            FROM (SELECT n, %(day_no)s::bigint * 100000000 + n AS k
                  FROM generate_series(1, %(events)s) AS n) AS keys) AS hashed) AS r
JOIN bench_slots AS s ON s.slot = r.org_slot %% {SLOTS}
JOIN bench_orgs AS o ON o.ordinal = s.ordinal
ORDER BY r.occurred_at, r.n
"""


def day_number(day: date) -> int:
    return (day - date(2000, 1, 1)).days


def load_days(env: Environment, days: list[date], per_day: dict[date, int], label: str) -> float:
    """Insert each day's events in its own transaction, with a ledger row as its file; seconds."""
    progress = throttled()
    started = time.perf_counter()
    total = 0
    with psycopg.connect(env.dsn) as conn:
        for index, day in enumerate(days, start=1):
            events = per_day[day]
            with conn.transaction():
                file_id = conn.execute(
                    "INSERT INTO ingested_files (source, path, day, sha256, size_bytes, lines, "
                    "accepted, duplicate, pending, rejected, run_id, ingested_at) VALUES "
                    "('usage_events', %s, %s, md5(%s) || md5(%s), 0, %s, %s, 0, 0, 0, 'bench', %s) "
                    "RETURNING id",
                    (
                        f"usage_events/{day:%Y/%m/%d}/usage-bench.ndjson",
                        day,
                        str(day),
                        label,
                        events,
                        events,
                        midnight(day + timedelta(days=1)),
                    ),
                ).fetchone()[0]
                conn.execute(
                    DAY_INSERT,
                    {
                        "day_no": day_number(day),
                        "file_id": file_id,
                        "midnight": midnight(day),
                        "events": events,
                    },
                )
            total += events
            progress(f"{label}: {index}/{len(days)} days, {total:,} events")
    seconds = time.perf_counter() - started
    log(
        f"{label}: {total:,} events over {len(days)} days in {seconds:.1f} s "
        f"({total / seconds:,.0f} events/s, untimed)"
    )
    return seconds


def events_per_day(history: list[date], new_days: list[date], events: int) -> dict[date, int]:
    """`events` spread evenly over the history (the first days take the remainder); each new
    day gets the average."""
    base, extra = divmod(events, len(history))
    plan = {day: base + (1 if index < extra else 0) for index, day in enumerate(history)}
    plan.update({day: round(events / len(history)) for day in new_days})
    return plan


def table_facts(env: Environment) -> dict[str, Any]:
    with psycopg.connect(env.dsn) as conn:
        rows, size = conn.execute(
            "SELECT count(*), pg_total_relation_size('usage_events') FROM usage_events"
        ).fetchone()
        changes = conn.execute("SELECT count(*) FROM mart_changes").fetchone()[0]
    return {"rows": rows, "mib": round(size / 2**20, 1), "mart_changes": changes}


# --- a build, in a child process --------------------------------------------------------


def run_build(env: Environment, label: str, full: bool, as_of: datetime, steps: bool) -> dict:
    """`refresh_marts` in a child process; its report, wall clock, steps and peak RSS."""
    result_path = env.home / "build-result.json"
    spec = {
        "dsn": env.dsn,
        "home": str(env.home),
        "marts": str(marts_path(env)),
        "full": full,
        "as_of": as_of.isoformat(),
        "result": str(result_path),
        "steps": steps,
    }
    log(
        f"{label}: {'full rebuild' if full else 'incremental run'} as of {as_of:%Y-%m-%d %H:%M}Z "
        f"in a child process"
    )
    run = run_child(__file__, "--child-build", spec, result_path)
    result = run.result
    result.update(
        label=label, process_seconds=round(run.process_seconds, 3), peak_rss_mib=run.peak_rss_mib
    )
    result["events_per_s"] = round(result["usage_events_read"] / result["seconds"], 1)
    log(
        f"{label}: {result['usage_events_read']:,} events read, "
        f"{result['periods_recomputed']:,} periods recomputed in {result['seconds']:.2f} s "
        f"(peak RSS {result['peak_rss_mib']:,.0f} MiB)"
    )
    return result


# The builder's own names of the steps that wrap its file, as the report shows them.
STEP_LABELS = {
    "open": "open (copy of the published file)",
    "publish": "publish (checkpoint, rename, old facts removed)",
}


class Spans:
    """Wall-clock totals of nested, labelled spans, keyed by their path ("a > b").

    A `StepTimer` (odavl_pipeline.marts.timing): `refresh_marts(..., timer=spans)` reports
    each step of the build and each DuckDB statement to it."""

    def __init__(self) -> None:
        self.stack: list[str] = []
        self.totals: dict[str, list[float]] = {}  # path -> [count, seconds], in order of start

    @contextmanager
    def span(self, label: str) -> Iterator[None]:
        self.stack.append(label)
        entry = self.totals.setdefault(" > ".join(self.stack), [0, 0.0])
        started = time.perf_counter()
        try:
            yield
        finally:
            entry[0] += 1
            entry[1] += time.perf_counter() - started
            self.stack.pop()

    def step(self, name: str) -> AbstractContextManager[None]:
        return self.span(STEP_LABELS.get(name, name))

    def statement(self, sql: str) -> AbstractContextManager[None]:
        return self.span("sql: " + statement_label(sql))


def statement_label(query: str) -> str:
    text = re.sub(r"\s+", " ", query).strip()
    text = re.sub(r"'[^']*'", "'…'", text)  # literals such as time zones
    return text[:72]


def child_build(spec_json: str) -> None:
    """The child side of a build: `refresh_marts` exactly as the marts asset calls it."""
    spec = json.loads(spec_json)
    spans = Spans()
    from odavl_pipeline.marts.build import refresh_marts

    settings = Settings.from_env(
        {
            "ODAVL_HOME": spec["home"],
            "ODAVL_DATABASE_URL": spec["dsn"],
            "ODAVL_MARTS_PATH": spec["marts"],
        }
    )
    timeline: list[tuple[float, str]] = []
    started = time.perf_counter()

    def progress(message: str) -> None:
        timeline.append((round(time.perf_counter() - started, 3), message))
        log(f"  {message}")

    report = refresh_marts(
        settings,
        full=spec["full"],
        as_of=datetime.fromisoformat(spec["as_of"]),
        grace=settings.billing_grace,
        progress=progress,
        timer=spans if spec["steps"] else None,
    )
    seconds = time.perf_counter() - started
    Path(spec["result"]).write_text(
        json.dumps(
            {
                "full": report.full,
                "seconds": seconds,
                "report_seconds": report.seconds,
                "usage_events_read": report.usage_events_read,
                "periods_recomputed": report.periods_recomputed,
                "days": report.days,
                "rows": report.rows,
                "timeline": timeline,
                "steps": {
                    path: [int(count), round(total, 4)]
                    for path, (count, total) in spans.totals.items()
                },
            }
        )
    )


# --- the floor: DuckDB over the same rows in memory -------------------------------------


def floor(env: Environment, fleet: Fleet, as_of: datetime, repeat: int = 3) -> dict[str, Any]:
    """Load the usage rows into an in-memory DuckDB (untimed), then time the two aggregations;
    the best of `repeat` runs of each."""
    import adbc_driver_postgresql.dbapi as adbc
    import duckdb
    import pyarrow as pa

    log("floor: loading the usage rows into an in-memory DuckDB (untimed)")
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    with adbc.connect(env.dsn) as pg, pg.cursor() as cur:
        cur.execute(
            "SELECT organization_id AS org_id, event_type::text AS event_type, occurred_at, "
            "quantity::bigint AS quantity FROM usage_events"
        )
        con.register("arrow_input", cur.fetch_record_batch())
        con.execute("CREATE TABLE events AS FROM arrow_input")
        con.unregister("arrow_input")
    rows = con.execute("SELECT count(*), min(occurred_at) FROM events").fetchall()[0]
    with psycopg.connect(env.dsn) as conn:
        anchors = dict(
            conn.execute(
                "SELECT organization_id, current_period_start FROM subscriptions"
            ).fetchall()
        )
    periods = [
        (org_id, start, end)
        for org_id, anchor in anchors.items()
        for start, end in periods_covering(anchor.astimezone(UTC), rows[1], as_of)
    ]
    con.register(
        "period_input",
        pa.table(
            {
                "org_id": pa.array([p[0] for p in periods], pa.int32()),
                "period_start": pa.array([p[1] for p in periods], pa.timestamp("us", "UTC")),
                "period_end": pa.array([p[2] for p in periods], pa.timestamp("us", "UTC")),
            }
        ),
    )
    con.execute("CREATE TABLE periods AS FROM period_input")
    con.unregister("period_input")
    queries = {
        "usage_daily": (
            "CREATE OR REPLACE TABLE floor_daily AS SELECT org_id, "
            "(occurred_at AT TIME ZONE 'UTC')::DATE AS day, event_type, sum(quantity) AS quantity, "
            "count(*) AS events FROM events GROUP BY ALL"
        ),
        "billing_periods": (
            "CREATE OR REPLACE TABLE floor_periods AS SELECT p.org_id, p.period_start, "
            "e.event_type, sum(e.quantity) AS used FROM events AS e JOIN periods AS p "
            "ON p.org_id = e.org_id AND e.occurred_at >= p.period_start "
            "AND e.occurred_at < p.period_end GROUP BY ALL"
        ),
    }
    result: dict[str, Any] = {
        "rows": rows[0],
        "periods": len(periods),
        "threads": con.execute("SELECT current_setting('threads')").fetchall()[0][0],
    }
    for name, query in queries.items():
        best = float("inf")
        for _ in range(repeat):
            started = time.perf_counter()
            con.execute(query)
            best = min(best, time.perf_counter() - started)
        table = "floor_daily" if name == "usage_daily" else "floor_periods"
        groups = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
        result[name] = {"seconds": round(best, 4), "groups": groups}
        log(f"floor: {name} aggregation of {rows[0]:,} rows in {best:.3f} s ({groups:,} groups)")
    con.close()
    return result


# --- report -----------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def summarize(builds: dict[str, dict], floor_result: dict[str, Any]) -> dict[str, Any]:
    """The figures with a target, each with its verdict, and the ratios shown for information."""
    full30, inc30, full365, inc365 = (
        builds[k] for k in ("full_30", "incremental_30", "full_365", "incremental_365")
    )
    rate = full365["events_per_s"]
    ratio365 = inc365["seconds"] / full365["seconds"]
    growth = inc365["seconds"] / inc30["seconds"]
    both_floors = (
        floor_result["usage_daily"]["seconds"] + floor_result["billing_periods"]["seconds"]
    )
    return {
        "full_rebuild_events_per_s": {
            "value": round(rate),
            "target": f">= {TARGET_FULL_RATE:,}",
            "verdict": verdict(rate >= TARGET_FULL_RATE),
        },
        "incremental_vs_full_365": {
            "value": round(ratio365, 4),
            "target": f"< {TARGET_INCREMENTAL}",
            "verdict": verdict(ratio365 < TARGET_INCREMENTAL),
        },
        "incremental_365_vs_30": {
            "value": round(growth, 3),
            "target": f"<= {TARGET_GROWTH}",
            "verdict": verdict(growth <= TARGET_GROWTH),
        },
        "info": {
            "incremental_vs_full_30": round(inc30["seconds"] / full30["seconds"], 4),
            "history_ratio": round(full365["usage_events_read"] / full30["usage_events_read"], 2),
            "full_vs_floor_usage_daily": round(
                full365["seconds"] / floor_result["usage_daily"]["seconds"], 1
            ),
            "full_vs_floor_both": round(full365["seconds"] / both_floors, 1),
        },
    }


def print_report(result: dict[str, Any]) -> None:
    builds, checks, server, fl = (
        result["builds"],
        result["checks"],
        result["server"],
        result["floor"],
    )
    gen = result["generate"]
    print(
        f"\nMarts benchmark: {gen['events']:,} usage events over {gen['days']} days "
        f"(+{gen['new_day_events']:,} on each of 2 new days) for {gen['organizations']:,} "
        f"organizations ({', '.join(f'{n} {t}' for t, n in gen['tiers'].items())}); "
        f"usage_events {gen['table_mib']:,.0f} MiB; generated in {gen['seconds']:.0f} s"
    )
    print(
        f"PostgreSQL {server['server_version']}: shared_buffers={server['shared_buffers']} "
        f"work_mem={server['work_mem']} fsync={server['fsync']} "
        f"synchronous_commit={server['synchronous_commit']}; DuckDB {result['duckdb']}, "
        f"{fl['threads']} threads; {os.cpu_count()} CPUs\n"
    )
    print(
        f"  {'build':26}{'history':>9}{'events read':>13}{'periods':>9}{'seconds':>9}"
        f"{'events/s':>11}{'peak RSS':>10}"
    )
    recent, days = gen["recent_days"], gen["days"]
    for key, label in (
        ("full_30", f"{recent} days: full rebuild"),
        ("incremental_30", f"{recent} days: +1 day, incr."),
        ("full_365", f"{days} days: full rebuild"),
        ("incremental_365", f"{days} days: +1 day, incr."),
    ):
        b = builds[key]
        print(
            f"  {label:26}{b['history_days']:>7} d{b['usage_events_read']:>13,}"
            f"{b['periods_recomputed']:>9,}{b['seconds']:>9.2f}{b['events_per_s']:>11,.0f}"
            f"{b['peak_rss_mib']:>6,.0f} MiB"
        )
    print(
        f"\n  floor, DuckDB in memory over the {fl['rows']:,} rows of the {days}-day rebuild "
        f"(best of 3):"
    )
    print(
        f"    usage per org, UTC day, metric   {fl['usage_daily']['seconds']:>8.3f} s "
        f"({fl['usage_daily']['groups']:,} groups)"
    )
    print(
        f"    usage per org, billing period    {fl['billing_periods']['seconds']:>8.3f} s "
        f"({fl['billing_periods']['groups']:,} groups, {fl['periods']:,} periods)"
    )
    info = checks["info"]
    print(
        f"    {days}-day full rebuild / floor: {info['full_vs_floor_usage_daily']}x the daily "
        f"aggregation, {info['full_vs_floor_both']}x both\n"
    )
    for label, key in (
        ("full rebuild, events/s", "full_rebuild_events_per_s"),
        (f"incremental / full, {days} d", "incremental_vs_full_365"),
        (f"incremental {days} d / {recent} d", "incremental_365_vs_30"),
    ):
        check = checks[key]
        value = f"{check['value']:,}" if isinstance(check["value"], int) else f"{check['value']}"
        print(f"  {label:28}{value:>10}   target {check['target']:<11} {check['verdict']}")
    print(
        f"  (incremental / full at {recent} days: {info['incremental_vs_full_30']}; the {days}-day rebuild "
        f"read {info['history_ratio']}x the events of the 30-day one)"
    )
    if any(b["steps"] for b in builds.values()):
        print_steps(builds, recent, days)


def print_steps(builds: dict[str, dict], recent: int, days: int) -> None:
    """Seconds per builder step (two levels) and the slowest DuckDB statements, per build."""
    keys = ["full_30", "incremental_30", "full_365", "incremental_365"]
    labels = (f"{recent} d full", f"{recent} d +1", f"{days} d full", f"{days} d +1")
    header = "".join(f"{label:>11}" for label in labels)
    paths: list[str] = []
    for key in keys:
        paths.extend(p for p in builds[key]["steps"] if p not in paths)

    def row(label: str, path: str) -> str:
        cells = "".join(
            f"{builds[k]['steps'][path][1]:>11.3f}" if path in builds[k]["steps"] else f"{'':>11}"
            for k in keys
        )
        return f"  {label:64}{cells}"

    print(f"\n  seconds per step inside refresh_marts{'':27}{header}")
    for key_label in ("seconds, whole call",):
        cells = "".join(f"{builds[k]['seconds']:>11.3f}" for k in keys)
        print(f"  {key_label:64}{cells}")
    for path in paths:
        parts = path.split(" > ")
        named = [p for p in parts if not p.startswith("sql: ")]
        if len(named) != len(parts) or len(parts) > 3:
            continue
        print(row("  " * (len(parts) - 1) + parts[-1], path))
    statements: dict[str, dict[str, float]] = {}
    for key in keys:
        for path, (_, seconds) in builds[key]["steps"].items():
            last = path.split(" > ")[-1]
            if last.startswith("sql: "):
                owner = [p for p in path.split(" > ") if not p.startswith("sql: ")][-1]
                cell = statements.setdefault(f"{owner}: {last[5:]}", {})
                cell[key] = cell.get(key, 0.0) + seconds
    slowest = sorted(statements.items(), key=lambda item: -max(item[1].values()))[:14]
    print(f"\n  slowest DuckDB statements (step: statement){'':21}{header}")
    for label, cells in slowest:
        text = label if len(label) <= 64 else label[:63] + "…"
        print(
            f"  {text:64}"
            + "".join(f"{cells[k]:>11.3f}" if k in cells else f"{'':>11}" for k in keys)
        )


# --- main -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--events",
        type=int,
        default=10_000_000,
        help="usage events over the whole history (default 10,000,000)",
    )
    parser.add_argument(
        "--organizations",
        type=int,
        default=1_000,
        help="organizations, each with a subscription (default 1,000)",
    )
    parser.add_argument("--days", type=int, default=365, help="days of history (default 365)")
    parser.add_argument(
        "--recent-days",
        type=int,
        default=30,
        help="days of history of the first phase (default 30)",
    )
    parser.add_argument("--seed", type=int, default=7, help="seed of the fleet (default 7)")
    parser.add_argument("--home", help="state folder (default: a fresh temporary folder)")
    parser.add_argument(
        "--keep", action="store_true", help="leave the server, database and files in place"
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the figures as one JSON object instead of the report",
    )
    parser.add_argument(
        "--no-steps",
        action="store_true",
        help="do not time the builder's steps (no timer passed to refresh_marts)",
    )
    parser.add_argument("--child-build", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not 0 < args.recent_days < args.days:
        parser.error("--recent-days must be between 1 and --days - 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child_build:
        child_build(args.child_build)
        return 0
    import duckdb

    history = [END_DAY - timedelta(days=n) for n in range(args.days - 1, -1, -1)]
    recent, older = history[-args.recent_days :], history[: -args.recent_days]
    new_days = [END_DAY + timedelta(days=1), END_DAY + timedelta(days=2)]
    per_day = events_per_day(history, new_days, args.events)
    steps = not args.no_steps
    env = set_up(args.home)
    try:
        fleet = create_fleet(env, args.organizations, args.seed, midnight(new_days[-1]))
        log(f"{len(fleet.orgs):,} organizations ({fleet.tiers}), with projects and subscriptions")
        builds: dict[str, dict] = {}
        generate_seconds = load_days(env, recent, per_day, f"the latest {len(recent)} days")
        settle(env, vacuum=True)
        builds["full_30"] = run_build(env, "30 days", True, as_of_after(recent[-1]), steps)
        generate_seconds += load_days(env, new_days[:1], per_day, "a new day")
        settle(env, vacuum=False)
        builds["incremental_30"] = run_build(
            env, "30 days + 1", False, as_of_after(new_days[0]), steps
        )
        generate_seconds += load_days(env, older, per_day, f"the {len(older)} older days")
        settle(env, vacuum=True)
        table = table_facts(env)
        builds["full_365"] = run_build(
            env, f"{args.days} days", True, as_of_after(new_days[0]), steps
        )
        floor_result = floor(env, fleet, as_of_after(new_days[0]))
        generate_seconds += load_days(env, new_days[1:], per_day, "another new day")
        settle(env, vacuum=False)
        builds["incremental_365"] = run_build(
            env, f"{args.days} days + 1", False, as_of_after(new_days[1]), steps
        )
        for key, days in (
            ("full_30", len(recent)),
            ("incremental_30", len(recent) + 1),
            ("full_365", args.days + 1),
            ("incremental_365", args.days + 2),
        ):
            builds[key]["history_days"] = days
        result = {
            "events": args.events,
            "generate": {
                "events": sum(per_day[d] for d in history),
                "days": args.days,
                "recent_days": args.recent_days,
                "new_day_events": per_day[new_days[0]],
                "organizations": len(fleet.orgs),
                "tiers": fleet.tiers,
                "seconds": round(generate_seconds, 1),
                "table_mib": table["mib"],
            },
            "server": server_facts(env, SERVER_SETTINGS),
            "duckdb": duckdb.__version__,
            "builds": builds,
            "floor": floor_result,
        }
        result["checks"] = summarize(builds, floor_result)
    finally:
        tear_down(env, args.keep)
    if args.json:
        print(json.dumps(result))
    else:
        print_report(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
