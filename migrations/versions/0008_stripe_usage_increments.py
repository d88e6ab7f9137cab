"""Usage reported to Stripe as the period runs: increments since the last report, each with a deterministic identifier.

Revision ID: 0008
Revises: 0007

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


OLD_UNIQUE = "uq_stripe_usage_reports_organization_id_metric_period_start"
NEW_UNIQUE = "uq_stripe_usage_reports_increment"
POSITIVE = "ck_stripe_usage_reports_increment_positive"


def upgrade() -> None:
    # Each row is now one increment; a row of before was a closed period's whole usage, sent
    # at once: the first increment of its period, and its last (`final`). Identifiers stay.
    op.add_column("stripe_usage_reports", sa.Column("cumulative", sa.BigInteger(), nullable=True))
    op.add_column(
        "stripe_usage_reports",
        sa.Column("final", sa.Boolean(), nullable=False, server_default=sa.true()),
    )
    op.execute("UPDATE stripe_usage_reports SET cumulative = quantity")
    op.alter_column("stripe_usage_reports", "cumulative", nullable=False)
    op.alter_column("stripe_usage_reports", "final", server_default=None)
    op.drop_constraint(OLD_UNIQUE, "stripe_usage_reports", type_="unique")
    op.create_unique_constraint(
        NEW_UNIQUE,
        "stripe_usage_reports",
        ["organization_id", "metric", "period_start", "cumulative"],
    )
    op.create_check_constraint(
        POSITIVE, "stripe_usage_reports", "quantity > 0 AND cumulative >= quantity"
    )


def downgrade() -> None:
    # Back to one row per period: the increments of a period fold into its first row, which
    # keeps its identifier (the others' identifiers are lost with their rows).
    op.execute("""
        WITH totals AS (
            SELECT organization_id, metric, period_start, min(id) AS first_id,
                   max(cumulative) AS total, bool_and(status = 'sent') AS all_sent
            FROM stripe_usage_reports GROUP BY organization_id, metric, period_start)
        UPDATE stripe_usage_reports r
        SET quantity = t.total, status = CASE WHEN t.all_sent THEN 'sent' ELSE 'pending' END
        FROM totals t WHERE r.id = t.first_id""")
    op.execute("""
        DELETE FROM stripe_usage_reports r WHERE EXISTS (
            SELECT 1 FROM stripe_usage_reports f
            WHERE f.organization_id = r.organization_id AND f.metric = r.metric
              AND f.period_start = r.period_start AND f.id < r.id)""")
    op.drop_constraint(POSITIVE, "stripe_usage_reports", type_="check")
    op.drop_constraint(NEW_UNIQUE, "stripe_usage_reports", type_="unique")
    op.create_unique_constraint(
        OLD_UNIQUE, "stripe_usage_reports", ["organization_id", "metric", "period_start"]
    )
    op.drop_column("stripe_usage_reports", "final")
    op.drop_column("stripe_usage_reports", "cumulative")
