#!/usr/bin/env python
"""Dashboards benchmark: how long each page takes to render, server side, on marts built from
ten million usage events, against the same page on the demo data.

Two marts files, built by this run in its own state folder (an embedded PostgreSQL unless
ODAVL_DATABASE_URL is set):

  demo    `generate` defaults (the two demo organizations and five more, 30 days, every source),
          seeded, ingested and built, as `odavl-pipeline demo` does;
  large   the marts benchmark's fleet (bench/marts_bench.py: 1,000 organizations, usage events
          spread over a year, set-based SQL), one full build. Only usage is generated there, so
          Insight, Autopilot and Guardian render their empty states on it.

Each page is rendered with Streamlit's AppTest (the app's own code, in this process, no
browser): as the OWNER of the busiest organization, and the staff view as staff. `cold` is the
first render in the process (empty caches, connection opened); `warm` the best of three
reruns (the pages' queries cached). A page other than the overview comes after the app's
first run, as when a person moves to it. The billing drill-down reads the usage facts of one billing period.

    python bench/dashboards_bench.py [--events N] [--organizations N] [--home DIR] [--keep]
                                     [--json]

The screenshots of docs/dashboards/ are the browser test's (tests/test_dashboards_browser.py).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import create_engine

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench"), str(ROOT / "dashboards")]

import marts_bench as mb  # noqa: E402  (the fleet and its usage, shared with the marts benchmark)
from odavl_pipeline import clock  # noqa: E402
from odavl_pipeline.db import seed  # noqa: E402
from odavl_pipeline.db.server import libpq_url  # noqa: E402
from odavl_pipeline.settings import Settings  # noqa: E402

APP = ROOT / "dashboards" / "app.py"
PAGES = ("overview", "billing", "insight", "autopilot", "guardian", "staff")
OWNER = "owner@bench.example"
STAFF = "staff@bench.example"
TARGET_SECONDS = 1.0
log = mb.log


def demo_marts(env: mb.Environment) -> tuple[Settings, str]:
    """The demo data in a database of its own: generated, seeded, ingested, built."""
    from odavl_pipeline.db import migrate
    from odavl_pipeline.generate import GenerateOptions, generate_landing
    from odavl_pipeline.ingest.landing import SOURCES, landed_days
    from odavl_pipeline.ingest.run import ingest_days
    from odavl_pipeline.marts.build import refresh_marts

    url = env.url.set(database="odavl_dashboards_demo")
    with psycopg.connect(libpq_url(env.url.set(database="postgres")), autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS odavl_dashboards_demo WITH (FORCE)")
        admin.execute("CREATE DATABASE odavl_dashboards_demo")
    migrate.upgrade(url)
    home = env.home / "demo"
    shutil.rmtree(home, ignore_errors=True)
    settings = Settings.from_env(
        {"ODAVL_HOME": str(home), "ODAVL_DATABASE_URL": url.render_as_string(hide_password=False)}
    )
    log("demo: generating, seeding and ingesting 30 days for 7 organizations")
    generate_landing(
        settings.landing_dir,
        GenerateOptions(
            end_day=clock.today() - timedelta(days=1), chain_heads=seed.seed_chain_heads()
        ),
    )
    engine = create_engine(url)
    for path in (seed.SEEDS_DIR / "reference.json", settings.landing_dir / "reference.json"):
        with engine.begin() as conn:
            seed.load_reference(conn, seed.read_reference(path))
    engine.dispose()
    seed.copy_seed_landing(settings.landing_dir)
    with psycopg.connect(libpq_url(url)) as conn:
        for source in SOURCES:
            ingest_days(conn, settings.landing_dir, source, landed_days(settings.landing_dir))
        owner = conn.execute(
            "SELECT o.slug FROM organizations AS o JOIN usage_events AS u "
            "ON u.organization_id = o.id GROUP BY o.slug "
            "ORDER BY count(*) DESC LIMIT 1"
        ).fetchone()[0]
        add_member(conn, owner)
    started = time.perf_counter()
    refresh_marts(settings)
    log(f"demo: marts built in {time.perf_counter() - started:.1f} s")
    return settings, owner


def add_member(conn: psycopg.Connection, org: str) -> None:
    """OWNER of `org`, and the staff analyst (no membership)."""
    for email in (OWNER, STAFF):
        conn.execute(
            "INSERT INTO users (email, name, hashed_password) VALUES (%s, %s, %s) "
            "ON CONFLICT (email) DO NOTHING",
            (email, email.split("@")[0].title(), seed.hash_password("bench")),
        )
    conn.execute(
        "INSERT INTO organization_members (organization_id, user_id, role) "
        "SELECT o.id, u.id, 'OWNER' FROM organizations AS o, users AS u "
        "WHERE o.slug = %s AND u.email = %s ON CONFLICT DO NOTHING",
        (org, OWNER),
    )
    conn.commit()


def large_marts(env: mb.Environment, events: int, organizations: int) -> tuple[Settings, str, dict]:
    """The marts benchmark's fleet and usage, `events` over 365 days, one full build."""
    from odavl_pipeline.marts.build import refresh_marts

    history = [mb.END_DAY - timedelta(days=n) for n in range(364, -1, -1)]
    per_day = mb.events_per_day(history, [], events)
    fleet = mb.create_fleet(env, organizations, 7, mb.midnight(mb.END_DAY + timedelta(days=1)))
    generated = mb.load_days(env, history, per_day, f"{events:,} events over 365 days")
    mb.settle(env, vacuum=True)
    with psycopg.connect(env.dsn) as conn:
        owner = conn.execute(
            "SELECT o.slug FROM organizations AS o JOIN usage_events AS u "
            "ON u.organization_id = o.id GROUP BY o.slug "
            "ORDER BY count(*) DESC LIMIT 1"
        ).fetchone()[0]
        add_member(conn, owner)
        rows = conn.execute("SELECT count(*) FROM usage_events").fetchone()[0]
    settings = Settings.from_env(
        {
            "ODAVL_HOME": str(env.home),
            "ODAVL_DATABASE_URL": env.url.render_as_string(hide_password=False),
        }
    )
    started = time.perf_counter()
    refresh_marts(settings, full=True, as_of=mb.as_of_after(mb.END_DAY))
    built = time.perf_counter() - started
    log(f"large: {rows:,} events of {len(fleet.orgs):,} organizations built in {built:.1f} s")
    return (
        settings,
        owner,
        {
            "events": rows,
            "organizations": len(fleet.orgs),
            "generate_seconds": round(generated, 1),
            "build_seconds": round(built, 1),
            "marts_mib": round(settings.marts_path.stat().st_size / 2**20, 1),
        },
    )


