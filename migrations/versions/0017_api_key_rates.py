"""Each API key's rate, shared by every API process: `api_key_rates`.

Revision ID: 0017
Revises: 0016

One row per key that made a request: its theoretical arrival time (GCRA, the generic cell rate
algorithm), the moment by which its requests so far would have been spread at the allowed rate.
A request is let through while that moment stays within a second of now, and moves it on by one
request's share of a second (odavl_pipeline/api/keys.py). The table is UNLOGGED: it is written
on every request and its rows matter for seconds, so it is kept out of the write-ahead log and
emptied by a crash, which only forgives the keys' last second.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_key_rates",
        sa.Column("key_id", sa.Integer(), nullable=False),
        sa.Column("spread_until", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_api_key_rates")),
        prefixes=["UNLOGGED"],
    )


def downgrade() -> None:
    op.drop_table("api_key_rates")
