"""One vocabulary: the billing catalogue and the domain's sets name exactly what the database's
enums hold, so a new metric, tier or value cannot reach one without the other."""

import pytest

from odavl_pipeline.billing import catalogue
from odavl_pipeline.db import models
from odavl_pipeline.domain import records


def values(enum) -> set[str]:
    return {member.value for member in enum}


@pytest.mark.parametrize(
    ("enum", "vocabulary"),
    [
        (models.UsageEventType, set(catalogue.METRIC_OF_EVENT_TYPE)),
        (models.UsageEventType, set(records.USAGE_EVENT_TYPES)),
        (models.Tier, set(catalogue.PLAN_LIMITS)),
        (models.Severity, set(records.SEVERITIES)),
        (models.RunStatus, set(records.RUN_STATUSES)),
        (models.Environment, set(records.ENVIRONMENTS)),
        (models.Device, set(records.DEVICES)),
        (models.AuditSuite, set(records.AUDIT_SUITES)),
    ],
    ids=lambda value: getattr(value, "__name__", ""),
)
def test_each_vocabulary_is_its_enum(enum, vocabulary):
    assert vocabulary == values(enum)


def test_every_quota_metric_is_counted_limited_on_every_tier_and_metered_in_stripe():
    counted = set(catalogue.METRIC_OF_EVENT_TYPE.values())
    assert set(catalogue.QUOTA_METRICS) <= counted
    for limits in catalogue.PLAN_LIMITS.values():
        assert set(catalogue.QUOTA_METRICS) <= set(limits)
        assert all(isinstance(limit, int) and limit >= 0 for limit in limits.values())
    assert set(catalogue.STRIPE_EVENT_NAMES) == set(catalogue.QUOTA_METRICS)
    # a subscription overrides each limit in a column of its own
    columns = models.Subscription.__table__.columns
    assert all(f"{metric}_limit" in columns for metric in catalogue.QUOTA_METRICS)
