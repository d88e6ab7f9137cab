"""Usage by the time it arrived: BRIN indexes on usage_events.ingested_at and
usage_corrections.booked_at.

Revision ID: 0015
Revises: 0014

An incremental build's reconciliation reads the usage that arrived in the billing periods it
recomputed (late usage and corrections), not every event (odavl_pipeline/marts/reconcile.py).
Both tables are appended in the order of those times, which a BRIN index serves at a few pages
per million rows and almost no cost to the writers.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        op.f("ix_usage_events_ingested_at"),
        "usage_events",
        ["ingested_at"],
        postgresql_using="brin",
    )
    op.create_index(
        op.f("ix_usage_corrections_booked_at"),
        "usage_corrections",
        ["booked_at"],
        postgresql_using="brin",
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_usage_corrections_booked_at"), table_name="usage_corrections")
    op.drop_index(op.f("ix_usage_events_ingested_at"), table_name="usage_events")
