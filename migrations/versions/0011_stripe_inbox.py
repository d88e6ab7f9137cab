"""Stripe webhooks through an inbox, and Stripe's own timeline of each subscription.

`stripe_events` becomes the inbox: every verified event is stored as it came (`payload`, the
body), `pending`, before the endpoint answers; a worker processes it apart from the request
(`processed`), retries it with backoff (`attempts`, `next_attempt_at`, `last_error`) under a
lease (`lease_until`, `lease_token`), or sets it aside with its reason (`dead`: `reason`,
`detail`). `applied_at` becomes `received_at`; events applied before are `processed`.

`stripe_subscription_states` keeps each state of a subscription Stripe reported, at the time it
reported it for (an event's `created`, a sync's fetch): plan history is derived from it in
Stripe's order, whatever the order the states arrived in.

Downgrade: events not processed yet (pending or dead) are deleted, so that the code of before
applies them when Stripe delivers them again.

Revision ID: 0011
Revises: 0010

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUS_KNOWN = "ck_stripe_events_status_known"


def upgrade() -> None:
    op.alter_column("stripe_events", "applied_at", new_column_name="received_at")
    op.add_column("stripe_events", sa.Column("payload", sa.Text(), nullable=True))
    op.add_column("stripe_events", sa.Column("ordering_key", sa.String(255), nullable=True))
    op.add_column(
        "stripe_events",
        sa.Column("status", sa.String(10), nullable=False, server_default="processed"),
    )
    op.alter_column("stripe_events", "status", server_default="pending")
    op.create_check_constraint(
        STATUS_KNOWN, "stripe_events", "status IN ('pending', 'processed', 'dead')"
    )
    op.add_column(
        "stripe_events",
        sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0")),
    )
    for name in ("next_attempt_at", "lease_until", "processed_at"):
        op.add_column("stripe_events", sa.Column(name, sa.DateTime(timezone=True), nullable=True))
    op.add_column("stripe_events", sa.Column("lease_token", sa.Uuid(), nullable=True))
    op.add_column("stripe_events", sa.Column("last_error", sa.Text(), nullable=True))
    op.add_column("stripe_events", sa.Column("reason", sa.String(30), nullable=True))
    op.add_column("stripe_events", sa.Column("detail", sa.Text(), nullable=True))
    op.execute("UPDATE stripe_events SET processed_at = received_at")
    op.create_index(
        "ix_stripe_events_pending",
        "stripe_events",
        ["ordering_key", "created"],
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "ix_stripe_events_dead",
        "stripe_events",
        ["received_at"],
        postgresql_where=sa.text("status = 'dead'"),
    )
    op.create_table(
        "stripe_subscription_states",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("subscription_id", sa.String(255), nullable=False),
        sa.Column("customer_id", sa.String(255), nullable=False),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("event_id", sa.String(255), nullable=True),
        sa.Column(
            "status",
            postgresql.ENUM(name="subscription_status", create_type=False),
            nullable=False,
        ),
        sa.Column("tier", postgresql.ENUM(name="tier", create_type=False), nullable=True),
        sa.Column("price_id", sa.String(255), nullable=True),
        sa.Column("analyses_limit", sa.Integer(), nullable=True),
        sa.Column("fixes_limit", sa.Integer(), nullable=True),
        sa.Column("audits_limit", sa.Integer(), nullable=True),
        sa.Column("projects_limit", sa.Integer(), nullable=True),
        sa.Column("current_period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("current_period_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancel_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("canceled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "recorded_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("odavl_now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stripe_subscription_states")),
        sa.UniqueConstraint("event_id", name=op.f("uq_stripe_subscription_states_event_id")),
    )
    op.create_index(
        "ix_stripe_subscription_states_customer_id_observed_at",
        "stripe_subscription_states",
        ["customer_id", "observed_at"],
    )


def downgrade() -> None:
    op.drop_index(
        "ix_stripe_subscription_states_customer_id_observed_at",
        table_name="stripe_subscription_states",
    )
    op.drop_table("stripe_subscription_states")
    op.execute("DELETE FROM stripe_events WHERE status <> 'processed'")
    op.drop_index("ix_stripe_events_dead", table_name="stripe_events")
    op.drop_index("ix_stripe_events_pending", table_name="stripe_events")
    op.drop_constraint(STATUS_KNOWN, "stripe_events", type_="check")
    for name in (
        "detail",
        "reason",
        "last_error",
        "lease_token",
        "processed_at",
        "lease_until",
        "next_attempt_at",
        "attempts",
        "status",
        "ordering_key",
        "payload",
    ):
        op.drop_column("stripe_events", name)
    op.alter_column("stripe_events", "received_at", new_column_name="applied_at")
