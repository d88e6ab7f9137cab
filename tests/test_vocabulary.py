"""One vocabulary: the enums of domain/enums.py are the database's enum types (as migrated), the
domain's validation sets, the billing catalogue's keys and every other list of the same values,
so a value cannot reach one without the others."""

import enum

import pytest
import sqlalchemy
from hypothesis import given
from hypothesis import strategies as st

from odavl_pipeline.api import records as api_records
from odavl_pipeline.billing import catalogue
from odavl_pipeline.db import models
from odavl_pipeline.domain import enums, records
from odavl_pipeline.domain.enums import values
from odavl_pipeline.generate import vocabulary as synthetic
from odavl_pipeline.stripe_billing import subscriptions

# each validation set of the domain, and the enum it is made of
DOMAIN_SETS = [
    (enums.UsageEventType, records.USAGE_EVENT_TYPES),
    (enums.Severity, records.SEVERITIES),
    (enums.RunStatus, records.RUN_STATUSES),
    (enums.Environment, records.ENVIRONMENTS),
    (enums.Device, records.DEVICES),
    (enums.AuditSuite, records.AUDIT_SUITES),
]
NAMES = [kind.__name__ for kind, _ in DOMAIN_SETS]
EVERY_VALUE = sorted({value for kind, _ in DOMAIN_SETS for value in values(kind)})


def enum_types() -> dict[str, type[enum.Enum]]:
    """The database's enum types, by name, and the Python enum each column declares."""
    return {
        column.type.name: column.type.enum_class
        for table in models.Base.metadata.tables.values()
        for column in table.columns
        if isinstance(column.type, sqlalchemy.Enum)
    }


@pytest.mark.parametrize(("kind", "vocabulary"), DOMAIN_SETS, ids=NAMES)
def test_each_domain_set_is_its_enum(kind, vocabulary):
    assert vocabulary == set(values(kind))


def test_the_sources_are_the_landing_source_type_in_its_order():
    assert records.SOURCES == values(enums.Source)
    assert enum_types()["landing_source"] is enums.Source


def test_the_migrated_database_holds_each_enum_s_values_in_its_order(conn):
    types = enum_types()
    for name, kind in types.items():
        labels = conn.execute(
            "SELECT e.enumlabel FROM pg_enum AS e JOIN pg_type AS t ON t.oid = e.enumtypid "
            "WHERE t.typname = %s ORDER BY e.enumsortorder",
            (name,),
        ).fetchall()
        assert tuple(label for (label,) in labels) == values(kind), name
    # every enum of the vocabulary is a type of the database; the ledger's statuses are its own
    vocabulary = {
        kind
        for kind in vars(enums).values()
        if isinstance(kind, type) and issubclass(kind, enum.Enum)
    }
    assert set(types.values()) == vocabulary | {models.FileStatus}


def test_the_catalogue_meters_every_event_type_and_rates_every_tier():
    assert set(catalogue.METRIC_OF_EVENT_TYPE) == set(values(enums.UsageEventType))
    assert set(catalogue.PLAN_LIMITS) == set(values(enums.Tier))


def test_the_other_lists_of_the_same_values_match_the_enums():
    from dashlib import data

    # Stripe's subscriptions: the tiers in their order (the refusal lists them) and the statuses
    assert subscriptions.TIERS == values(enums.Tier)
    assert set(subscriptions.STATUSES.values()) == set(values(enums.SubscriptionStatus))
    # the roles: every one on the dashboards, the billing and writing ones among them
    assert data.EVERY_ROLE == values(enums.MemberRole)
    assert set(data.BILLING_ROLES) | set(api_records.WRITER_ROLES) <= set(data.EVERY_ROLE)
    # the generator writes only values the validation accepts, and every one of them
    assert set(synthetic.EVENT_TYPES) == set(values(enums.UsageEventType))
    assert set(synthetic.TIER_WEIGHT) == set(synthetic.TIER_MAX_PROJECTS) == set(values(enums.Tier))
    assert set(synthetic.SEVERITIES) == set(values(enums.Severity))
    assert set(synthetic.ENVIRONMENTS) == set(values(enums.Environment))
    assert set(synthetic.DEVICES) == set(values(enums.Device))
    assert set(synthetic.AUDIT_SUITES) == set(values(enums.AuditSuite))


@pytest.mark.parametrize(("kind", "vocabulary"), DOMAIN_SETS, ids=NAMES)
@given(
    value=st.text(max_size=30)
    | st.sampled_from(EVERY_VALUE)
    | st.sampled_from(EVERY_VALUE).map(str.swapcase)
)
def test_a_field_takes_exactly_its_enum_s_values(kind, vocabulary, value):
    if value in values(kind):
        assert records.req_choice({"field": value}, "field", vocabulary) == value
    else:
        with pytest.raises(records.Rejected, match="must be one of"):
            records.req_choice({"field": value}, "field", vocabulary)
