#!/usr/bin/env python
"""Billing benchmark: a backfill of a year of history with plan changes in it, then a rebuild
from scratch, both with `odavl-pipeline run` as users run it; do the closed periods match?

One invocation sets up a fresh state folder (its own ODAVL_HOME, so its own embedded PostgreSQL
and its own Dagster instance) with the CLI:

  1. `db upgrade`; `generate` a year of usage for a thousand organizations (the two demo ones
     besides), 10 usage events per organization a day and nothing of the other sources (0
     errors, attestations and audits a day: their files are empty); `seed --reference` the
     generated reference.json.
  2. Plan changes inside that year, written with SQL, one transaction each, which first sets
     `odavl.plan_effective_at` to the change's time, so that the plan history's trigger
     records a version at that time (docs/marts.md, "Billing periods, closing and late
     usage"). A seeded random sample of about 30 % of the organizations gets one or two
     changes, in the order of their times: upgrades (FREE to PRO with a new subscription, PRO
     to ENTERPRISE with its limits set to NULL), downgrades (ENTERPRISE to PRO; PRO to lower
     custom limits), cancellations (status CANCELED, `canceled_at`, tier FREE) and
     re-anchoring (`current_period_start` moved to the change's time, off the monthly series).
  3. The backfill as one run, timed: `odavl-pipeline run --log-level WARNING --json` ingests
     every landed day and builds the marts, closing every period that ended before it. Then
     the closed rows of `billing_periods` are read from the marts file (DuckDB, read-only) and
     the closes counted in Postgres (`billing_closes`, `billing_close_usage`).
  4. The rebuild from scratch, timed: the marts file and its Parquet facts folder deleted,
     `odavl-pipeline run --full-marts --log-level WARNING --json` (nothing new has landed, so
     the run takes the latest landed day and rebuilds the marts from all of history). The
     closed rows are read again.

It prints the counts, both times and whether every closed period of the rebuild matches the
backfill's exactly (org, period_start, period_end, metric, used, quota, overage; and none
missing on either side), and the result of the Dagster check `closed_as_recorded` in each run
(from the Dagster instance's check executions). It only prints; it asserts nothing.

    python bench/billing_bench.py [--organizations N] [--days N] [--usage-per-day N]
                                  [--changed-share F] [--seed N] [--home DIR] [--keep] [--json]

The subprocesses get the caller's environment without its ODAVL_*, DAGSTER_* and STRIPE_*
variables, and ODAVL_HOME set to the state folder: ODAVL_DATABASE_URL is not honoured.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pipeline_bench
import psycopg
from common import STARTED, Environment, log, server_facts
from pipeline_bench import CLI, SERVER_SETTINGS, odavl

from odavl_pipeline import clock
from odavl_pipeline.db.server import (
    DAGSTER_DB,
    libpq_url,
)
from odavl_pipeline.marts.store import facts_dir, open_marts
from odavl_pipeline.settings import Settings

GENERATE_SEED = 7
CHANGES_SEED = 11
USAGE_PER_DAY = 10  # per organization; the generator scales weekdays up and weekends down
CHANGED_SHARE = 0.3  # organizations with one or two plan changes
MARGIN_DAYS = 10  # no change in the first or last days of the history
CLOSED_COLUMNS = "org, period_start, period_end, metric, used, quota, overage"
CLOSED_SQL = f"SELECT {CLOSED_COLUMNS} FROM billing_periods WHERE closed"
LOWER_LIMITS = (300, 120, 60)  # a PRO "downgrade": custom analyses, fixes, audits limits


# --- state folder -----------------------------------------------------------------------


# --- plan changes -----------------------------------------------------------------------


@dataclass
class Plan:
    """What the script knows of an organization's plan, to pick changes that make sense."""

    org_id: int
    slug: str
    tier: str
    status: str | None  # the subscription's; None without one
    limited: bool = False  # custom limits set by a PRO downgrade

    @property
    def live(self) -> bool:
        return self.status is not None and self.status != "CANCELED"


