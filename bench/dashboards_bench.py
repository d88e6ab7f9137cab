#!/usr/bin/env python
"""Dashboards benchmark: each page in chromium as a person meets it on the demo data, against
Streamlit's own floor; and each page rendered server side on marts built from ten million usage
events, against the same page on the demo data.

Two marts files, built by this run in its own state folder (an embedded PostgreSQL unless
ODAVL_DATABASE_URL is set):

  demo    `generate` defaults (the two demo organizations and five more, 30 days, every source),
          seeded, ingested and built, as `odavl-pipeline demo` does;
  large   the marts benchmark's fleet (bench/marts_bench.py: 1,000 organizations, usage events
          spread over a year, set-based SQL), one full build. Only usage is generated there, so
          Insight, Autopilot and Guardian render their empty states on it.

In the browser (bench/browser_pages.py): `odavl-pipeline dashboard`'s server on the demo data,
Debian's headless chromium signed in as the OWNER of the two busiest organizations (and the
staff view as staff): each page opened in a new tab, reached from the sidebar, and its
organization switched, timed in the browser. The floor is a Streamlit app that draws one
heading and one filter and reads nothing, served the same way: the ratio to it is what the
pages add to what Streamlit itself costs. Targets: the heading within 1 s of opening or
switching, a filter change drawn within 0.5 s.

Server side, each page is rendered with Streamlit's AppTest (the app's own code, in this
process, no browser): as the OWNER of the busiest organization, and the staff view as staff.
`cold` is the first render in the process (empty caches, connection opened); `warm` the best of
three reruns (the pages' queries cached). A page other than the overview comes after the app's
first run, as when a person moves to it. The billing drill-down reads the usage facts of one
billing period.

    python bench/dashboards_bench.py [--browser-only] [--events N] [--organizations N]
                                     [--home DIR] [--keep] [--json]

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

import browser_pages as bp  # noqa: E402  (the pages in chromium)
import marts_bench as mb  # noqa: E402  (the fleet and its usage, shared with the marts benchmark)

from odavl_pipeline import clock  # noqa: E402
from odavl_pipeline.db import passwords, seed  # noqa: E402
from odavl_pipeline.db.server import libpq_url  # noqa: E402
from odavl_pipeline.settings import Settings  # noqa: E402

APP = ROOT / "dashboards" / "app.py"
PAGES = ("overview", "billing", "insight", "autopilot", "guardian", "staff")
OWNER = "owner@bench.example"
STAFF = "staff@bench.example"
TARGET_SECONDS = 1.0
BROWSER_FIRST = 1.0  # seconds from opening or switching to a page to its heading, in chromium
BROWSER_FILTER = 0.5  # seconds from a filter change to the page drawn again, in chromium
PASSWORD = "bench"  # the benchmark's people's password
log = mb.log


def demo_marts(env: mb.Environment) -> tuple[Settings, tuple[str, str]]:
    """The demo data in a database of its own: generated, seeded, ingested, built; the busiest
    organization's slug and name."""
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
        busiest = conn.execute(
            "SELECT o.slug, o.name FROM organizations AS o JOIN usage_events AS u "
            "ON u.organization_id = o.id GROUP BY o.slug, o.name "
            "ORDER BY count(*) DESC, o.slug LIMIT 2"
        ).fetchall()
        for slug, _ in busiest:  # two, so that the browser can switch organizations
            add_member(conn, slug)
    started = time.perf_counter()
    refresh_marts(settings)
    log(f"demo: marts built in {time.perf_counter() - started:.1f} s")
    return settings, busiest[0]


