"""Plan history: every change of an organization's plan is a new version with the time it took effect; closed periods keep what they closed with.

`plan_versions` is filled by a trigger on `organizations` and `subscriptions`, whoever writes
them (the console, a Stripe sync, a webhook): deferred to the end of the writing transaction, it
compares the organization's plan with its latest version and appends one when tier, limits,
status or billing anchor changed. The time it took effect is the transaction's, unless the
writer sets `odavl.plan_effective_at` for its transaction (a webhook: Stripe's time). An
organization's first version applies since 1970, the start of every timestamp we accept (it rates all of its history until the next).
Today's rows become the first versions.

`billing_closes` gains the tier a period closed with, and `billing_close_usage` what it closed
with per metric (used, quota, overage): the marts reproduce closed periods from them.

Revision ID: 0006
Revises: 0005

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# the organization's plan now: on FREE with calendar months (no anchor) without a live subscription
CURRENT_PLAN = """
    SELECT o.id AS organization_id,
           (CASE WHEN live THEN o.tier ELSE 'FREE' END)::tier AS tier,
           s.status AS status,
           CASE WHEN live THEN s.current_period_start END AS period_start,
           CASE WHEN live THEN s.analyses_limit END AS analyses_limit,
           CASE WHEN live THEN s.fixes_limit END AS fixes_limit,
           CASE WHEN live THEN s.audits_limit END AS audits_limit,
           CASE WHEN live THEN s.projects_limit END AS projects_limit,
           CASE WHEN live THEN s.cancel_at END AS cancel_at
    FROM organizations AS o LEFT JOIN subscriptions AS s ON s.organization_id = o.id,
         LATERAL (SELECT s.id IS NOT NULL AND s.status <> 'CANCELED' AS live) AS l
