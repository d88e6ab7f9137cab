"""Quota alerts: one per (organization, period, metric, threshold), and every delivery attempt.

Revision ID: 0007
Revises: 0006

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "quota_alerts",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("uid", sa.String(length=40), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("metric", sa.String(length=20), nullable=False),
        sa.Column("threshold", sa.String(length=10), nullable=False),
        sa.Column("used", sa.BigInteger(), nullable=False),
        sa.Column("quota", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("projected", sa.BigInteger(), nullable=False),
        sa.Column("projected_exhaustion", sa.Date(), nullable=True),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "detected_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "threshold IN ('80', '100', 'forecast')", name=op.f("ck_quota_alerts_threshold_known")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_quota_alerts_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quota_alerts")),
        sa.UniqueConstraint(
            "organization_id",
            "period_start",
            "metric",
            "threshold",
            name=op.f("uq_quota_alerts_organization_id_period_start_metric_threshold"),
        ),
        sa.UniqueConstraint("uid", name=op.f("uq_quota_alerts_uid")),
    )
    op.create_table(
        "organization_alert_endpoints",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_organization_alert_endpoints_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organization_id", name=op.f("pk_organization_alert_endpoints")),
    )
    op.create_table(
        "quota_alert_deliveries",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("alert_id", sa.BigInteger(), nullable=False),
        sa.Column("destination", sa.String(length=20), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "destination IN ('default', 'organization')",
            name=op.f("ck_quota_alert_deliveries_destination_known"),
        ),
        sa.CheckConstraint(
            "state IN ('pending', 'sent', 'failed')",
            name=op.f("ck_quota_alert_deliveries_state_known"),
        ),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["quota_alerts.id"],
            name=op.f("fk_quota_alert_deliveries_alert_id_quota_alerts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quota_alert_deliveries")),
        sa.UniqueConstraint(
            "alert_id", "destination", name=op.f("uq_quota_alert_deliveries_alert_id_destination")
        ),
    )
    op.create_index(
        op.f("ix_quota_alert_deliveries_state_next_attempt_at"),
        "quota_alert_deliveries",
        ["state", "next_attempt_at"],
        unique=False,
    )
    op.create_table(
        "quota_alert_attempts",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("delivery_id", sa.BigInteger(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("delivered", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["quota_alert_deliveries.id"],
            name=op.f("fk_quota_alert_attempts_delivery_id_quota_alert_deliveries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quota_alert_attempts")),
        sa.UniqueConstraint(
            "delivery_id", "attempt", name=op.f("uq_quota_alert_attempts_delivery_id_attempt")
        ),
    )


def downgrade() -> None:
    op.drop_table("quota_alert_attempts")
    op.drop_index(
        op.f("ix_quota_alert_deliveries_state_next_attempt_at"), table_name="quota_alert_deliveries"
    )
    op.drop_table("quota_alert_deliveries")
    op.drop_table("organization_alert_endpoints")
    op.drop_table("quota_alerts")
