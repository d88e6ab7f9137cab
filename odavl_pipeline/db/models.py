"""SQLAlchemy 2.0 models of the operational schema.

Reference data (users, organizations, projects, subscriptions, API keys) is the
cloud console's; the landed facts (usage, errors, attestations, audits) and the
pipeline's own bookkeeping (file ledger, quarantine) are written by ingestion.
Every landed row keeps its provenance: the ledger row of its file and its line.

The landed facts refer to organizations, projects and ledger rows by id without
enforced foreign keys: PostgreSQL would check each key row by row, which measured
at 44 % of the cost of an insert. The writer resolves every id in the transaction
that inserts the row, reference rows are only ever soft-deleted (status), facts
must outlive them, and the `references_resolve` asset check verifies each run.
"""

import enum
import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Enum,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from odavl_pipeline.domain.enums import (
    AuditSuite,
    ChainStatus,
    Device,
    Environment,
    MemberRole,
    OrgStatus,
    ProjectStatus,
    RunStatus,
    Severity,
    SignatureStatus,
    Source,
    SubscriptionStatus,
    Tier,
    UsageEventType,
)

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: DateTime(timezone=True), dict[str, Any]: JSONB}


# Stripe's object ids are at most 255 characters (its API reference); ours keep them whole.
STRIPE_ID_LENGTH = 255


def pg_enum(enum_class: type[enum.Enum], name: str) -> Enum:
    """A PostgreSQL enum stored by value, declared in the order of the Python enum (the
    vocabulary's are in domain/enums.py)."""
    return Enum(
        enum_class, name=name, values_callable=lambda e: [m.value for m in e], validate_strings=True
    )


def _created() -> Mapped[datetime]:
    return mapped_column(server_default=func.odavl_now())


# --- identity (the console's) -------------------------------------------------


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    email_verified: Mapped[datetime | None]
    image: Mapped[str | None] = mapped_column(Text)
    hashed_password: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()


