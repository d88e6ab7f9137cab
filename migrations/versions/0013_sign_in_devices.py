"""Browsers that signed in before keep their own sign-in allowance: one row per trusted device.

Revision ID: 0013
Revises: 0012

A successful password sign-in gives the browser a device token (cookie `odavl_device`); the
table keeps its SHA-256 with the user and when it last signed in. Its failures are counted
under its own key of `sign_in_throttle`, so an attacker elsewhere cannot lock the user out of
it (odavl_pipeline/db/sign_in.py).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sign_in_devices",
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("odavl_now()"),
            nullable=False,
        ),
        sa.Column(
            "last_signed_in_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("odavl_now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_sign_in_devices_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_sha256", name=op.f("pk_sign_in_devices")),
    )
    op.create_index(
        op.f("ix_sign_in_devices_user_id"), "sign_in_devices", ["user_id"], unique=False
    )
    op.create_index(
        op.f("ix_sign_in_devices_last_signed_in_at"),
        "sign_in_devices",
        ["last_signed_in_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_table("sign_in_devices")
