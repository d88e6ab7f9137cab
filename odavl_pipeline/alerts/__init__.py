"""Quota alerts: plain Python, no Dagster, no Streamlit (docs/operations.md, "Quota alerts").

- `detect`: which thresholds (`80`, `100`, `forecast`) a quota_status row has crossed, and
  recording each (organization, period, metric, threshold) once, ever.
- `signing`: the `ODAVL-Signature` header (HMAC-SHA256 over `<t>.<body>`, like Stripe's).
- `http`: one JSON POST, a failure reported and never raised.
- `delivery`: the payload, retries with backoff, the delivery ledger.
"""

from odavl_pipeline.alerts.delivery import (
    DeliveryReport,
    RetryPolicy,
    deliver_due,
    enqueue,
    payload,
)
from odavl_pipeline.alerts.detect import (
    alert_uid,
    record_alerts,
    record_from_marts,
    thresholds_crossed,
)
from odavl_pipeline.alerts.signing import (
    SIGNATURE_HEADER,
    organization_secret,
    sign,
    verify,
)

__all__ = [
    "SIGNATURE_HEADER",
    "DeliveryReport",
    "RetryPolicy",
    "alert_uid",
    "deliver_due",
    "enqueue",
    "organization_secret",
    "payload",
    "record_alerts",
    "record_from_marts",
    "sign",
    "thresholds_crossed",
    "verify",
]