def render_times(settings: Settings, label: str) -> dict[str, dict[str, float]]:
    """Cold and warm render seconds of each page, through AppTest."""
    from streamlit.testing.v1 import AppTest

    main = sys.modules["__main__"]
    os.environ.update(
        {
            "ODAVL_HOME": str(settings.home),
            "ODAVL_MARTS_PATH": str(settings.marts_path),
            "ODAVL_DATABASE_URL": settings.database_url,
            "ODAVL_STAFF_EMAILS": STAFF,
        }
    )
    times: dict[str, dict[str, float]] = {}
    for page in PAGES:
        app = AppTest.from_file(str(APP), default_timeout=120)
        app.secrets = {
            "auth": {
                "redirect_uri": "http://127.0.0.1:8501/oauth2callback",
                "cookie_secret": "bench-cookie-secret-bench-cookie-secret",
            }
        }
        app.user = {"is_logged_in": True, "email": STAFF if page == "staff" else OWNER}
        if page != "overview":
            app.run().switch_page(f"views/{page}.py")
        started = time.perf_counter()
        app.run()
        cold = time.perf_counter() - started
        warm = []
        for _ in range(3):
            started = time.perf_counter()
            app.run()
            warm.append(time.perf_counter() - started)
        problems = [e.value for e in app.exception] + [e.value for e in app.error]
        if problems:
            raise RuntimeError(f"{label} {page}: {problems[0][:500]}")
        times[page] = {"cold": round(cold, 3), "warm": round(min(warm), 3)}
        log(f"{label}: {page:<10} cold {cold:6.3f} s   warm {min(warm):6.3f} s")
    sys.modules["__main__"] = main  # AppTest leaves the app there; spawn would run it
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--organizations", type=int, default=1_000)
    parser.add_argument("--home", help="state folder (default: a fresh temporary folder)")
    parser.add_argument("--keep", action="store_true", help="leave the server and files in place")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    env = mb.set_up(args.home)
    try:
        demo, _ = demo_marts(env)
        large, large_owner, facts = large_marts(env, args.events, args.organizations)
        result: dict[str, Any] = {"large": facts, "pages": {}}
        demo_times = render_times(demo, "demo")
        large_times = render_times(large, "large")
        for page in PAGES:
            result["pages"][page] = {"demo": demo_times[page], "large": large_times[page]}
        result["target_met"] = all(
            t["large"]["cold"] < TARGET_SECONDS for t in result["pages"].values()
        )
    finally:
        mb.tear_down(env, args.keep)
    if args.json:
        print(json.dumps(result))
        return 0
    print(
        f"\nDashboards benchmark: {facts['events']:,} usage events of {facts['organizations']:,} "
        f"organizations (marts {facts['marts_mib']} MiB, built in {facts['build_seconds']} s) "
        f"against the demo data; seconds to render each page, server side (AppTest)\n"
    )
    print(f"  {'page':<11}{'demo cold':>11}{'demo warm':>11}{'large cold':>12}{'large warm':>12}")
    for page, t in result["pages"].items():
        print(
            f"  {page:<11}{t['demo']['cold']:>11.3f}{t['demo']['warm']:>11.3f}"
            f"{t['large']['cold']:>12.3f}{t['large']['warm']:>12.3f}"
        )
    print(
        f"\n  every page under {TARGET_SECONDS:.0f} s cold on the large marts: "
        f"{'met' if result['target_met'] else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
