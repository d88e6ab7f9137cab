"""Marts and Stripe: change tracking for the marts, arrival of usage, closed periods, Stripe.

Revision ID: 0002
Revises: 0001

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The fact tables and the timestamp that puts each row on a UTC day of the marts.
FACT_DAYS = {
    "usage_events": "occurred_at",
    "error_events": "occurred_at",
    "fix_attestations": "created_at",
    "audit_results": "occurred_at",
}

MARK_FUNCTION = """
CREATE FUNCTION mark_mart_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- TG_ARGV: the source, the timestamp column. One row per (source, day), newest version.
    EXECUTE format(
        'INSERT INTO mart_changes (source, day, version) '
        'SELECT %L::landing_source, day, nextval(''mart_change_version'') '
        'FROM (SELECT DISTINCT (%I AT TIME ZONE ''UTC'')::date AS day FROM changed_rows) AS days '
        'ON CONFLICT (source, day) DO UPDATE SET version = excluded.version',
        TG_ARGV[0], TG_ARGV[1]);
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    op.add_column(
        "usage_events",
        sa.Column(
            "ingested_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("statement_timestamp()"),
            nullable=False,
        ),
    )
    op.execute(
        "UPDATE usage_events AS u SET ingested_at = f.ingested_at "
        "FROM ingested_files AS f WHERE f.id = u.file_id"
    )

    op.create_table(
        "mart_changes",
        sa.Column(
            "source", postgresql.ENUM(name="landing_source", create_type=False), nullable=False
        ),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("source", "day", name=op.f("pk_mart_changes")),
    )
    op.execute("CREATE SEQUENCE mart_change_version")
    op.execute(MARK_FUNCTION)
    for table, column in FACT_DAYS.items():
        for event, transition in (("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD")):
            op.execute(
                f"CREATE TRIGGER mark_mart_changes_{event.lower()} AFTER {event} ON {table} "
                f"REFERENCING {transition} TABLE AS changed_rows FOR EACH STATEMENT "
                f"EXECUTE FUNCTION mark_mart_changes('{table}', '{column}')"
            )
        op.execute(
            f"INSERT INTO mart_changes (source, day, version) "
            f"SELECT '{table}', day, nextval('mart_change_version') FROM "
            f"(SELECT DISTINCT ({column} AT TIME ZONE 'UTC')::date AS day FROM {table}) AS days"
        )

    op.create_table(
        "billing_closes",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_billing_closes_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organization_id", "period_start", name=op.f("pk_billing_closes")),
    )
    op.create_table(
        "stripe_events",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "applied_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stripe_events")),
    )
    op.create_table(
        "stripe_usage_reports",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(length=20), nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("identifier", sa.String(length=100), nullable=False),
        sa.Column("stripe_customer_id", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'sent')", name=op.f("ck_stripe_usage_reports_status_known")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_stripe_usage_reports_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stripe_usage_reports")),
        sa.UniqueConstraint("identifier", name=op.f("uq_stripe_usage_reports_identifier")),
        sa.UniqueConstraint(
            "organization_id",
            "metric",
            "period_start",
            name=op.f("uq_stripe_usage_reports_organization_id_metric_period_start"),
        ),
    )


def downgrade() -> None:
    op.drop_table("stripe_usage_reports")
    op.drop_table("stripe_events")
    op.drop_table("billing_closes")
    for table in FACT_DAYS:
        for event in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER mark_mart_changes_{event} ON {table}")
    op.execute("DROP FUNCTION mark_mart_changes()")
    op.execute("DROP SEQUENCE mart_change_version")
    op.drop_table("mart_changes")
    op.drop_column("usage_events", "ingested_at")