"""

FUNCTIONS = [
    # whether `moment` is on the monthly series of `anchor` (same day and time, clamped to the
    # month's last day, as Stripe moves a subscription's current period start)
    """CREATE FUNCTION odavl_on_series(anchor timestamptz, moment timestamptz) RETURNS boolean
       LANGUAGE sql IMMUTABLE AS $$
         SELECT EXISTS (SELECT 1 FROM generate_series(-1, 1) AS d(shift) WHERE
           (anchor AT TIME ZONE 'UTC') + make_interval(months => (
             (extract(year FROM moment AT TIME ZONE 'UTC')
              - extract(year FROM anchor AT TIME ZONE 'UTC')) * 12
             + extract(month FROM moment AT TIME ZONE 'UTC')
             - extract(month FROM anchor AT TIME ZONE 'UTC'))::int + shift)
           = moment AT TIME ZONE 'UTC')
       $$""",
    f"""CREATE FUNCTION odavl_record_plan(org integer) RETURNS void LANGUAGE plpgsql AS $$
       DECLARE
         plan record;
         latest record;
         anchor timestamptz;
         effective timestamptz;
       BEGIN
         SELECT * INTO plan FROM ({CURRENT_PLAN}) AS p WHERE p.organization_id = org;
         IF NOT FOUND THEN
           RETURN;
         END IF;
         SELECT * INTO latest FROM plan_versions WHERE organization_id = org
           ORDER BY effective_at DESC, id DESC LIMIT 1;
         anchor := plan.period_start;
         IF latest.anchor IS NOT NULL AND anchor IS NOT NULL
            AND odavl_on_series(latest.anchor, anchor) THEN
           anchor := latest.anchor;  -- the same monthly series: Stripe moved to the next period
         END IF;
         IF latest.id IS NOT NULL AND (latest.tier, latest.status, latest.anchor,
             latest.analyses_limit, latest.fixes_limit, latest.audits_limit,
             latest.projects_limit, latest.cancel_at)
           IS NOT DISTINCT FROM (plan.tier, plan.status, anchor, plan.analyses_limit,
             plan.fixes_limit, plan.audits_limit, plan.projects_limit, plan.cancel_at) THEN
           RETURN;
         END IF;
         effective := CASE WHEN latest.id IS NULL THEN '1970-01-01 00:00:00+00'::timestamptz ELSE coalesce(
           nullif(current_setting('odavl.plan_effective_at', true), '')::timestamptz, now()) END;
         INSERT INTO plan_versions (organization_id, effective_at, tier, status, anchor,
             analyses_limit, fixes_limit, audits_limit, projects_limit, cancel_at)
         VALUES (org, effective, plan.tier, plan.status, anchor, plan.analyses_limit,
             plan.fixes_limit, plan.audits_limit, plan.projects_limit, plan.cancel_at);
       END
       $$""",
    """CREATE FUNCTION odavl_plan_changed() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF TG_TABLE_NAME = 'organizations' THEN
           PERFORM odavl_record_plan(coalesce(NEW.id, OLD.id));
         ELSE
           PERFORM odavl_record_plan(coalesce(NEW.organization_id, OLD.organization_id));
         END IF;
         RETURN NULL;
       END
       $$""",
]

TRIGGERS = [
    # deferred to the end of the transaction: a writer that changes the subscription and then
    # the tier records one version, of the end state
    """CREATE CONSTRAINT TRIGGER plan_changed AFTER INSERT OR UPDATE OF tier ON organizations
       DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION odavl_plan_changed()""",
    """CREATE CONSTRAINT TRIGGER plan_changed AFTER INSERT OR UPDATE OR DELETE ON subscriptions
       DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION odavl_plan_changed()""",
]


def upgrade() -> None:
    op.create_table(
        "plan_versions",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("effective_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tier", postgresql.ENUM(name="tier", create_type=False), nullable=False),
        sa.Column(
            "status", postgresql.ENUM(name="subscription_status", create_type=False), nullable=True
        ),
        sa.Column("anchor", sa.DateTime(timezone=True), nullable=True),
        sa.Column("analyses_limit", sa.Integer(), nullable=True),
        sa.Column("fixes_limit", sa.Integer(), nullable=True),
        sa.Column("audits_limit", sa.Integer(), nullable=True),
        sa.Column("projects_limit", sa.Integer(), nullable=True),
        sa.Column("cancel_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "recorded_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_plan_versions_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_versions")),
    )
    op.create_index(
        "ix_plan_versions_organization_id_effective_at",
        "plan_versions",
        ["organization_id", "effective_at"],
        unique=False,
    )
    op.add_column(
        "billing_closes",
        sa.Column("tier", postgresql.ENUM(name="tier", create_type=False), nullable=True),
    )
    op.create_table(
        "billing_close_usage",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("metric", sa.String(length=20), nullable=False),
        sa.Column("used", sa.BigInteger(), nullable=False),
        sa.Column("quota", sa.BigInteger(), nullable=False),
        sa.Column("overage", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id", "period_start"],
            ["billing_closes.organization_id", "billing_closes.period_start"],
            name=op.f("fk_billing_close_usage_organization_id_billing_closes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "organization_id", "period_start", "metric", name=op.f("pk_billing_close_usage")
        ),
    )
    for statement in FUNCTIONS + TRIGGERS:
        op.execute(statement)
    op.execute("SELECT odavl_record_plan(id) FROM organizations ORDER BY id")


def downgrade() -> None:
    op.execute("DROP TRIGGER plan_changed ON subscriptions")
    op.execute("DROP TRIGGER plan_changed ON organizations")
    op.execute("DROP FUNCTION odavl_plan_changed()")
    op.execute("DROP FUNCTION odavl_record_plan(integer)")
    op.execute("DROP FUNCTION odavl_on_series(timestamptz, timestamptz)")
    op.drop_table("billing_close_usage")
    op.drop_column("billing_closes", "tier")
    op.drop_index("ix_plan_versions_organization_id_effective_at", table_name="plan_versions")
    op.drop_table("plan_versions")
