"""Requests of the HTTP API, kept whole: `api_requests`.

Revision ID: 0016
Revises: 0015

A request's records are ingested as the lines of a ledger file of their own (`ingested_files`,
path `api/<source>/<day>/<request>.ndjson`), so their rows, quarantine and counts are those of a
landed file; this table keeps the request as it came (its body, content type, the key that sent
it and when), so a billed number traces to the request and the record's position in it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_requests",
        sa.Column("file_id", sa.BigInteger(), nullable=False),
        sa.Column("key_id", sa.Integer(), nullable=False),
        sa.Column("key_prefix", sa.String(length=8), nullable=False),
        sa.Column("content_type", sa.Text(), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("odavl_now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["file_id"], ["ingested_files.id"], name=op.f("fk_api_requests_file_id_ingested_files")
        ),
        sa.ForeignKeyConstraint(
            ["key_id"], ["api_keys.id"], name=op.f("fk_api_requests_key_id_api_keys")
        ),
        sa.PrimaryKeyConstraint("file_id", name=op.f("pk_api_requests")),
    )
    op.create_index(op.f("ix_api_requests_key_id"), "api_requests", ["key_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_api_requests_key_id"), table_name="api_requests")
    op.drop_table("api_requests")