def add_member(conn: psycopg.Connection, org: str) -> None:
    """OWNER of `org`, and the staff analyst (no membership)."""
    for email in (OWNER, STAFF):
        conn.execute(
            "INSERT INTO users (email, name, hashed_password) VALUES (%s, %s, %s) "
            "ON CONFLICT (email) DO NOTHING",
            (email, email.split("@")[0].title(), passwords.hash_password(PASSWORD)),
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
            "ODAVL_DATABASE_URL": settings.database_url.get_secret_value(),
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


def browser_times(env: mb.Environment, demo: Settings, org: tuple[str, str]) -> dict[str, Any]:
    """Each page in chromium on the demo marts, and the floor: Streamlit drawing a heading and a
    filter and reading nothing, served the same way (bench/browser_pages.py)."""
    days = (clock.today() - timedelta(days=30), clock.today() - timedelta(days=1))
    visits = [bp.Visit("", org[1], "Overview")] + [
        bp.Visit(page, page.title(), page.title()) for page in PAGES if page != "overview"
    ]
    staff = visits.pop()
    staff = bp.Visit(staff.page, "Staff: all organizations", "Staff")
    with bp.served_floor(env.home) as base:
        floor = bp.page_times(base, None, None, bp.FLOOR, *days)["Floor"]
    log(f"browser: floor {floor}")
    with bp.served(demo, STAFF, env.home / "dashboards.log") as base:
        pages = bp.page_times(base, OWNER, PASSWORD, visits, *days, org=org[0])
        pages |= bp.page_times(base, STAFF, PASSWORD, [staff], *days, filters=False)
    for page, seconds in pages.items():
        log(f"browser: {page:<10} {seconds}")
    met = all(
        t["open_first"] <= BROWSER_FIRST
        and t.get("switch_first", 0) <= BROWSER_FIRST
        and t.get("filter", 0) <= BROWSER_FILTER
        for t in pages.values()
    )
    return {"floor": floor, "pages": pages, "target_met": met}


def print_browser(browser: dict[str, Any]) -> None:
    floor = browser["floor"]
    print(
        f"\nIn chromium on the demo data, seconds (median of {bp.REPEAT}); first = the heading "
        f"drawn, done = the script ended; in brackets the ratio to the floor (a Streamlit app "
        f"drawing a heading and a filter, reading nothing: open {floor['open_first']:.3f} s, "
        f"filter {floor['filter']:.3f} s)\n"
    )
    print(
        f"  {'page':<11}{'open first':>16}{'open done':>11}{'switch first':>14}"
        f"{'switch done':>13}{'filter':>16}"
    )
    for page, t in browser["pages"].items():
        ratio = t["open_first"] / floor["open_first"]
        filtered = (
            f"{t['filter']:.3f} ({t['filter'] / floor['filter']:.1f}x)" if "filter" in t else "–"
        )
        print(
            f"  {page:<11}{t['open_first']:>9.3f} ({ratio:.1f}x){t['open_done']:>11.3f}"
            f"{t.get('switch_first', float('nan')):>14.3f}"
            f"{t.get('switch_done', float('nan')):>13.3f}{filtered:>16}"
        )
    print(
        f"\n  first content within {BROWSER_FIRST:.0f} s of opening or switching, a filter change "
        f"within {BROWSER_FILTER} s: {'met' if browser['target_met'] else 'NOT met'}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--organizations", type=int, default=1_000)
    parser.add_argument(
        "--browser-only",
        action="store_true",
        help="only the demo data in chromium: no large marts, no server-side renders",
    )
    parser.add_argument("--home", help="state folder (default: a fresh temporary folder)")
    parser.add_argument("--keep", action="store_true", help="leave the server and files in place")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    env = mb.set_up(args.home)
    result: dict[str, Any] = {}
    try:
        demo, busiest = demo_marts(env)
        result["browser"] = browser_times(env, demo, busiest)
        if not args.browser_only:
            large, _, facts = large_marts(env, args.events, args.organizations)
            result |= {"large": facts, "pages": {}}
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
    print_browser(result["browser"])
    if args.browser_only:
        return 0
    facts = result["large"]
    print(
        f"\nServer side (AppTest): {facts['events']:,} usage events of "
        f"{facts['organizations']:,} organizations (marts {facts['marts_mib']} MiB, built in "
        f"{facts['build_seconds']} s) against the demo data; seconds to render each page\n"
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