class Account(Base):
    """An OAuth identity linked to a user."""

    __tablename__ = "accounts"
    __table_args__ = (UniqueConstraint("provider", "provider_account_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(50))
    provider: Mapped[str] = mapped_column(String(100))
    provider_account_id: Mapped[str] = mapped_column(String(200))
    refresh_token: Mapped[str | None] = mapped_column(Text)
    access_token: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime | None]
    token_type: Mapped[str | None] = mapped_column(String(50))
    scope: Mapped[str | None] = mapped_column(Text)
    id_token: Mapped[str | None] = mapped_column(Text)


class Session(Base):
    __tablename__ = "sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_token: Mapped[str] = mapped_column(String(200), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    expires: Mapped[datetime]


class VerificationToken(Base):
    __tablename__ = "verification_tokens"
    __table_args__ = (UniqueConstraint("identifier", "token"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    identifier: Mapped[str] = mapped_column(String(320))
    token: Mapped[str] = mapped_column(String(200), unique=True)
    expires: Mapped[datetime]


# --- organizations -----------------------------------------------------------


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    tier: Mapped[Tier] = mapped_column(pg_enum(Tier, "tier"), default=Tier.FREE)
    status: Mapped[OrgStatus] = mapped_column(
        pg_enum(OrgStatus, "org_status"), default=OrgStatus.ACTIVE
    )
    stripe_customer_id: Mapped[str | None] = mapped_column(String(STRIPE_ID_LENGTH), unique=True)
    stripe_subscription_id: Mapped[str | None] = mapped_column(
        String(STRIPE_ID_LENGTH), unique=True
    )
    created_at: Mapped[datetime] = _created()

    projects: Mapped[list["Project"]] = relationship(back_populates="organization")


class OrganizationMember(Base):
    __tablename__ = "organization_members"
    __table_args__ = (UniqueConstraint("organization_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[MemberRole] = mapped_column(pg_enum(MemberRole, "member_role"))
    created_at: Mapped[datetime] = _created()


class Project(Base):
    __tablename__ = "projects"
    __table_args__ = (UniqueConstraint("organization_id", "slug"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(100))
    repository: Mapped[str | None] = mapped_column(Text)
    branch: Mapped[str | None] = mapped_column(String(200))
    language: Mapped[str | None] = mapped_column(String(50))
    status: Mapped[ProjectStatus] = mapped_column(
        pg_enum(ProjectStatus, "project_status"), default=ProjectStatus.ACTIVE
    )
    created_at: Mapped[datetime] = _created()

    organization: Mapped[Organization] = relationship(back_populates="projects")


class Subscription(Base):
    """One per organization; NULL limits fall back to the tier's plan limits."""

    __tablename__ = "subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), unique=True
    )
    stripe_subscription_id: Mapped[str | None] = mapped_column(
        String(STRIPE_ID_LENGTH), unique=True
    )
    stripe_price_id: Mapped[str | None] = mapped_column(String(STRIPE_ID_LENGTH))
    status: Mapped[SubscriptionStatus] = mapped_column(
        pg_enum(SubscriptionStatus, "subscription_status"), default=SubscriptionStatus.ACTIVE
    )
    analyses_limit: Mapped[int | None]
    fixes_limit: Mapped[int | None]
    audits_limit: Mapped[int | None]
    projects_limit: Mapped[int | None]
    current_period_start: Mapped[datetime]
    current_period_end: Mapped[datetime]
    cancel_at: Mapped[datetime | None]
    canceled_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(
        server_default=func.odavl_now(), onupdate=func.odavl_now()
    )


class ApiKey(Base):
    """Stored only as a SHA-256 hash and an 8-character prefix."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    key_prefix: Mapped[str] = mapped_column(String(8))
    scopes: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    last_used_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = _created()


class ApiRequest(Base):
    """A request of the HTTP API, kept whole: its records are the lines of the ledger file
    `file_id` (odavl_pipeline/api/records.py)."""

    __tablename__ = "api_requests"

    file_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("ingested_files.id"), primary_key=True
    )
    key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id"), index=True)
    key_prefix: Mapped[str] = mapped_column(String(8))
    content_type: Mapped[str] = mapped_column(Text)
    records: Mapped[int]
    body: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[datetime] = _created()


class ApiKeyRate(Base):
    """How far ahead one API key's requests are spread at the allowed rate (GCRA), shared by
    every API process; unlogged: a crash only forgives the last second (migration 0017)."""

    __tablename__ = "api_key_rates"
    __table_args__ = {"prefixes": ["UNLOGGED"]}

    key_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    spread_until: Mapped[datetime]


class SignInThrottle(Base):
    """Failed password sign-ins to the dashboards, per email, client and trusted device, shared
    by every dashboard process: after a few failures each next attempt must wait longer."""

    __tablename__ = "sign_in_throttle"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 hex of kind:value
    kind: Mapped[str] = mapped_column(String(10))  # "email", "client", "pair" or "device"
    failures: Mapped[int]
    last_failure_at: Mapped[datetime]
    blocked_until: Mapped[datetime | None]


class DashboardSession(Base):
    """A password sign-in to the dashboards: the browser holds the token in an HTTP-only
    cookie, the database only its SHA-256. Signing out or a new password ends it."""

    __tablename__ = "dashboard_sessions"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)  # hex
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = _created()
    expires_at: Mapped[datetime] = mapped_column(index=True)
    ended_at: Mapped[datetime | None]


class SignInDevice(Base):
    """A browser that signed in to the dashboards with a password: it holds the token in a
    cookie, the database its SHA-256; its failures have their own allowance for that user."""

    __tablename__ = "sign_in_devices"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)  # hex
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = _created()
    last_signed_in_at: Mapped[datetime] = mapped_column(server_default=func.odavl_now(), index=True)


# --- the pipeline's bookkeeping ---------------------------------------------


class FileStatus(enum.Enum):
    """What became of a file of the landing zone."""

    INGESTED = "ingested"  # its lines are accounted for; this content is never read again
    FAILED = "failed"  # ingesting it raised an error (kept in `error`); the next run retries
    MISPLACED = "misplaced"  # outside <source>/<YYYY-MM-DD>/<name>.ndjson[.gz]: reported, not read


class IngestedFile(Base):
    """The file ledger: one row per (path, content) seen in the landing zone, with its line outcomes.

    `source` is NULL, and `day` too, for a misplaced file outside every source's folder.
    """

    __tablename__ = "ingested_files"
    __table_args__ = (
        UniqueConstraint("source", "path", "sha256", postgresql_nulls_not_distinct=True),
        CheckConstraint("lines = accepted + duplicate + pending + rejected", name="lines_balance"),
        Index(None, "source", "day"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    source: Mapped[Source | None] = mapped_column(pg_enum(Source, "landing_source"))
    path: Mapped[str] = mapped_column(Text)
    day: Mapped[date | None]
    status: Mapped[FileStatus] = mapped_column(
        pg_enum(FileStatus, "file_status"), server_default=FileStatus.INGESTED.value
    )
    error: Mapped[str | None] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    # when the bytes hashed were last modified (ns since the epoch), NULL if not yet known
    mtime_ns: Mapped[int | None] = mapped_column(BigInteger)
    lines: Mapped[int]
    accepted: Mapped[int]
    duplicate: Mapped[int]
    pending: Mapped[int]
    rejected: Mapped[int]
    run_id: Mapped[str | None] = mapped_column(String(64), index=True)
    ingested_at: Mapped[datetime] = _created()


class QuarantinedRecord(Base):
    """A rejected line (or a whole file, line NULL), kept with its reason; source NULL for a
    misplaced file outside every source's folder. The identical rejected lines of a file (the
    same text, reason, detail and slugs) are one row: its first line, and the others in
    `more_line_nos`; `lines` counts them all."""

    __tablename__ = "quarantine"
    __table_args__ = (
        Index(None, "source", "reason"),
        CheckConstraint(
            "lines = 1 + coalesce(cardinality(more_line_nos), 0)", name="lines_counted"
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    source: Mapped[Source | None] = mapped_column(pg_enum(Source, "landing_source"))
    file_id: Mapped[int] = mapped_column(ForeignKey("ingested_files.id"), index=True)
    line_no: Mapped[int | None]
    more_line_nos: Mapped[list[int] | None] = mapped_column(ARRAY(Integer))  # ascending
    lines: Mapped[int] = mapped_column(server_default=text("1"))
    reason: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str] = mapped_column(Text)
    raw: Mapped[str | None] = mapped_column(Text)
    org_slug: Mapped[str | None] = mapped_column(Text)
    project_slug: Mapped[str | None] = mapped_column(Text)
    quarantined_at: Mapped[datetime] = _created()


# --- landed facts ------------------------------------------------------------


class _Provenance:
    """The landing file (ledger row) and 1-based line each landed row came from."""

    file_id: Mapped[int] = mapped_column(BigInteger)
    line_no: Mapped[int]


class UsageEvent(_Provenance, Base):
    __tablename__ = "usage_events"
    __table_args__ = (
        UniqueConstraint("organization_id", "event_id"),
        Index(None, "organization_id", "occurred_at"),
        Index(None, "occurred_at"),
        Index(None, "file_id"),
        Index(None, "ingested_at", postgresql_using="brin"),  # rows arrive in its order
        Index(None, "organization_id", "ingested_at"),  # what one arrived since a cut
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    organization_id: Mapped[int]
    event_id: Mapped[str] = mapped_column(String(200))
    event_type: Mapped[UsageEventType] = mapped_column(pg_enum(UsageEventType, "usage_event_type"))
    occurred_at: Mapped[datetime]
    quantity: Mapped[int]
    project_id: Mapped[int | None]
    user_email: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any]]
    # when the row was written (after the source lock): decides late usage of closed periods
    ingested_at: Mapped[datetime] = mapped_column(server_default=func.odavl_now())


class ErrorSignature(Base):
    """One row per (project, signature hash): the grouped view of error events."""

    __tablename__ = "error_signatures"
    __table_args__ = (
        UniqueConstraint("project_id", "hash"),
        Index(None, "project_id", "last_seen"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    hash: Mapped[str] = mapped_column(String(64))
    detector: Mapped[str] = mapped_column(String(64))
    severity: Mapped[Severity] = mapped_column(pg_enum(Severity, "severity"))
    message: Mapped[str] = mapped_column(Text)
    file: Mapped[str] = mapped_column(Text)
    line: Mapped[int]
    column: Mapped[int | None]
    count: Mapped[int] = mapped_column(BigInteger)
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    status: Mapped[SignatureStatus] = mapped_column(
        pg_enum(SignatureStatus, "signature_status"), default=SignatureStatus.OPEN
    )
    resolved_at: Mapped[datetime | None]


class ErrorEvent(_Provenance, Base):
    """One Insight occurrence of an error; grouped into `error_signatures` by hash."""

    __tablename__ = "error_events"
    __table_args__ = (
        UniqueConstraint("project_id", "event_id"),
        Index(None, "project_id", "signature_hash"),
        Index(None, "occurred_at"),
        Index(None, "file_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    project_id: Mapped[int]
    event_id: Mapped[str] = mapped_column(String(200))
    signature_hash: Mapped[str] = mapped_column(String(64))
    detector: Mapped[str] = mapped_column(String(64))
    severity: Mapped[Severity] = mapped_column(pg_enum(Severity, "severity"))
    message: Mapped[str] = mapped_column(Text)
    file: Mapped[str] = mapped_column(Text)
    line: Mapped[int]
    column: Mapped[int | None]
    occurred_at: Mapped[datetime]
    payload: Mapped[dict[str, Any]]


class FixAttestation(_Provenance, Base):
    """An Autopilot fix, hash-chained per project; `pending` until its parent is verified."""

    __tablename__ = "fix_attestations"
    __table_args__ = (
        UniqueConstraint("project_id", "request_id"),
        UniqueConstraint("project_id", "hash"),
        Index(None, "project_id", "prev_hash"),
        Index(
            "uq_fix_attestations_verified_link",
            "project_id",
            "prev_hash",
            unique=True,
            postgresql_where="chain_status = 'verified'",
        ),
        # the attestations waiting for their parent: what every file's chain settling reads
        Index(
            "ix_fix_attestations_pending",
            "project_id",
            "prev_hash",
            "created_at",
            "hash",
            postgresql_where="chain_status = 'pending'",
        ),
        Index(None, "created_at"),
        Index(None, "file_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    project_id: Mapped[int]
    request_id: Mapped[str] = mapped_column(String(200))
    status: Mapped[RunStatus] = mapped_column(pg_enum(RunStatus, "run_status"))
    files_changed: Mapped[int]
    lines_added: Mapped[int]
    lines_removed: Mapped[int]
    risk_score: Mapped[int]
    recipes: Mapped[list[str]] = mapped_column(ARRAY(Text))
    created_at: Mapped[datetime]
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    chain_status: Mapped[ChainStatus] = mapped_column(pg_enum(ChainStatus, "chain_status"))
    verified_at: Mapped[datetime | None]
    payload: Mapped[dict[str, Any]]


class AuditResult(_Provenance, Base):
    """A Guardian audit of one URL; issue counts are derived from its issues."""

    __tablename__ = "audit_results"
    __table_args__ = (
        UniqueConstraint("project_id", "request_id"),
        Index(None, "project_id", "occurred_at"),
        Index(None, "file_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    project_id: Mapped[int]
    request_id: Mapped[str] = mapped_column(String(200))
    url: Mapped[str] = mapped_column(Text)
    environment: Mapped[Environment] = mapped_column(pg_enum(Environment, "audit_environment"))
    device: Mapped[Device] = mapped_column(pg_enum(Device, "audit_device"))
    status: Mapped[RunStatus] = mapped_column(pg_enum(RunStatus, "run_status"))
    score_accessibility: Mapped[int | None]
    score_performance: Mapped[int | None]
    score_security: Mapped[int | None]
    score_seo: Mapped[int | None]
    lighthouse_performance: Mapped[int | None]
    lighthouse_accessibility: Mapped[int | None]
    lighthouse_best_practices: Mapped[int | None]
    lighthouse_seo: Mapped[int | None]
    duration_ms: Mapped[int] = mapped_column(BigInteger)
    occurred_at: Mapped[datetime]
    total_issues: Mapped[int]
    critical_issues: Mapped[int]
    high_issues: Mapped[int]
    medium_issues: Mapped[int]
    low_issues: Mapped[int]
    info_issues: Mapped[int]
    payload: Mapped[dict[str, Any]]

    issues: Mapped[list["AuditIssue"]] = relationship(back_populates="audit")


class AuditIssue(Base):
    __tablename__ = "audit_issues"
    __table_args__ = (UniqueConstraint("audit_id", "position"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    audit_id: Mapped[int] = mapped_column(ForeignKey("audit_results.id", ondelete="CASCADE"))
    position: Mapped[int]
    suite: Mapped[AuditSuite] = mapped_column(pg_enum(AuditSuite, "audit_suite"))
    severity: Mapped[Severity] = mapped_column(pg_enum(Severity, "severity"))
    message: Mapped[str] = mapped_column(Text)
    recommendation: Mapped[str] = mapped_column(Text)
    element: Mapped[str | None] = mapped_column(Text)
    documentation: Mapped[str | None] = mapped_column(Text)

    audit: Mapped[AuditResult] = relationship(back_populates="issues")


# --- marts and Stripe bookkeeping ----------------------------------------------


class MartChange(Base):
    """A write that changed the landed facts of a (source, UTC day) since the marts read it.

    Appended by triggers on the fact tables (migrations 0002, 0009), so no write escapes the
    marts and concurrent writers never wait on each other's marks; the mart builder deletes
    exactly the rows it read.
    """

    __tablename__ = "mart_changes"

    version: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    source: Mapped[Source] = mapped_column(pg_enum(Source, "landing_source"))
    day: Mapped[date]


class BillingClose(Base):
    """A billing period closed by the marts: its usage is what had arrived by `closed_at`.

    Usage for it that arrives later is carried into the period open at its arrival.
    """

    __tablename__ = "billing_closes"

    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    period_start: Mapped[datetime] = mapped_column(primary_key=True)
    period_end: Mapped[datetime]
    closed_at: Mapped[datetime]
    tier: Mapped[Tier | None] = mapped_column(pg_enum(Tier, "tier"))  # NULL: closed before 0006


class BillingCloseUsage(Base):
    """What a closed period closed with, per metric: the marts reproduce it, whatever is rebuilt."""

    __tablename__ = "billing_close_usage"
    __table_args__ = (
        ForeignKeyConstraint(
            ["organization_id", "period_start"],
            ["billing_closes.organization_id", "billing_closes.period_start"],
            ondelete="CASCADE",
        ),
    )

    organization_id: Mapped[int] = mapped_column(primary_key=True)
    period_start: Mapped[datetime] = mapped_column(primary_key=True)
    metric: Mapped[str] = mapped_column(String(20), primary_key=True)
    used: Mapped[int] = mapped_column(BigInteger)
    quota: Mapped[int] = mapped_column(BigInteger)
    overage: Mapped[int] = mapped_column(BigInteger)


class PlanVersion(Base):
    """An organization's plan from `effective_at` until its next version (migration 0006's
    trigger appends them, and Stripe's processing at Stripe's times: stripe_billing/timeline.py;
    nothing updates them; of two at one instant the later counts). No anchor: calendar months
    (FREE without a live subscription)."""

    __tablename__ = "plan_versions"
    __table_args__ = (
        Index("ix_plan_versions_organization_id_effective_at", "organization_id", "effective_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    effective_at: Mapped[datetime]
    tier: Mapped[Tier] = mapped_column(pg_enum(Tier, "tier"))
    status: Mapped[SubscriptionStatus | None] = mapped_column(
        pg_enum(SubscriptionStatus, "subscription_status")
    )
    anchor: Mapped[datetime | None]
    analyses_limit: Mapped[int | None]
    fixes_limit: Mapped[int | None]
    audits_limit: Mapped[int | None]
    projects_limit: Mapped[int | None]
    cancel_at: Mapped[datetime | None]
    recorded_at: Mapped[datetime] = _created()


class StripeEvent(Base):
    """The webhook inbox: a verified Stripe event, stored before it is answered, then processed
    once (`processed`, in the transaction of its effect), retried (`pending`, with backoff) or
    set aside with its reason (`dead`). Events of types we do not follow are stored processed,
    without their payload."""

    __tablename__ = "stripe_events"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'processed', 'dead')", name="status_known"),
        Index(
            "ix_stripe_events_pending",
            "ordering_key",
            "created",
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_stripe_events_dead", "received_at", postgresql_where=text("status = 'dead'")),
    )

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    created: Mapped[datetime]  # Stripe's time of the event
    received_at: Mapped[datetime] = _created()
    payload: Mapped[str | None] = mapped_column(Text)  # the body as delivered (verified)
    ordering_key: Mapped[str | None] = mapped_column(String(STRIPE_ID_LENGTH))  # the customer
    status: Mapped[str] = mapped_column(String(10), server_default="pending")
    attempts: Mapped[int] = mapped_column(server_default=text("0"))
    next_attempt_at: Mapped[datetime | None]
    lease_until: Mapped[datetime | None]
    lease_token: Mapped[uuid.UUID | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(String(30))  # why it is dead
    detail: Mapped[str | None] = mapped_column(Text)  # what processing did, or why it is dead
    processed_at: Mapped[datetime | None]


class StripeSubscriptionState(Base):
    """A state of a Stripe subscription at the time Stripe reported it for (an event's
    `created`, a sync's fetch): plan history follows these in Stripe's order."""

    __tablename__ = "stripe_subscription_states"
    __table_args__ = (
        Index(
            "ix_stripe_subscription_states_customer_id_observed_at", "customer_id", "observed_at"
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    subscription_id: Mapped[str] = mapped_column(String(STRIPE_ID_LENGTH))
    customer_id: Mapped[str] = mapped_column(String(STRIPE_ID_LENGTH))
    observed_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(100))  # the event's type, or "sync"
    event_id: Mapped[str | None] = mapped_column(String(STRIPE_ID_LENGTH), unique=True)
    status: Mapped[SubscriptionStatus] = mapped_column(
        pg_enum(SubscriptionStatus, "subscription_status")
    )
    tier: Mapped[Tier | None] = mapped_column(pg_enum(Tier, "tier"))
    price_id: Mapped[str | None] = mapped_column(String(STRIPE_ID_LENGTH))
    analyses_limit: Mapped[int | None]
    fixes_limit: Mapped[int | None]
    audits_limit: Mapped[int | None]
    projects_limit: Mapped[int | None]
    current_period_start: Mapped[datetime]
    current_period_end: Mapped[datetime]
    cancel_at: Mapped[datetime | None]
    canceled_at: Mapped[datetime | None]
    recorded_at: Mapped[datetime] = _created()


class StripeUsageReport(Base):
    """Our ledger of metered usage sent to Stripe: one row per increment (meter event) of an
    organization's metric in a billing period; `cumulative` is the period's total reported
    through this increment, `final` marks the row at which the closed period was settled."""

    __tablename__ = "stripe_usage_reports"
    __table_args__ = (
        UniqueConstraint(
            "organization_id",
            "metric",
            "period_start",
            "cumulative",
            name="uq_stripe_usage_reports_increment",
        ),
        CheckConstraint("status IN ('pending', 'sent')", name="status_known"),
        CheckConstraint("quantity > 0 AND cumulative >= quantity", name="increment_positive"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    metric: Mapped[str] = mapped_column(String(20))
    period_start: Mapped[datetime]
    period_end: Mapped[datetime]
    quantity: Mapped[int] = mapped_column(BigInteger)  # this increment
    cumulative: Mapped[int] = mapped_column(BigInteger)  # the period's total through it
    final: Mapped[bool] = mapped_column(default=False)
    identifier: Mapped[str] = mapped_column(String(100), unique=True)
    stripe_customer_id: Mapped[str] = mapped_column(String(STRIPE_ID_LENGTH))
    status: Mapped[str] = mapped_column(String(10))
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()
    sent_at: Mapped[datetime | None]


# --- usage corrections (CONTRACT.md section 8) -------------------------------------


class CorrectionBatch(Base):
    """A correction of one organization's usage in the window [window_start, window_end):
    draft, then committed and maybe reverted, or discarded. `changes` is its preview as
    committed; the counts are what it added, amended and voided (odavl_pipeline/billing)."""

    __tablename__ = "correction_batches"
    __table_args__ = (
        CheckConstraint(
            "state IN ('draft', 'committed', 'reverted', 'discarded')", name="state_known"
        ),
        CheckConstraint("window_start < window_end", name="window_ordered"),
        Index(None, "organization_id", "state"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(10), default="draft")
    replace: Mapped[bool] = mapped_column(default=False)
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()
    committed_at: Mapped[datetime | None]
    reverted_at: Mapped[datetime | None]
    reverted_by: Mapped[str | None] = mapped_column(Text)
    revert_reason: Mapped[str | None] = mapped_column(Text)
    discarded_at: Mapped[datetime | None]
    changes: Mapped[list[Any] | None] = mapped_column(JSONB)
    added: Mapped[int] = mapped_column(default=0)
    amended: Mapped[int] = mapped_column(default=0)
    voided: Mapped[int] = mapped_column(default=0)


class CorrectionRecord(Base):
    """A usage record a draft carries (`corrections add`): validated like a landed line."""

    __tablename__ = "correction_records"

    batch_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("correction_batches.id"), primary_key=True
    )
    event_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    file_name: Mapped[str] = mapped_column(Text)  # as given to `add`
    line_no: Mapped[int]
    event_type: Mapped[UsageEventType] = mapped_column(pg_enum(UsageEventType, "usage_event_type"))
    occurred_at: Mapped[datetime]
    quantity: Mapped[int]
    project_id: Mapped[int | None]
    user_email: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any]]


class CorrectionReject(Base):
    """A line of a file added to a draft that was refused, with the reason: a draft with any
    cannot be committed (adding the file again replaces them)."""

    __tablename__ = "correction_rejects"

    batch_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("correction_batches.id"), primary_key=True
    )
    file_name: Mapped[str] = mapped_column(Text, primary_key=True)
    line_no: Mapped[int] = mapped_column(primary_key=True)
    reason: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str] = mapped_column(Text)
    raw: Mapped[str | None] = mapped_column(Text)


class CorrectionVoid(Base):
    """An event a draft voids (`corrections void`), by its id."""

    __tablename__ = "correction_voids"

    batch_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("correction_batches.id"), primary_key=True
    )
    event_id: Mapped[str] = mapped_column(String(200), primary_key=True)


class UsageCorrection(Base):
    """The usage ledger's corrections: a committed batch writes, per event it changes, the
    version it retracts (sign -1) and the version it makes (sign +1), booked at its commit; a
    revert writes their opposites. An event's versions are its landed row and its +1 rows; it
    counts while its landed row plus its signs sum to 1. Nothing here is updated or deleted."""

    __tablename__ = "usage_corrections"
    __table_args__ = (
        CheckConstraint("sign IN (-1, 1)", name="sign_known"),
        Index(None, "organization_id", "event_id"),
        Index(None, "batch_id"),
        Index(None, "occurred_at"),
        Index(None, "booked_at", postgresql_using="brin"),  # entries are booked in its order
        Index(None, "organization_id", "booked_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    batch_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("correction_batches.id"))
    reverting: Mapped[bool] = mapped_column(default=False)  # written by the batch's revert
    organization_id: Mapped[int]
    event_id: Mapped[str] = mapped_column(String(200))
    sign: Mapped[int] = mapped_column(SmallInteger)
    event_type: Mapped[UsageEventType] = mapped_column(pg_enum(UsageEventType, "usage_event_type"))
    occurred_at: Mapped[datetime]
    quantity: Mapped[int]
    project_id: Mapped[int | None]
    user_email: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any]]
    file_name: Mapped[str | None] = mapped_column(Text)  # a version from a batch's record: its
    line_no: Mapped[int | None]  # file and line as added
    booked_at: Mapped[datetime] = _created()


class StripeCreditDue(Base):
    """What a period's Stripe meter events exceed its billed usage by, once corrections lowered
    it below what was reported (never sent as a negative value): a credit to give the customer.
    Kept up to date by each report; `credit` 0 once the usage caught up again."""

    __tablename__ = "stripe_credits_due"
    __table_args__ = (CheckConstraint("credit >= 0", name="credit_not_negative"),)

    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    metric: Mapped[str] = mapped_column(String(20), primary_key=True)
    period_start: Mapped[datetime] = mapped_column(primary_key=True)
    period_end: Mapped[datetime]
    reported: Mapped[int] = mapped_column(BigInteger)
    used: Mapped[int] = mapped_column(BigInteger)
    credit: Mapped[int] = mapped_column(BigInteger)
    recorded_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()


# --- quota alerts ----------------------------------------------------------------


class QuotaAlert(Base):
    """A quota threshold crossed in an organization's billing period: recorded once, ever.

    The unique key is what makes an alert exactly-once across reruns, backfills and concurrent
    builds (INSERT … ON CONFLICT DO NOTHING); `uid` is the stable id sent to receivers.
    The figures are those of the quota_status row that crossed the threshold.
    """

    __tablename__ = "quota_alerts"
    __table_args__ = (
        UniqueConstraint("organization_id", "period_start", "metric", "threshold"),
        # a percentage from 1 to 1000 as the text of the integer, or the forecast (no cast: a
        # CHECK's terms are evaluated in any order)
        CheckConstraint(
            "threshold = 'forecast' OR threshold ~ '^[1-9][0-9]{0,2}$' OR threshold = '1000'",
            name="threshold_known",
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    uid: Mapped[str] = mapped_column(String(40), unique=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    period_start: Mapped[datetime]
    period_end: Mapped[datetime]
    metric: Mapped[str] = mapped_column(String(20))
    threshold: Mapped[str] = mapped_column(String(10))
    used: Mapped[int] = mapped_column(BigInteger)
    quota: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(10))
    projected: Mapped[int] = mapped_column(BigInteger)
    projected_exhaustion: Mapped[date | None]
    as_of: Mapped[datetime]
    detected_at: Mapped[datetime] = _created()


class OrganizationAlertEndpoint(Base):
    """Where an organization also wants its quota alerts (besides ODAVL_ALERT_WEBHOOK_URL): any
    number of endpoints, added and removed by its OWNER or ADMIN (odavl_pipeline.alerts.endpoints).

    The URL may carry a token: it is never logged. No secret is stored: an endpoint's is derived
    from ODAVL_ALERT_WEBHOOK_SECRET and its random `secret_salt`, or, for a row carried over from
    before migration 0020 (no salt, no `created_by`), from the organization id. Removal is soft,
    so the deliveries to a removed endpoint stay explained.
    """

    __tablename__ = "organization_alert_endpoints"
    __table_args__ = (
        Index(
            None,
            "organization_id",
            "url",
            unique=True,
            postgresql_where=text("removed_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    uid: Mapped[str] = mapped_column(String(20), unique=True)  # ep_ and 8 hex digits
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(Text)
    secret_salt: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = _created()
    created_by: Mapped[str | None] = mapped_column(String(320))
    removed_at: Mapped[datetime | None]
    removed_by: Mapped[str | None] = mapped_column(String(320))


class OrganizationAlertThresholds(Base):
    """An organization's own quota alert thresholds: percentages of a quota and whether the
    forecast alerts. No row: the catalogue's (80 %, 100 %, forecast)."""

    __tablename__ = "organization_alert_thresholds"
    __table_args__ = (
        CheckConstraint(
            "cardinality(percents) <= 10 AND array_position(percents, NULL) IS NULL "
            "AND 1 <= ALL (percents) AND 1000 >= ALL (percents)",
            name="percents_bounded",
        ),
    )

    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    percents: Mapped[list[int]] = mapped_column(ARRAY(Integer))  # ascending, distinct
    forecast: Mapped[bool]
    updated_at: Mapped[datetime] = _created()
    updated_by: Mapped[str] = mapped_column(String(320))


class QuotaAlertDelivery(Base):
    """One alert to one destination (`default`: ODAVL_ALERT_WEBHOOK_URL, `organization`: the
    organization's endpoint `endpoint_id`): pending until a 2xx answer, failed after the last
    attempt. An `organization` delivery without an endpoint is one from before migration 0020
    whose endpoint row had been deleted."""

    __tablename__ = "quota_alert_deliveries"
    __table_args__ = (
        UniqueConstraint(
            "alert_id", "destination", "endpoint_id", postgresql_nulls_not_distinct=True
        ),
        CheckConstraint("destination IN ('default', 'organization')", name="destination_known"),
        CheckConstraint(
            "destination = 'organization' OR endpoint_id IS NULL", name="endpoint_of_organization"
        ),
        CheckConstraint("state IN ('pending', 'sent', 'failed')", name="state_known"),
        Index(None, "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    alert_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("quota_alerts.id", ondelete="CASCADE")
    )
    destination: Mapped[str] = mapped_column(String(20))
    endpoint_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("organization_alert_endpoints.id", ondelete="CASCADE"), index=True
    )
    state: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = _created()
    delivered_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()


class QuotaAlertAttempt(Base):
    """The delivery ledger: every HTTP attempt of a delivery, with its answer or error."""

    __tablename__ = "quota_alert_attempts"
    __table_args__ = (UniqueConstraint("delivery_id", "attempt"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("quota_alert_deliveries.id", ondelete="CASCADE")
    )
    attempt: Mapped[int]
    attempted_at: Mapped[datetime]
    status_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)
    delivered: Mapped[bool]
