"""An organization's usage by the time it arrived: btree indexes on usage_events
(organization_id, ingested_at) and usage_corrections (organization_id, booked_at).

Revision ID: 0018
Revises: 0017

The HTTP API's live quota adds to the last marts build what one organization's ledger took in
since the build's cut (odavl_pipeline/billing/live_quota.py). The BRIN indexes of 0015 would
read every organization's usage since the cut; these read only the one organization's.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0018"
down_revision: str | Sequence[str] | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        op.f("ix_usage_events_organization_id_ingested_at"),
        "usage_events",
        ["organization_id", "ingested_at"],
    )
    op.create_index(
        op.f("ix_usage_corrections_organization_id_booked_at"),
        "usage_corrections",
        ["organization_id", "booked_at"],
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_usage_corrections_organization_id_booked_at"), table_name="usage_corrections"
    )
    op.drop_index(op.f("ix_usage_events_organization_id_ingested_at"), table_name="usage_events")
