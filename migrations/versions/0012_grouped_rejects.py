"""Identical rejected lines of a file are one quarantine row with all their line numbers.

`quarantine.line_no` stays the first line (NULL for a whole file); `more_line_nos` holds the
others, ascending (NULL when there are none); `lines` counts them all, and a CHECK keeps it equal
to 1 + the length of `more_line_nos`. Rows written before stay one per line, which is the same
thing with `lines` 1.

Downgrade: each grouped row gives back one row per line, so that the code of before counts them.

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LINES_COUNTED = "ck_quarantine_lines_counted"

UNGROUP = """
    INSERT INTO quarantine (source, file_id, line_no, reason, detail, raw, org_slug, project_slug,
                            quarantined_at)
    SELECT q.source, q.file_id, n, q.reason, q.detail, q.raw, q.org_slug, q.project_slug,
           q.quarantined_at
    FROM quarantine q, unnest(q.more_line_nos) AS n
    WHERE q.more_line_nos IS NOT NULL
"""


def upgrade() -> None:
    op.add_column(
        "quarantine", sa.Column("more_line_nos", postgresql.ARRAY(sa.Integer()), nullable=True)
    )
    op.add_column(
        "quarantine",
        sa.Column("lines", sa.Integer(), server_default=sa.text("1"), nullable=False),
    )
    op.create_check_constraint(
        op.f(LINES_COUNTED), "quarantine", "lines = 1 + coalesce(cardinality(more_line_nos), 0)"
    )


def downgrade() -> None:
    op.execute(UNGROUP)
    op.drop_constraint(op.f(LINES_COUNTED), "quarantine", type_="check")
    op.drop_column("quarantine", "lines")
    op.drop_column("quarantine", "more_line_nos")
