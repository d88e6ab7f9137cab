"""The billing catalogue agrees with itself and with the subscriptions' columns (its event types
and tiers are tied to the enums by tests/test_vocabulary.py)."""

from odavl_pipeline.billing import catalogue
from odavl_pipeline.db import models


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
