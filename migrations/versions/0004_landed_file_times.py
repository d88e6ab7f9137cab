"""The ledger keeps each file's modification time, so a run finds new files without reading old ones.

Revision ID: 0004
Revises: 0003

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # NULL for the files ingested before: the next run reads them once more and fills it in
    op.add_column("ingested_files", sa.Column("mtime_ns", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    op.drop_column("ingested_files", "mtime_ns")
