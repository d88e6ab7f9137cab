"""One clock: the database's "now" is `odavl_now()`, which a test can move with the application's.

Revision ID: 0010
Revises: 0009

`odavl_now()` is the statement's time plus the connection's `odavl.clock_offset` (seconds; unset
in production, so it is the statement's time). Every column default that read `now()` or
`statement_timestamp()` reads it instead, and so does the plan-history trigger that dates a
plan change: a test that sets the clock moves ingestion stamps, usage cuts, closes, plan
versions, sessions and the sign-in throttle with it (odavl_pipeline/clock.py).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ODAVL_NOW = """
CREATE FUNCTION odavl_now() RETURNS timestamptz LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT statement_timestamp()
           + coalesce(nullif(current_setting('odavl.clock_offset', true), '')::float8, 0)
             * interval '1 second'
$$
"""

# (table, column, the default before): every column of this schema that defaulted to "now"
STAMPED_COLUMNS = """
    SELECT table_name, column_name, column_default FROM information_schema.columns
    WHERE table_schema = current_schema() AND column_default IN ({defaults})
    ORDER BY table_name, column_name
"""

# the plan-history trigger's one reading of "now", in the function's definition (0006)
PLAN_CLOCK_BEFORE = (
    "nullif(current_setting('odavl.plan_effective_at', true), '')::timestamptz, now())"
)
PLAN_CLOCK_AFTER = PLAN_CLOCK_BEFORE.replace("now())", "odavl_now())")


def upgrade() -> None:
    op.execute(ODAVL_NOW)
    for table, column, _ in _columns("'now()'", "'statement_timestamp()'"):
        op.execute(f'ALTER TABLE "{table}" ALTER COLUMN "{column}" SET DEFAULT odavl_now()')
    _rewrite_plan_clock(PLAN_CLOCK_BEFORE, PLAN_CLOCK_AFTER)


def downgrade() -> None:
    _rewrite_plan_clock(PLAN_CLOCK_AFTER, PLAN_CLOCK_BEFORE)
    for table, column, _ in _columns("'odavl_now()'"):
        before = (
            "statement_timestamp()"
            if (table, column) == ("usage_events", "ingested_at")
            else "now()"
        )
        op.execute(f'ALTER TABLE "{table}" ALTER COLUMN "{column}" SET DEFAULT {before}')
    op.execute("DROP FUNCTION odavl_now()")


def _columns(*defaults: str) -> list[tuple[str, str, str]]:
    query = STAMPED_COLUMNS.format(defaults=", ".join(defaults))
    return [tuple(row) for row in op.get_bind().exec_driver_sql(query).fetchall()]


def _rewrite_plan_clock(before: str, after: str) -> None:
    """Replace `before` by `after` in odavl_record_plan's definition, which must hold it once."""
    definition = (
        op.get_bind()
        .exec_driver_sql("SELECT pg_get_functiondef('odavl_record_plan(integer)'::regprocedure)")
        .scalar_one()
    )
    if definition.count(before) != 1:
        raise RuntimeError(f"odavl_record_plan() does not read the clock as expected: {before}")
    op.get_bind().exec_driver_sql(definition.replace(before, after))