def change_kinds(plan: Plan) -> list[str]:
    """The changes that apply to this plan now."""
    if not plan.live:
        return ["upgrade"]
    kinds = ["cancellation", "reanchor"]
    if plan.tier == "PRO":
        kinds.append("upgrade")
        if not plan.limited:
            kinds.append("downgrade")
    elif plan.tier == "ENTERPRISE":
        kinds.append("downgrade")
    return kinds


def apply_change(conn: psycopg.Connection, plan: Plan, kind: str, at: datetime) -> None:
    """One plan change, in a transaction of its own that sets odavl.plan_effective_at."""
    month_later = at + timedelta(days=30)
    with conn.transaction():
        conn.execute("SELECT set_config('odavl.plan_effective_at', %s, true)", (at.isoformat(),))
        if kind == "upgrade" and not plan.live:  # FREE: a first (or renewed) PRO subscription
            conn.execute("UPDATE organizations SET tier = 'PRO' WHERE id = %s", (plan.org_id,))
            conn.execute(
                "INSERT INTO subscriptions (organization_id, status, current_period_start, "
                "current_period_end) VALUES (%s, 'ACTIVE', %s, %s) ON CONFLICT (organization_id) "
                "DO UPDATE SET status = 'ACTIVE', canceled_at = NULL, cancel_at = NULL, "
                "analyses_limit = NULL, fixes_limit = NULL, audits_limit = NULL, "
                "current_period_start = EXCLUDED.current_period_start, "
                "current_period_end = EXCLUDED.current_period_end",
                (plan.org_id, at, month_later),
            )
            plan.tier, plan.status, plan.limited = "PRO", "ACTIVE", False
        elif kind == "upgrade":  # PRO to ENTERPRISE, the tier's limits
            conn.execute(
                "UPDATE organizations SET tier = 'ENTERPRISE' WHERE id = %s", (plan.org_id,)
            )
            conn.execute(
                "UPDATE subscriptions SET analyses_limit = NULL, fixes_limit = NULL, "
                "audits_limit = NULL WHERE organization_id = %s",
                (plan.org_id,),
            )
            plan.tier, plan.limited = "ENTERPRISE", False
        elif kind == "downgrade" and plan.tier == "ENTERPRISE":
            conn.execute("UPDATE organizations SET tier = 'PRO' WHERE id = %s", (plan.org_id,))
            plan.tier = "PRO"
        elif kind == "downgrade":  # PRO: lower custom limits
            conn.execute(
                "UPDATE subscriptions SET analyses_limit = %s, fixes_limit = %s, "
                "audits_limit = %s WHERE organization_id = %s",
                (*LOWER_LIMITS, plan.org_id),
            )
            plan.limited = True
        elif kind == "cancellation":
            conn.execute(
                "UPDATE subscriptions SET status = 'CANCELED', canceled_at = %s "
                "WHERE organization_id = %s",
                (at, plan.org_id),
            )
            conn.execute("UPDATE organizations SET tier = 'FREE' WHERE id = %s", (plan.org_id,))
            plan.tier, plan.status, plan.limited = "FREE", "CANCELED", False
        elif kind == "reanchor":  # a new billing anchor, off the monthly series
            conn.execute(
                "UPDATE subscriptions SET current_period_start = %s, "
                "current_period_end = %s WHERE organization_id = %s",
                (at, month_later, plan.org_id),
            )
        else:
            raise ValueError(kind)


