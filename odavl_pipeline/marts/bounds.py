"""What the marts can hold: the one definition of the bounds the extracts and the checks apply.

A timestamp the marts can hold lies in [1970-01-01, 9999-01-01) UTC. Nothing valid is older
than 1970 (CONTRACT.md section 3) and no partition is; from 9999 on, the builder's arithmetic
on days and billing periods (a day after each day, a month after a period's start) leaves
Python's dates, which end with the year 9999. PostgreSQL's `-infinity` and `infinity`, its BC
dates and its years up to 294276 all fall outside. The bounds are fixed, not tied to the clock,
so a row is left out for good, or never: no later build finds it changed.

A row with any bounded timestamp outside is left out of every mart, and reported by the
`rows_left_out` checks (`reconcile.rows_left_out`).
"""

from datetime import UTC, datetime

from odavl_pipeline.domain.records import EARLIEST

LATEST = datetime(9999, 1, 1, tzinfo=UTC)  # excluded

# Every timestamp column the marts are built from, per table.
BOUNDED_COLUMNS = {
    "usage_events": ("occurred_at", "ingested_at"),
    "error_events": ("occurred_at",),
    "fix_attestations": ("created_at",),
    "audit_results": ("occurred_at",),
    "error_signatures": ("first_seen", "last_seen", "resolved_at"),
    "subscriptions": ("current_period_start",),
}

# Constants of this module, not inputs: written into the SQL like the metric names.
EARLIEST_SQL = f"TIMESTAMPTZ '{EARLIEST.isoformat()}'"
LATEST_SQL = f"TIMESTAMPTZ '{LATEST.isoformat()}'"
EARLIEST_DAY_SQL = f"DATE '{EARLIEST.date().isoformat()}'"
LATEST_DAY_SQL = f"DATE '{LATEST.date().isoformat()}'"


def outside(column: str) -> str:
    """SQL: true when `column` holds a timestamp the marts cannot (NULL when it is NULL)."""
    return f"({column} < {EARLIEST_SQL} OR {column} >= {LATEST_SQL})"


def held(table: str, alias: str) -> str:
    """SQL: true when every bounded timestamp of the row of `table` named `alias` fits (a NULL
    fits: the marts hold it as NULL)."""
    return " AND ".join(
        f"{outside(f'{alias}.{column}')} IS NOT TRUE" for column in BOUNDED_COLUMNS[table]
    )
