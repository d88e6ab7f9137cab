"""Helpers for the marts tests: usage rows with chosen arrival times, marts read back."""

from datetime import datetime
from pathlib import Path

import duckdb

from odavl_pipeline.marts.schema import MART_TABLES
from odavl_pipeline.marts.store import open_marts
from odavl_pipeline.settings import Settings


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def anchor_subscription(
    conn,
    org: str,
    period_start: str,
    period_end: str,
    effective: str = "1970-01-01T00:00:00Z",
    **limits,
) -> None:
    """Put an organization's subscription on a known period (and optional limit overrides), as
    its plan since `effective` (by default since always: the whole history is rated with it)."""
    sets = ", ".join(f"{name} = %({name})s" for name in limits)
    conn.execute("SELECT set_config('odavl.plan_effective_at', %s, true)", (effective,))
    conn.execute(
        "UPDATE subscriptions SET current_period_start = %(start)s, current_period_end = %(end)s"
        + (f", {sets}" if sets else "")
        + " WHERE organization_id = (SELECT id FROM organizations WHERE slug = %(org)s)",
        {"start": at(period_start), "end": at(period_end), "org": org, **limits},
    )
    conn.commit()


def add_usage(
    conn,
    org: str,
    event_id: str,
    occurred_at: str,
    ingested_at: str,
    event_type: str = "insight_analysis",
    quantity: int = 1,
) -> None:
    """An accepted usage event as ingestion writes it, arriving at `ingested_at`."""
    conn.execute(
        "INSERT INTO usage_events (organization_id, event_id, event_type, occurred_at, quantity, "
        "payload, file_id, line_no, ingested_at) SELECT id, %s, %s, %s, %s, '{}'::jsonb, 0, 1, %s "
        "FROM organizations WHERE slug = %s",
        (event_id, event_type, at(occurred_at), quantity, at(ingested_at), org),
    )
    conn.commit()


def add_many(
    conn,
    org: str,
    prefix: str,
    count: int,
    occurred_at: str,
    ingested_at: str,
    event_type: str = "insight_analysis",
) -> None:
    conn.execute(
        "INSERT INTO usage_events (organization_id, event_id, event_type, occurred_at, quantity, "
        "payload, file_id, line_no, ingested_at) SELECT o.id, %s || n, %s, %s, 1, '{}'::jsonb, 0, n, %s "
        "FROM organizations AS o, generate_series(1, %s) AS n WHERE o.slug = %s",
        (prefix, event_type, at(occurred_at), at(ingested_at), count, org),
    )
    conn.commit()


def rows(settings: Settings, query: str, parameters: list | None = None) -> list[tuple]:
    with open_marts(settings.marts_path) as con:
        return con.execute(query, parameters or []).fetchall()


def every_mart(path: Path) -> dict[str, list[tuple]]:
    """All rows of every mart, sorted, for comparing two builds."""
    with duckdb.connect(str(path), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        return {
            name: sorted(con.execute(f"SELECT * FROM {name}").fetchall(), key=repr)
            for name in MART_TABLES
        }


def elsewhere(settings: Settings, name: str) -> Settings:
    """The same database, another marts file."""
    return settings.replace(marts_path=settings.marts_path.with_name(name))