def plan_changes(env: Environment, first_day: date, last_day: date, share: float) -> dict[str, Any]:
    """A seeded sample of organizations gets one or two changes inside [first_day, last_day];
    they are written in the order of their times (the trigger compares with the latest
    version). Returns the counts per kind and the versions plan_versions holds."""
    rng = random.Random(CHANGES_SEED)
    window_start = datetime.combine(first_day, datetime.min.time(), UTC) + timedelta(
        days=MARGIN_DAYS
    )
    window_seconds = int(
        (
            datetime.combine(last_day, datetime.min.time(), UTC)
            - timedelta(days=MARGIN_DAYS)
            - window_start
        ).total_seconds()
    )
    if window_seconds <= 0:
        raise SystemExit(f"--days must be more than {2 * MARGIN_DAYS} for plan changes")
    with psycopg.connect(env.dsn) as conn:
        plans = [
            Plan(*row)
            for row in conn.execute(
                "SELECT o.id, o.slug, o.tier::text, s.status::text FROM organizations AS o "
                "LEFT JOIN subscriptions AS s ON s.organization_id = o.id ORDER BY o.id"
            )
        ]
        versions_before = conn.execute("SELECT count(*) FROM plan_versions").fetchone()[0]
        conn.commit()
        moments: list[tuple[datetime, int]] = []  # (time, index of the plan)
        for index, _ in enumerate(plans):
            if rng.random() < share:
                for _ in range(rng.choice((1, 1, 2))):
                    moments.append(
                        (window_start + timedelta(seconds=rng.randrange(window_seconds)), index)
                    )
        moments.sort()
        kinds: Counter[str] = Counter()
        started = time.perf_counter()
        for at, index in moments:
            plan = plans[index]
            kind = rng.choice(change_kinds(plan))
            apply_change(conn, plan, kind, at)
            kinds[kind] += 1
        versions = conn.execute("SELECT count(*) FROM plan_versions").fetchone()[0]
        organizations_changed = conn.execute(
            "SELECT count(*) FROM (SELECT organization_id FROM plan_versions "
            "GROUP BY organization_id HAVING count(*) > 1) AS o"
        ).fetchone()[0]
    log(
        f"{sum(kinds.values())} plan changes in {time.perf_counter() - started:.1f} s: "
        f"{dict(kinds)}; plan_versions {versions_before} -> {versions}"
    )
    return {
        "organizations": len(plans),
        "changes": sum(kinds.values()),
        "by_kind": dict(kinds),
        "versions_before": versions_before,
        "versions": versions,
        "organizations_with_history": organizations_changed,
    }


# --- runs -------------------------------------------------------------------------------


def timed_run(env: Environment, label: str, *extra: str) -> dict[str, Any]:
    """The pipeline benchmark's timed `odavl-pipeline run`, with the asset checks it evaluated."""
    figure = pipeline_bench.timed_run(env, label, extra=extra)
    return {**figure.as_dict(), "checks": check_results(env, figure.launched_at)}


def check_results(env: Environment, launched_at: datetime) -> dict[str, Any]:
    """The Dagster asset checks evaluated since `launched_at`: '<asset>/<check>' -> passed
    (True/False) with its description, from the instance's event log."""
    with psycopg.connect(libpq_url(env.url.set(database=DAGSTER_DB))) as conn:
        rows = conn.execute(
            "SELECT event FROM event_logs WHERE timestamp >= %s "
            "AND dagster_event_type = 'ASSET_CHECK_EVALUATION' ORDER BY id",
            (launched_at,),
        ).fetchall()
    results: dict[str, Any] = {}
    for (event,) in rows:
        data = _find(json.loads(event), "AssetCheckEvaluation")
        if data is None:
            continue
        key = data.get("asset_key", {}).get("path", ["?"])
        description = data.get("description")
        results[f"{'/'.join(key)}/{data.get('check_name')}"] = {
            "passed": data.get("success", data.get("passed")),
            "description": description,
        }
    return results


def _find(node: Any, class_name: str) -> dict | None:
    """The first object serialized as `class_name` in Dagster's JSON (its "__class__" key)."""
    if isinstance(node, dict):
        if node.get("__class__") == class_name:
            return node
        children = node.values()
    elif isinstance(node, list):
        children = node
    else:
        return None
    for child in children:
        if (found := _find(child, class_name)) is not None:
            return found
    return None


def closed_rows(settings: Settings) -> set[tuple]:
    """Every closed row of billing_periods in the published marts file (read-only)."""
    with open_marts(settings.marts_path) as con:
        rows = con.execute(CLOSED_SQL).fetchall()
    found = set(rows)
    if len(found) != len(rows):
        log(f"note: {len(rows) - len(found)} closed rows of billing_periods are duplicates")
    return found


