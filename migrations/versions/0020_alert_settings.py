"""Alert settings an organization sets itself: several endpoints, each with its own secret, and
its own thresholds.

Revision ID: 0020
Revises: 0019

- `organization_alert_endpoints` gets an id, a `uid` (`ep_…`), who added it (`created_by`; NULL
  for the rows carried over, which an operator inserted with SQL), a random `secret_salt` (the
  endpoint's secret is derived from it and ODAVL_ALERT_WEBHOOK_SECRET: odavl_pipeline.alerts.
  signing) and a soft removal (`removed_at`, `removed_by`), so any number of endpoints per
  organization. A row carried over has no salt and keeps the secret it is signed with today,
  `organization_secret(master, organization_id)`: its receiver does not break.
- `organization_alert_thresholds`: an organization's percentages (1 to 1000, at most 10) and
  whether the forecast alerts; no row is the defaults (80, 100, forecast).
- `quota_alerts.threshold` holds any such percentage as the text of the integer, or `forecast`.
- `quota_alert_deliveries.endpoint_id`: which endpoint an `organization` delivery goes to; one
  delivery per alert and destination (the default URL, or one endpoint). The deliveries to an
  organization's endpoint before now name the row carried over; one whose endpoint row had been
  deleted with SQL keeps no endpoint (it failed, or fails, as "no URL configured").

Downgrade keeps one endpoint per organization (the one carried over while not removed, else the
oldest not removed) with its deliveries, and the alerts of 80, 100 and forecast; the other
endpoints, thresholds, alerts and their deliveries are deleted.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | Sequence[str] | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ENDPOINTS = "organization_alert_endpoints"
DELIVERIES = "quota_alert_deliveries"
# the text of an integer from 1 to 1000, or the forecast (no cast: CHECK evaluates in any order)
THRESHOLD_KNOWN = "threshold = 'forecast' OR threshold ~ '^[1-9][0-9]{0,2}$' OR threshold = '1000'"
PERCENTS_BOUNDED = (
    "cardinality(percents) <= 10 AND array_position(percents, NULL) IS NULL "
    "AND 1 <= ALL (percents) AND 1000 >= ALL (percents)"
)


def upgrade() -> None:
    _endpoints_up()
    op.create_table(
        "organization_alert_thresholds",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("percents", sa.ARRAY(sa.Integer()), nullable=False),
        sa.Column("forecast", sa.Boolean(), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("odavl_now()"),
            nullable=False,
        ),
        sa.Column("updated_by", sa.String(length=320), nullable=False),
        sa.CheckConstraint(
            PERCENTS_BOUNDED, name=op.f("ck_organization_alert_thresholds_percents_bounded")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_organization_alert_thresholds_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organization_id", name=op.f("pk_organization_alert_thresholds")),
    )
    op.drop_constraint(op.f("ck_quota_alerts_threshold_known"), "quota_alerts", type_="check")
    op.create_check_constraint(
        op.f("ck_quota_alerts_threshold_known"), "quota_alerts", THRESHOLD_KNOWN
    )
    _deliveries_up()


def _endpoints_up() -> None:
    """An id and a uid of their own, who added them, a salt, a soft removal."""
    op.drop_constraint(op.f("pk_organization_alert_endpoints"), ENDPOINTS, type_="primary")
    op.execute(f"ALTER TABLE {ENDPOINTS} ADD COLUMN id BIGSERIAL NOT NULL")
    op.create_primary_key(op.f("pk_organization_alert_endpoints"), ENDPOINTS, ["id"])
    op.add_column(ENDPOINTS, sa.Column("uid", sa.String(length=20), nullable=True))
    op.execute(f"UPDATE {ENDPOINTS} SET uid = 'ep_' || lpad(to_hex(id), 8, '0')")
    op.alter_column(ENDPOINTS, "uid", nullable=False)
    op.create_unique_constraint(op.f("uq_organization_alert_endpoints_uid"), ENDPOINTS, ["uid"])
    op.alter_column(ENDPOINTS, "updated_at", new_column_name="created_at")
    op.add_column(ENDPOINTS, sa.Column("created_by", sa.String(length=320), nullable=True))
    op.add_column(ENDPOINTS, sa.Column("secret_salt", sa.String(length=64), nullable=True))
    op.add_column(ENDPOINTS, sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(ENDPOINTS, sa.Column("removed_by", sa.String(length=320), nullable=True))
    op.create_index(
        op.f("ix_organization_alert_endpoints_organization_id_url"),
        ENDPOINTS,
        ["organization_id", "url"],
        unique=True,
        postgresql_where=sa.text("removed_at IS NULL"),
    )


def _deliveries_up() -> None:
    """Each organization delivery names its endpoint; one per alert, destination and endpoint."""
    op.add_column(DELIVERIES, sa.Column("endpoint_id", sa.BigInteger(), nullable=True))
    op.create_foreign_key(
        op.f("fk_quota_alert_deliveries_endpoint_id_organization_alert_endpoints"),
        DELIVERIES,
        ENDPOINTS,
        ["endpoint_id"],
        ["id"],
        ondelete="CASCADE",
    )
    op.execute(
        f"UPDATE {DELIVERIES} AS d SET endpoint_id = e.id FROM quota_alerts AS a, {ENDPOINTS} AS e "
        "WHERE a.id = d.alert_id AND e.organization_id = a.organization_id "
        "AND d.destination = 'organization'"
    )
    op.create_check_constraint(
        op.f("ck_quota_alert_deliveries_endpoint_of_organization"),
        DELIVERIES,
        "destination = 'organization' OR endpoint_id IS NULL",
    )
    op.drop_constraint(
        op.f("uq_quota_alert_deliveries_alert_id_destination"), DELIVERIES, type_="unique"
    )
    op.create_unique_constraint(
        op.f("uq_quota_alert_deliveries_alert_id_destination_endpoint_id"),
        DELIVERIES,
        ["alert_id", "destination", "endpoint_id"],
        postgresql_nulls_not_distinct=True,
    )
    op.create_index(op.f("ix_quota_alert_deliveries_endpoint_id"), DELIVERIES, ["endpoint_id"])


# the endpoint each organization keeps on a downgrade
_KEPT = (
    f"SELECT DISTINCT ON (organization_id) id FROM {ENDPOINTS} WHERE removed_at IS NULL "
    "ORDER BY organization_id, secret_salt IS NULL DESC, created_at, id"
)


def downgrade() -> None:
    op.execute(
        f"DELETE FROM {DELIVERIES} WHERE destination = 'organization' "
        f"AND endpoint_id IS NOT NULL AND endpoint_id NOT IN ({_KEPT})"
    )
    # one organization delivery per alert: one whose endpoint was deleted with SQL before 0020
    # gives way to the kept endpoint's
    op.execute(
        f"DELETE FROM {DELIVERIES} AS d WHERE d.destination = 'organization' "
        f"AND d.endpoint_id IS NULL AND EXISTS (SELECT 1 FROM {DELIVERIES} AS k "
        "WHERE k.alert_id = d.alert_id AND k.endpoint_id IS NOT NULL)"
    )
    op.drop_index(op.f("ix_quota_alert_deliveries_endpoint_id"), table_name=DELIVERIES)
    op.drop_constraint(
        op.f("uq_quota_alert_deliveries_alert_id_destination_endpoint_id"),
        DELIVERIES,
        type_="unique",
    )
    op.create_unique_constraint(
        op.f("uq_quota_alert_deliveries_alert_id_destination"),
        DELIVERIES,
        ["alert_id", "destination"],
    )
    op.drop_constraint(
        op.f("ck_quota_alert_deliveries_endpoint_of_organization"), DELIVERIES, type_="check"
    )
    op.drop_constraint(
        op.f("fk_quota_alert_deliveries_endpoint_id_organization_alert_endpoints"),
        DELIVERIES,
        type_="foreignkey",
    )
    op.drop_column(DELIVERIES, "endpoint_id")

    op.execute("DELETE FROM quota_alerts WHERE threshold NOT IN ('80', '100', 'forecast')")
    op.drop_constraint(op.f("ck_quota_alerts_threshold_known"), "quota_alerts", type_="check")
    op.create_check_constraint(
        op.f("ck_quota_alerts_threshold_known"),
        "quota_alerts",
        "threshold IN ('80', '100', 'forecast')",
    )
    op.drop_table("organization_alert_thresholds")

    op.execute(f"DELETE FROM {ENDPOINTS} WHERE id NOT IN ({_KEPT})")
    op.drop_index(op.f("ix_organization_alert_endpoints_organization_id_url"), table_name=ENDPOINTS)
    for column in ("removed_by", "removed_at", "secret_salt", "created_by"):
        op.drop_column(ENDPOINTS, column)
    op.alter_column(ENDPOINTS, "created_at", new_column_name="updated_at")
    op.drop_constraint(op.f("uq_organization_alert_endpoints_uid"), ENDPOINTS, type_="unique")
    op.drop_column(ENDPOINTS, "uid")
    op.drop_constraint(op.f("pk_organization_alert_endpoints"), ENDPOINTS, type_="primary")
    op.drop_column(ENDPOINTS, "id")
    op.create_primary_key(op.f("pk_organization_alert_endpoints"), ENDPOINTS, ["organization_id"])
