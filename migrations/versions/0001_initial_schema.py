"""Initial schema: the console's reference data, landed facts, file ledger and quarantine.

Revision ID: 0001
Revises:
Create Date: 2026-11-26 14:15:15.181287

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

ENUMS = {
    "landing_source": postgresql.ENUM(
        "usage_events",
        "error_events",
        "fix_attestations",
        "audit_results",
        name="landing_source",
        create_type=False,
    ),
    "tier": postgresql.ENUM("FREE", "PRO", "ENTERPRISE", name="tier", create_type=False),
    "org_status": postgresql.ENUM(
        "ACTIVE", "SUSPENDED", "DELETED", name="org_status", create_type=False
    ),
    "member_role": postgresql.ENUM(
        "OWNER", "ADMIN", "DEVELOPER", "VIEWER", name="member_role", create_type=False
    ),
    "project_status": postgresql.ENUM(
        "ACTIVE", "ARCHIVED", "DELETED", name="project_status", create_type=False
    ),
    "subscription_status": postgresql.ENUM(
        "ACTIVE", "PAST_DUE", "CANCELED", "TRIALING", name="subscription_status", create_type=False
    ),
    "audit_environment": postgresql.ENUM(
        "development", "staging", "production", name="audit_environment", create_type=False
    ),
    "audit_device": postgresql.ENUM(
        "desktop", "mobile", "tablet", name="audit_device", create_type=False
    ),
    "run_status": postgresql.ENUM(
        "SUCCESS", "PARTIAL", "FAILED", name="run_status", create_type=False
    ),
    "severity": postgresql.ENUM(
        "INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL", name="severity", create_type=False
    ),
    "signature_status": postgresql.ENUM(
        "open", "resolved", "regressed", name="signature_status", create_type=False
    ),
    "chain_status": postgresql.ENUM("verified", "pending", name="chain_status", create_type=False),
    "usage_event_type": postgresql.ENUM(
        "insight_analysis",
        "autopilot_job",
        "guardian_test_run",
        "api_call",
        name="usage_event_type",
        create_type=False,
    ),
    "audit_suite": postgresql.ENUM(
        "accessibility",
        "performance",
        "security",
        "seo",
        "best_practices",
        name="audit_suite",
        create_type=False,
    ),
}

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    for enum in ENUMS.values():
        enum.create(op.get_bind(), checkfirst=True)
    op.create_table(
        "ingested_files",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("source", ENUMS["landing_source"], nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("lines", sa.Integer(), nullable=False),
        sa.Column("accepted", sa.Integer(), nullable=False),
        sa.Column("duplicate", sa.Integer(), nullable=False),
        sa.Column("pending", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column(
            "ingested_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "lines = accepted + duplicate + pending + rejected",
            name=op.f("ck_ingested_files_lines_balance"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingested_files")),
        sa.UniqueConstraint(
            "source", "path", "sha256", name=op.f("uq_ingested_files_source_path_sha256")
        ),
    )
    op.create_index(op.f("ix_ingested_files_run_id"), "ingested_files", ["run_id"], unique=False)
    op.create_index(
        op.f("ix_ingested_files_source_day"), "ingested_files", ["source", "day"], unique=False
    )
    op.create_table(
        "organizations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("slug", sa.String(length=100), nullable=False),
        sa.Column("tier", ENUMS["tier"], nullable=False),
        sa.Column("status", ENUMS["org_status"], nullable=False),
        sa.Column("stripe_customer_id", sa.String(length=100), nullable=True),
        sa.Column("stripe_subscription_id", sa.String(length=100), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organizations")),
        sa.UniqueConstraint("slug", name=op.f("uq_organizations_slug")),
        sa.UniqueConstraint("stripe_customer_id", name=op.f("uq_organizations_stripe_customer_id")),
        sa.UniqueConstraint(
            "stripe_subscription_id", name=op.f("uq_organizations_stripe_subscription_id")
        ),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("email_verified", sa.DateTime(timezone=True), nullable=True),
        sa.Column("image", sa.Text(), nullable=True),
        sa.Column("hashed_password", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )
    op.create_table(
        "verification_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("identifier", sa.String(length=320), nullable=False),
        sa.Column("token", sa.String(length=200), nullable=False),
        sa.Column("expires", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verification_tokens")),
        sa.UniqueConstraint(
            "identifier", "token", name=op.f("uq_verification_tokens_identifier_token")
        ),
        sa.UniqueConstraint("token", name=op.f("uq_verification_tokens_token")),
    )
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=50), nullable=False),
        sa.Column("provider", sa.String(length=100), nullable=False),
        sa.Column("provider_account_id", sa.String(length=200), nullable=False),
        sa.Column("refresh_token", sa.Text(), nullable=True),
        sa.Column("access_token", sa.Text(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("token_type", sa.String(length=50), nullable=True),
        sa.Column("scope", sa.Text(), nullable=True),
        sa.Column("id_token", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_accounts_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint(
            "provider", "provider_account_id", name=op.f("uq_accounts_provider_provider_account_id")
        ),
    )
    op.create_index(op.f("ix_accounts_user_id"), "accounts", ["user_id"], unique=False)
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("key_prefix", sa.String(length=8), nullable=False),
        sa.Column("scopes", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_api_keys_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.create_index(op.f("ix_api_keys_user_id"), "api_keys", ["user_id"], unique=False)
    op.create_table(
        "organization_members",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("role", ENUMS["member_role"], nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_organization_members_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_organization_members_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organization_members")),
        sa.UniqueConstraint(
            "organization_id",
            "user_id",
            name=op.f("uq_organization_members_organization_id_user_id"),
        ),
    )
    op.create_index(
        op.f("ix_organization_members_user_id"), "organization_members", ["user_id"], unique=False
    )
    op.create_table(
        "projects",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("slug", sa.String(length=100), nullable=False),
        sa.Column("repository", sa.Text(), nullable=True),
        sa.Column("branch", sa.String(length=200), nullable=True),
        sa.Column("language", sa.String(length=50), nullable=True),
        sa.Column("status", ENUMS["project_status"], nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_projects_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projects")),
        sa.UniqueConstraint(
            "organization_id", "slug", name=op.f("uq_projects_organization_id_slug")
        ),
    )
    op.create_table(
        "quarantine",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("source", ENUMS["landing_source"], nullable=False),
        sa.Column("file_id", sa.BigInteger(), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("raw", sa.Text(), nullable=True),
        sa.Column("org_slug", sa.Text(), nullable=True),
        sa.Column("project_slug", sa.Text(), nullable=True),
        sa.Column(
            "quarantined_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["file_id"], ["ingested_files.id"], name=op.f("fk_quarantine_file_id_ingested_files")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quarantine")),
    )
    op.create_index(op.f("ix_quarantine_file_id"), "quarantine", ["file_id"], unique=False)
    op.create_index(
        op.f("ix_quarantine_source_reason"), "quarantine", ["source", "reason"], unique=False
    )
    op.create_table(
        "sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_token", sa.String(length=200), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("expires", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_sessions_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sessions")),
        sa.UniqueConstraint("session_token", name=op.f("uq_sessions_session_token")),
    )
    op.create_index(op.f("ix_sessions_user_id"), "sessions", ["user_id"], unique=False)
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("stripe_subscription_id", sa.String(length=100), nullable=True),
        sa.Column("stripe_price_id", sa.String(length=100), nullable=True),
        sa.Column("status", ENUMS["subscription_status"], nullable=False),
        sa.Column("analyses_limit", sa.Integer(), nullable=True),
        sa.Column("fixes_limit", sa.Integer(), nullable=True),
        sa.Column("audits_limit", sa.Integer(), nullable=True),
        sa.Column("projects_limit", sa.Integer(), nullable=True),
        sa.Column("current_period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("current_period_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancel_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("canceled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_subscriptions_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscriptions")),
        sa.UniqueConstraint("organization_id", name=op.f("uq_subscriptions_organization_id")),
        sa.UniqueConstraint(
            "stripe_subscription_id", name=op.f("uq_subscriptions_stripe_subscription_id")
        ),
    )
    op.create_table(
        "audit_results",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(length=200), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("environment", ENUMS["audit_environment"], nullable=False),
        sa.Column("device", ENUMS["audit_device"], nullable=False),
        sa.Column("status", ENUMS["run_status"], nullable=False),
        sa.Column("score_accessibility", sa.Integer(), nullable=True),
        sa.Column("score_performance", sa.Integer(), nullable=True),
        sa.Column("score_security", sa.Integer(), nullable=True),
        sa.Column("score_seo", sa.Integer(), nullable=True),
        sa.Column("lighthouse_performance", sa.Integer(), nullable=True),
        sa.Column("lighthouse_accessibility", sa.Integer(), nullable=True),
        sa.Column("lighthouse_best_practices", sa.Integer(), nullable=True),
        sa.Column("lighthouse_seo", sa.Integer(), nullable=True),
        sa.Column("duration_ms", sa.BigInteger(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("total_issues", sa.Integer(), nullable=False),
        sa.Column("critical_issues", sa.Integer(), nullable=False),
        sa.Column("high_issues", sa.Integer(), nullable=False),
        sa.Column("medium_issues", sa.Integer(), nullable=False),
        sa.Column("low_issues", sa.Integer(), nullable=False),
        sa.Column("info_issues", sa.Integer(), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("file_id", sa.BigInteger(), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_results")),
        sa.UniqueConstraint(
            "project_id", "request_id", name=op.f("uq_audit_results_project_id_request_id")
        ),
    )
    op.create_index(op.f("ix_audit_results_file_id"), "audit_results", ["file_id"], unique=False)
    op.create_index(
        op.f("ix_audit_results_project_id_occurred_at"),
        "audit_results",
        ["project_id", "occurred_at"],
        unique=False,
    )
    op.create_table(
        "error_events",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("signature_hash", sa.String(length=64), nullable=False),
        sa.Column("detector", sa.String(length=64), nullable=False),
        sa.Column("severity", ENUMS["severity"], nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("file", sa.Text(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("column", sa.Integer(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("file_id", sa.BigInteger(), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_error_events")),
        sa.UniqueConstraint(
            "project_id", "event_id", name=op.f("uq_error_events_project_id_event_id")
        ),
    )
    op.create_index(op.f("ix_error_events_file_id"), "error_events", ["file_id"], unique=False)
    op.create_index(
        op.f("ix_error_events_occurred_at"), "error_events", ["occurred_at"], unique=False
    )
    op.create_index(
        op.f("ix_error_events_project_id_signature_hash"),
        "error_events",
        ["project_id", "signature_hash"],
        unique=False,
    )
    op.create_table(
        "error_signatures",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("detector", sa.String(length=64), nullable=False),
        sa.Column("severity", ENUMS["severity"], nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("file", sa.Text(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("column", sa.Integer(), nullable=True),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", ENUMS["signature_status"], nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_error_signatures_project_id_projects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_error_signatures")),
        sa.UniqueConstraint("project_id", "hash", name=op.f("uq_error_signatures_project_id_hash")),
    )
    op.create_index(
        op.f("ix_error_signatures_project_id_last_seen"),
        "error_signatures",
        ["project_id", "last_seen"],
        unique=False,
    )
    op.create_table(
        "fix_attestations",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(length=200), nullable=False),
        sa.Column("status", ENUMS["run_status"], nullable=False),
        sa.Column("files_changed", sa.Integer(), nullable=False),
        sa.Column("lines_added", sa.Integer(), nullable=False),
        sa.Column("lines_removed", sa.Integer(), nullable=False),
        sa.Column("risk_score", sa.Integer(), nullable=False),
        sa.Column("recipes", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("chain_status", ENUMS["chain_status"], nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("file_id", sa.BigInteger(), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fix_attestations")),
        sa.UniqueConstraint("project_id", "hash", name=op.f("uq_fix_attestations_project_id_hash")),
        sa.UniqueConstraint(
            "project_id", "request_id", name=op.f("uq_fix_attestations_project_id_request_id")
        ),
    )
    op.create_index(
        op.f("ix_fix_attestations_created_at"), "fix_attestations", ["created_at"], unique=False
    )
    op.create_index(
        op.f("ix_fix_attestations_file_id"), "fix_attestations", ["file_id"], unique=False
    )
    op.create_index(
        op.f("ix_fix_attestations_project_id_prev_hash"),
        "fix_attestations",
        ["project_id", "prev_hash"],
        unique=False,
    )
    op.create_index(
        "uq_fix_attestations_verified_link",
        "fix_attestations",
        ["project_id", "prev_hash"],
        unique=True,
        postgresql_where="chain_status = 'verified'",
    )
    op.create_table(
        "usage_events",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("event_type", ENUMS["usage_event_type"], nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=True),
        sa.Column("user_email", sa.Text(), nullable=True),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("file_id", sa.BigInteger(), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_events")),
        sa.UniqueConstraint(
            "organization_id", "event_id", name=op.f("uq_usage_events_organization_id_event_id")
        ),
    )
    op.create_index(op.f("ix_usage_events_file_id"), "usage_events", ["file_id"], unique=False)
    op.create_index(
        op.f("ix_usage_events_occurred_at"), "usage_events", ["occurred_at"], unique=False
    )
    op.create_index(
        op.f("ix_usage_events_organization_id_occurred_at"),
        "usage_events",
        ["organization_id", "occurred_at"],
        unique=False,
    )
    op.create_table(
        "audit_issues",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("audit_id", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("suite", ENUMS["audit_suite"], nullable=False),
        sa.Column("severity", ENUMS["severity"], nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("recommendation", sa.Text(), nullable=False),
        sa.Column("element", sa.Text(), nullable=True),
        sa.Column("documentation", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["audit_id"],
            ["audit_results.id"],
            name=op.f("fk_audit_issues_audit_id_audit_results"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_issues")),
        sa.UniqueConstraint("audit_id", "position", name=op.f("uq_audit_issues_audit_id_position")),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("audit_issues")
    op.drop_index(op.f("ix_usage_events_organization_id_occurred_at"), table_name="usage_events")
    op.drop_index(op.f("ix_usage_events_occurred_at"), table_name="usage_events")
    op.drop_index(op.f("ix_usage_events_file_id"), table_name="usage_events")
    op.drop_table("usage_events")
    op.drop_index(
        "uq_fix_attestations_verified_link",
        table_name="fix_attestations",
        postgresql_where="chain_status = 'verified'",
    )
    op.drop_index(op.f("ix_fix_attestations_project_id_prev_hash"), table_name="fix_attestations")
    op.drop_index(op.f("ix_fix_attestations_file_id"), table_name="fix_attestations")
    op.drop_index(op.f("ix_fix_attestations_created_at"), table_name="fix_attestations")
    op.drop_table("fix_attestations")
    op.drop_index(op.f("ix_error_signatures_project_id_last_seen"), table_name="error_signatures")
    op.drop_table("error_signatures")
    op.drop_index(op.f("ix_error_events_project_id_signature_hash"), table_name="error_events")
    op.drop_index(op.f("ix_error_events_occurred_at"), table_name="error_events")
    op.drop_index(op.f("ix_error_events_file_id"), table_name="error_events")
    op.drop_table("error_events")
    op.drop_index(op.f("ix_audit_results_project_id_occurred_at"), table_name="audit_results")
    op.drop_index(op.f("ix_audit_results_file_id"), table_name="audit_results")
    op.drop_table("audit_results")
    op.drop_table("subscriptions")
    op.drop_index(op.f("ix_sessions_user_id"), table_name="sessions")
    op.drop_table("sessions")
    op.drop_index(op.f("ix_quarantine_source_reason"), table_name="quarantine")
    op.drop_index(op.f("ix_quarantine_file_id"), table_name="quarantine")
    op.drop_table("quarantine")
    op.drop_table("projects")
    op.drop_index(op.f("ix_organization_members_user_id"), table_name="organization_members")
    op.drop_table("organization_members")
    op.drop_index(op.f("ix_api_keys_user_id"), table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_index(op.f("ix_accounts_user_id"), table_name="accounts")
    op.drop_table("accounts")
    op.drop_table("verification_tokens")
    op.drop_table("users")
    op.drop_table("organizations")
    op.drop_index(op.f("ix_ingested_files_source_day"), table_name="ingested_files")
    op.drop_index(op.f("ix_ingested_files_run_id"), table_name="ingested_files")
    op.drop_table("ingested_files")
    for enum in ENUMS.values():
        enum.drop(op.get_bind(), checkfirst=True)