def postgres_closes(env: Environment) -> dict[str, int]:
    with psycopg.connect(env.dsn) as conn:
        closes, usage_rows = conn.execute(
            "SELECT (SELECT count(*) FROM billing_closes), "
            "(SELECT count(*) FROM billing_close_usage)"
        ).fetchone()
        events = conn.execute("SELECT count(*) FROM usage_events").fetchone()[0]
    return {"billing_closes": closes, "billing_close_usage": usage_rows, "usage_events": events}


def compare(first: set[tuple], second: set[tuple]) -> dict[str, Any]:
    """The two sets of closed rows, row by row: how many differ and a few of them."""
    only_first, only_second = first - second, second - first
    return {
        "compared": len(first | second),
        "differing": len(only_first | only_second),
        "only_backfill": len(only_first),
        "only_rebuild": len(only_second),
        "matched": not only_first and not only_second and bool(first),
        "first_differences": [
            [str(value) for value in row] for row in sorted(only_first | only_second)[:5]
        ],
    }


# --- the benchmark ----------------------------------------------------------------------


def billing_bench(env: Environment, args: argparse.Namespace, end_day: date) -> dict[str, Any]:
    settings = Settings.from_env({"ODAVL_HOME": str(env.home)})
    first_day = end_day - timedelta(days=args.days - 1)
    reference = env.home / "reference.json"
    odavl(
        env,
        "generate",
        "--seed",
        str(args.seed),
        "--organizations",
        str(args.organizations),
        "--days",
        str(args.days),
        "--end",
        end_day.isoformat(),
        "--usage-per-day",
        str(args.usage_per_day),
        "--errors-per-day",
        "0",
        "--attestations-per-day",
        "0",
        "--audits-per-day",
        "0",
        "--quiet",
        "--reference-out",
        str(reference),
    )
    odavl(env, "seed", "--reference", str(reference))
    plans = plan_changes(env, first_day, end_day, args.changed_share)

    backfill = timed_run(env, "backfill")
    backfill_rows = closed_rows(settings)
    backfill_closes = postgres_closes(env)
    log(
        f"backfill: {len(backfill_rows):,} closed rows in billing_periods, "
        f"{backfill_closes['billing_closes']:,} closes in Postgres"
    )

    marts_size = settings.marts_path.stat().st_size
    settings.marts_path.unlink()
    facts = facts_dir(settings.marts_path)
    if facts.exists():
        shutil.rmtree(facts)
    log(f"deleted {settings.marts_path} ({marts_size / 2**20:.1f} MiB) and {facts}")
    rebuild = timed_run(env, "rebuild", "--full-marts")
    rebuild_rows = closed_rows(settings)
    rebuild_closes = postgres_closes(env)
    return {
        "organizations": plans["organizations"],
        "days": args.days,
        "first_day": first_day.isoformat(),
        "last_day": end_day.isoformat(),
        "usage_per_day": args.usage_per_day,
        "plans": plans,
        "usage_events": backfill_closes["usage_events"],
        "backfill": {**backfill, "closed_rows": len(backfill_rows), **backfill_closes},
        "rebuild": {**rebuild, "closed_rows": len(rebuild_rows), **rebuild_closes},
        "marts_mib": round(marts_size / 2**20, 1),
        "comparison": compare(backfill_rows, rebuild_rows),
    }


# --- report -----------------------------------------------------------------------------


def closed_as_recorded(run: dict[str, Any]) -> str:
    check = run["checks"].get("billing_periods/closed_as_recorded")
    if check is None:
        return "not found"
    return f"{'passed' if check['passed'] else 'FAILED'} ({check['description']})"


def failed_checks(run: dict[str, Any]) -> list[str]:
    return [name for name, check in run["checks"].items() if check["passed"] is False]


