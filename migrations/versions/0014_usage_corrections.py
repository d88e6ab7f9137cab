"""Usage corrections: batches, what a draft carries, the ledger of corrected versions, and the
credits due when corrections leave a period below what Stripe was sent.

Revision ID: 0014
Revises: 0013

A correction never edits `usage_events`: a committed batch appends to `usage_corrections`, per
event it changes, the version it retracts (sign -1) and the version it makes (sign +1), booked
at its commit; a revert appends their opposites (CONTRACT.md section 8). Two views read them:

- `usage_ledger`: every signed entry of usage, the landed rows (+1, at their ingestion) and the
  corrections (`ingested_at` their commit or revert); what the marts and their checks sum.
- `usage_current`: each event's current version (its newest +1 entry, else its landed row) and
  whether it counts (`live`: its entries' signs sum to 1).

The corrections mark the days they touch for the marts, as the landed facts do (0002, 0009).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

USAGE_EVENT_TYPE = postgresql.ENUM(name="usage_event_type", create_type=False)

LEDGER_VIEW = """
CREATE VIEW usage_ledger AS
SELECT organization_id, event_id, event_type, occurred_at, ingested_at,
       quantity, 1 AS events, project_id, file_id, line_no,
       NULL::bigint AS batch_id
FROM usage_events
UNION ALL
SELECT organization_id, event_id, event_type, occurred_at, booked_at AS ingested_at,
       sign * quantity, sign::integer, project_id, NULL::bigint, line_no, batch_id
FROM usage_corrections
"""

CURRENT_VIEW = """
CREATE VIEW usage_current AS
SELECT DISTINCT ON (organization_id, event_id)
       organization_id, event_id, event_type, occurred_at, quantity, project_id, user_email,
       payload, batch_id, sum(sign) OVER (PARTITION BY organization_id, event_id) > 0 AS live
FROM (
    SELECT organization_id, event_id, 1 AS sign, 0::bigint AS entry, NULL::bigint AS batch_id,
           event_type, occurred_at, quantity, project_id, user_email, payload
    FROM usage_events
    UNION ALL
    SELECT organization_id, event_id, sign, id, batch_id, event_type, occurred_at, quantity,
           project_id, user_email, payload
    FROM usage_corrections
) AS versions
ORDER BY organization_id, event_id, sign DESC, entry DESC
"""


def upgrade() -> None:
    op.create_table(
        "correction_batches",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("replace", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("odavl_now()"),
            nullable=False,
        ),
        sa.Column("committed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reverted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reverted_by", sa.Text(), nullable=True),
        sa.Column("revert_reason", sa.Text(), nullable=True),
        sa.Column("discarded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("changes", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("added", sa.Integer(), nullable=False),
        sa.Column("amended", sa.Integer(), nullable=False),
        sa.Column("voided", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "state IN ('draft', 'committed', 'reverted', 'discarded')",
            name=op.f("ck_correction_batches_state_known"),
        ),
        sa.CheckConstraint(
            "window_start < window_end", name=op.f("ck_correction_batches_window_ordered")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_correction_batches_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_correction_batches")),
    )
    op.create_index(
        op.f("ix_correction_batches_organization_id_state"),
        "correction_batches",
        ["organization_id", "state"],
    )
    op.create_table(
        "correction_records",
        sa.Column("batch_id", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("file_name", sa.Text(), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("event_type", USAGE_EVENT_TYPE, nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=True),
        sa.Column("user_email", sa.Text(), nullable=True),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["correction_batches.id"],
            name=op.f("fk_correction_records_batch_id_correction_batches"),
        ),
        sa.PrimaryKeyConstraint("batch_id", "event_id", name=op.f("pk_correction_records")),
    )
    op.create_table(
        "correction_rejects",
        sa.Column("batch_id", sa.BigInteger(), nullable=False),
        sa.Column("file_name", sa.Text(), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("raw", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["correction_batches.id"],
            name=op.f("fk_correction_rejects_batch_id_correction_batches"),
        ),
        sa.PrimaryKeyConstraint(
            "batch_id", "file_name", "line_no", name=op.f("pk_correction_rejects")
        ),
    )
    op.create_table(
        "correction_voids",
        sa.Column("batch_id", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["correction_batches.id"],
            name=op.f("fk_correction_voids_batch_id_correction_batches"),
        ),
        sa.PrimaryKeyConstraint("batch_id", "event_id", name=op.f("pk_correction_voids")),
    )
    op.create_table(
        "usage_corrections",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("batch_id", sa.BigInteger(), nullable=False),
        sa.Column("reverting", sa.Boolean(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("sign", sa.SmallInteger(), nullable=False),
        sa.Column("event_type", USAGE_EVENT_TYPE, nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=True),
        sa.Column("user_email", sa.Text(), nullable=True),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("file_name", sa.Text(), nullable=True),
        sa.Column("line_no", sa.Integer(), nullable=True),
        sa.Column(
            "booked_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("odavl_now()"),
            nullable=False,
        ),
        sa.CheckConstraint("sign IN (-1, 1)", name=op.f("ck_usage_corrections_sign_known")),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["correction_batches.id"],
            name=op.f("fk_usage_corrections_batch_id_correction_batches"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_corrections")),
    )
    for columns in (["organization_id", "event_id"], ["batch_id"], ["occurred_at"]):
        op.create_index(
            op.f(f"ix_usage_corrections_{'_'.join(columns)}"), "usage_corrections", columns
        )
    op.execute(
        "CREATE TRIGGER mark_mart_changes_insert AFTER INSERT ON usage_corrections "
        "REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION mark_mart_changes('usage_events', 'occurred_at')"
    )
    op.execute(LEDGER_VIEW)
    op.execute(CURRENT_VIEW)
    op.create_table(
        "stripe_credits_due",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(length=20), nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reported", sa.BigInteger(), nullable=False),
        sa.Column("used", sa.BigInteger(), nullable=False),
        sa.Column("credit", sa.BigInteger(), nullable=False),
        sa.Column(
            "recorded_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("odavl_now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("odavl_now()"),
            nullable=False,
        ),
        sa.CheckConstraint("credit >= 0", name=op.f("ck_stripe_credits_due_credit_not_negative")),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_stripe_credits_due_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "organization_id", "metric", "period_start", name=op.f("pk_stripe_credits_due")
        ),
    )


def downgrade() -> None:
    op.drop_table("stripe_credits_due")
    op.execute("DROP VIEW usage_current")
    op.execute("DROP VIEW usage_ledger")
    op.drop_table("usage_corrections")
    op.drop_table("correction_voids")
    op.drop_table("correction_rejects")
    op.drop_table("correction_records")
    op.drop_table("correction_batches")
