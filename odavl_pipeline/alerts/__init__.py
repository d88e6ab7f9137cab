"""Quota alerts: plain Python, no Dagster, no Streamlit (docs/operations.md, "Quota alerts").

- `detect`: which thresholds (an organization's percentages, `forecast`) a quota_status row has
  crossed, and recording each (organization, period, metric, threshold) once, ever.
- `thresholds`: an organization's own thresholds (default 80 %, 100 %, forecast).
- `endpoints`: an organization's own endpoints, each with a secret shown once; a test alert.
- `access`: only an OWNER or ADMIN manages them, checked in the same transaction.
- `signing`: the `ODAVL-Signature` header (HMAC-SHA256 over `<t>.<body>`, like Stripe's) and the
  secrets derived from ODAVL_ALERT_WEBHOOK_SECRET.
- `http`: one JSON POST, a failure reported and never raised.
- `delivery`: the payload, retries with backoff, the delivery ledger.
"""

from odavl_pipeline.alerts.access import AlertSettingsRefused
from odavl_pipeline.alerts.delivery import (
    DeliveryReport,
    RetryPolicy,
    deliver_due,
    enqueue,
    payload,
)
from odavl_pipeline.alerts.detect import (
    alert_uid,
    percent_crossed,
    record_alerts,
    record_from_marts,
    thresholds_crossed,
)
from odavl_pipeline.alerts.signing import (
    SIGNATURE_HEADER,
    endpoint_secret,
    organization_secret,
    sign,
    verify,
)
from odavl_pipeline.alerts.thresholds import DEFAULT_THRESHOLDS, AlertThresholds

__all__ = [
    "DEFAULT_THRESHOLDS",
    "SIGNATURE_HEADER",
    "AlertSettingsRefused",
    "AlertThresholds",
    "DeliveryReport",
    "RetryPolicy",
    "alert_uid",
    "deliver_due",
    "endpoint_secret",
    "enqueue",
    "organization_secret",
    "payload",
    "percent_crossed",
    "record_alerts",
    "record_from_marts",
    "sign",
    "thresholds_crossed",
    "verify",
]