def print_report(result: dict[str, Any]) -> None:
    server, b = result["server"], result["billing"]
    backfill, rebuild, plans, comparison = b["backfill"], b["rebuild"], b["plans"], b["comparison"]
    print(
        f"\nBilling benchmark: a backfill as one `odavl-pipeline run`, then a rebuild from "
        f"scratch ({result['cores']} cores)"
    )
    print(
        f"PostgreSQL {server['server_version']} (embedded): "
        f"shared_buffers={server['shared_buffers']} fsync={server['fsync']} "
        f"synchronous_commit={server['synchronous_commit']} "
        f"max_wal_size={server['max_wal_size']}"
    )
    usage = backfill["counts"].get("usage_events", {})
    print(f"\n  organizations                 {b['organizations']:>12,}")
    print(f"  days of history               {b['days']:>12,}   {b['first_day']} .. {b['last_day']}")
    print(
        f"  usage events stored           {b['usage_events']:>12,}   "
        f"({usage.get('lines', 0):,} lines in {usage.get('files', 0):,} files)"
    )
    print(
        f"  plan changes                  {plans['changes']:>12,}   "
        + ", ".join(f"{count} {kind}" for kind, count in sorted(plans["by_kind"].items()))
    )
    print(
        f"  plan versions                 {plans['versions']:>12,}   "
        f"({plans['versions_before']:,} before the changes; "
        f"{plans['organizations_with_history']:,} organizations with more than one)"
    )
    print(
        f"  periods closed (Postgres)     {backfill['billing_closes']:>12,}   "
        f"({backfill['billing_close_usage']:,} rows of billing_close_usage)"
    )
    print(
        f"  closed rows, billing_periods  {backfill['closed_rows']:>12,}   "
        f"(rebuild: {rebuild['closed_rows']:,})"
    )
    print(f"\n  backfill run, seconds         {backfill['seconds']:>12.1f}")
    print(
        f"  rebuild from scratch, seconds {rebuild['seconds']:>12.1f}   "
        f"(marts file of {b['marts_mib']} MiB and its facts deleted; run --full-marts)"
    )
    matched = "yes" if comparison["matched"] else "no"
    print(
        f"\n  every closed period matched: {matched} ({comparison['compared']:,} rows compared, "
        f"{comparison['differing']:,} differing)"
    )
    for row in comparison["first_differences"]:
        print(f"    differs: {', '.join(row)}")
    print(
        f"  closed_as_recorded: backfill {closed_as_recorded(backfill)}; "
        f"rebuild {closed_as_recorded(rebuild)}"
    )
    for label, run in (("backfill", backfill), ("rebuild", rebuild)):
        if failed := failed_checks(run):
            print(f"  {label}: checks failed: {', '.join(failed)}")
    print(f"\n  whole invocation: {result['seconds']:.0f} s")


# --- main -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--organizations",
        type=int,
        default=1_000,
        help="generated organizations, besides the two demo ones (default 1,000)",
    )
    parser.add_argument(
        "--days", type=int, default=365, help="days of history, ending yesterday (default 365)"
    )
    parser.add_argument(
        "--usage-per-day",
        type=int,
        default=USAGE_PER_DAY,
        help=f"usage events per organization a day (default {USAGE_PER_DAY})",
    )
    parser.add_argument(
        "--changed-share",
        type=float,
        default=CHANGED_SHARE,
        help=f"share of organizations with plan changes (default {CHANGED_SHARE})",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=GENERATE_SEED,
        help=f"the generator's seed (default {GENERATE_SEED})",
    )
    parser.add_argument(
        "--home",
        help="state folder (default: a fresh temporary folder); emptied first if it exists",
    )
    parser.add_argument(
        "--keep", action="store_true", help="leave the server running and the files in place"
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the figures as one JSON object instead of the report",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not CLI.exists():
        raise SystemExit(f"no {CLI}: run this script with the virtualenv's Python")
    yesterday = clock.today() - timedelta(days=1)
    remove = args.home is None
    home = (
        Path(args.home).resolve()
        if args.home
        else Path(tempfile.mkdtemp(prefix="odavl-billing-bench-")) / "state"
    )
    result: dict[str, Any] = {"cores": os.cpu_count()}
    try:
        with pipeline_bench.state_folder(home, remove, args.keep) as env:
            result["server"] = server_facts(env, SERVER_SETTINGS)
            result["billing"] = billing_bench(env, args, yesterday)
    finally:
        if remove and not args.keep:
            shutil.rmtree(home.parent, ignore_errors=True)
    result["seconds"] = round(time.time() - STARTED, 1)
    if args.json:
        print(json.dumps(result, default=str))
    else:
        print_report(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
