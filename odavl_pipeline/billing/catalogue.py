"""The billing catalogue: what is metered, what each plan allows, when a quota alerts and what
Stripe calls each metric (CONTRACT.md sections 3, 5 and 6). Every place that counts, rates,
alerts or reports usage takes these from here: a new metric or tier is one change here (and the
enums of `domain/enums.py`, which tests/test_vocabulary.py ties to it).
"""

from typing import Literal, get_args

# the metric each usage event type counts in
METRIC_OF_EVENT_TYPE = {
    "insight_analysis": "analyses",
    "autopilot_job": "fixes",
    "guardian_test_run": "audits",
    "api_call": "api_calls",
}
# the metrics with a monthly quota, in the order they are shown; api_calls is counted, not limited
QuotaMetric = Literal["analyses", "fixes", "audits"]  # as a type (the HTTP API's answers)
QUOTA_METRICS: tuple[str, ...] = get_args(QuotaMetric)

# each tier's monthly limits (a subscription may override them)
PLAN_LIMITS = {
    "FREE": {"analyses": 100, "fixes": 50, "audits": 20, "projects": 3},
    "PRO": {"analyses": 500, "fixes": 200, "audits": 100, "projects": 10},
    "ENTERPRISE": {"analyses": 5_000, "fixes": 2_000, "audits": 1_000, "projects": 50},
}

# a quota is `warning` from this share of it (percent), `exceeded` from all of it
WARNING_PCT = 80
# the alerts a quota records unless its organization chose its own (alerts/thresholds.py), each
# once per period: 80 %, 100 %, and a forecast that runs out
ALERT_THRESHOLDS = ("80", "100", "forecast")

# the Stripe meter event of each quota metric
STRIPE_EVENT_NAMES = {metric: f"odavl_{metric}" for metric in QUOTA_METRICS}
