"""Hostile inputs: failed and misplaced files in the ledger, sign-in throttle, Stripe ids whole.

Revision ID: 0003
Revises: 0002

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FILE_STATUS = postgresql.ENUM("ingested", "failed", "misplaced", name="file_status")
# Stripe's ids may reach 255 characters: a longer one than the column failed every delivery.
STRIPE_ID_COLUMNS = (
    ("organizations", "stripe_customer_id"),
    ("organizations", "stripe_subscription_id"),
    ("subscriptions", "stripe_subscription_id"),
    ("subscriptions", "stripe_price_id"),
    ("stripe_usage_reports", "stripe_customer_id"),
)


def upgrade() -> None:
    FILE_STATUS.create(op.get_bind())
    op.add_column(
        "ingested_files",
        sa.Column(
            "status",
            postgresql.ENUM(name="file_status", create_type=False),
            server_default="ingested",
            nullable=False,
        ),
    )
    op.add_column("ingested_files", sa.Column("error", sa.Text(), nullable=True))
    op.alter_column("ingested_files", "source", nullable=True)
    op.alter_column("ingested_files", "day", nullable=True)
    op.alter_column("quarantine", "source", nullable=True)
    # a misplaced file outside every source's folder has no source: it is still reported once
    op.drop_constraint("uq_ingested_files_source_path_sha256", "ingested_files", type_="unique")
    op.create_unique_constraint(
        "uq_ingested_files_source_path_sha256",
        "ingested_files",
        ["source", "path", "sha256"],
        postgresql_nulls_not_distinct=True,
    )

    for table, column in STRIPE_ID_COLUMNS:
        op.alter_column(
            table, column, type_=sa.String(length=255), existing_type=sa.String(length=100)
        )

    op.create_table(
        "sign_in_throttle",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("blocked_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_sign_in_throttle")),
    )


def downgrade() -> None:
    op.drop_table("sign_in_throttle")
    for table, column in STRIPE_ID_COLUMNS:  # fails, rather than cut, if a longer id is stored
        op.alter_column(
            table, column, type_=sa.String(length=100), existing_type=sa.String(length=255)
        )
    # rows that only this revision can hold go first: failed and misplaced files
    op.execute(
        "DELETE FROM quarantine WHERE file_id IN "
        "(SELECT id FROM ingested_files WHERE status <> 'ingested')"
    )
    op.execute("DELETE FROM ingested_files WHERE status <> 'ingested'")
    op.drop_constraint("uq_ingested_files_source_path_sha256", "ingested_files", type_="unique")
    op.create_unique_constraint(
        "uq_ingested_files_source_path_sha256", "ingested_files", ["source", "path", "sha256"]
    )
    op.alter_column("quarantine", "source", nullable=False)
    op.alter_column("ingested_files", "day", nullable=False)
    op.alter_column("ingested_files", "source", nullable=False)
    op.drop_column("ingested_files", "error")
    op.drop_column("ingested_files", "status")
    FILE_STATUS.drop(op.get_bind())
