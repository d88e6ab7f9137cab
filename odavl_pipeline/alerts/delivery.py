"""Delivering quota alerts: at least once, signed, retried with backoff, every attempt recorded.

Tables (migrations 0007, 0020): `quota_alerts` (one row per alert, ever),
`quota_alert_deliveries` (one per alert and destination: `default` = ODAVL_ALERT_WEBHOOK_URL, or
`organization` with one of the organization's `organization_alert_endpoints`),
`quota_alert_attempts` (the ledger: one row per HTTP attempt with its status code or error).

A sender claims one due delivery with SELECT … FOR UPDATE SKIP LOCKED and keeps the row locked
while it POSTs, then records the attempt and the delivery's new state in the same transaction:
two senders never send the same attempt. A sender that dies after the POST and before its
commit leaves the delivery as it was, so the next sender sends it again with the same alert id:
delivery is at least once, and receivers de-duplicate by `id`.
"""

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from odavl_pipeline import clock
from odavl_pipeline.alerts.http import TIMEOUT_SECONDS, Delivery, post
from odavl_pipeline.alerts.signing import (
    SIGNATURE_HEADER,
    endpoint_secret,
    organization_secret,
    sign,
)


@dataclass(frozen=True)
class RetryPolicy:
    """After the n-th failed attempt the next is due `base × 2^(n-1)` later, at most `cap`;
    after `max_attempts` failures the delivery is `failed` and never tried again."""

    base: timedelta = timedelta(minutes=1)
    cap: timedelta = timedelta(hours=1)
    max_attempts: int = 8  # 1 + 2 + 4 + … + 60 min: about 2 hours of retries

    def delay(self, attempt: int) -> timedelta:
        return min(self.base * 2 ** (attempt - 1), self.cap)


@dataclass
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    errors: list[str] = field(
        default_factory=list
    )  # "qa_… to default: HTTP 500" (or to ep_…); no URL
    out_of_time: bool = False  # stopped with deliveries maybe still due: the time was spent

    def summary(self) -> str:
        return (
            f"quota alerts: {self.sent} delivered, {self.retrying} to retry, {self.failed} given up"
            + ("; out of time, the next call sends the rest" if self.out_of_time else "")
        )


def enqueue(conn: psycopg.Connection, default_url: bool, now: datetime | None = None) -> int:
    """Adds a delivery for each alert of a still open period and each destination configured
    now (`default_url`: ODAVL_ALERT_WEBHOOK_URL is set; each endpoint of the organization not
    removed), once. Alerts of periods already over are not sent to a destination configured
    after them."""
    now = now or clock.now()
    added = 0
    try:
        if default_url:
            added += conn.execute(
                "INSERT INTO quota_alert_deliveries (alert_id, destination, state, attempts, "
                "next_attempt_at) SELECT id, 'default', 'pending', 0, %(now)s FROM quota_alerts "
                "WHERE period_end > %(now)s ON CONFLICT DO NOTHING",
                {"now": now},
            ).rowcount
        added += conn.execute(
            "INSERT INTO quota_alert_deliveries (alert_id, destination, endpoint_id, state, "
            "attempts, next_attempt_at) SELECT a.id, 'organization', e.id, 'pending', 0, %(now)s "
            "FROM quota_alerts AS a JOIN organization_alert_endpoints AS e USING (organization_id) "
            "WHERE a.period_end > %(now)s AND e.removed_at IS NULL ON CONFLICT DO NOTHING",
            {"now": now},
        ).rowcount
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    return added


_CLAIM = """
SELECT d.id AS delivery_id, d.destination, d.attempts, a.*, o.slug AS org, o.name AS org_name,
       e.uid AS endpoint_uid, e.secret_salt,
       CASE WHEN e.removed_at IS NULL THEN e.url END AS endpoint_url
FROM quota_alert_deliveries AS d
JOIN quota_alerts AS a ON a.id = d.alert_id
JOIN organizations AS o ON o.id = a.organization_id
LEFT JOIN organization_alert_endpoints AS e ON e.id = d.endpoint_id
WHERE d.state = 'pending' AND d.next_attempt_at <= %(now)s
ORDER BY d.next_attempt_at, d.id
LIMIT 1
FOR UPDATE OF d SKIP LOCKED
"""


def payload(alert: dict) -> dict:
    """The JSON body of an alert (docs/operations.md): `id` is stable across every attempt."""
    used, quota, threshold = alert["used"], alert["quota"], alert["threshold"]
    pct = round(100.0 * used / quota, 2) if quota else None
    period = f"{alert['period_start']:%Y-%m-%d} – {alert['period_end']:%Y-%m-%d}"
    if threshold == "forecast":
        what = (
            f"is forecast to use up its {alert['metric']} quota on "
            f"{alert['projected_exhaustion']} ({used:,} of {quota:,} used so far)"
        )
    else:
        what = (
            f"has used {pct if pct is not None else '–'} % of its {alert['metric']} quota "
            f"({used:,} of {quota:,}), past {threshold} %"
        )
    return {
        "id": alert["uid"],
        "type": "quota.forecast" if threshold == "forecast" else "quota.threshold",
        "created": alert["detected_at"].astimezone(UTC).isoformat(),
        "organization": {"slug": alert["org"], "name": alert["org_name"]},
        "metric": alert["metric"],
        "threshold": threshold,
        "period": {
            "start": alert["period_start"].astimezone(UTC).isoformat(),
            "end": alert["period_end"].astimezone(UTC).isoformat(),
        },
        "used": used,
        "quota": quota,
        "pct_used": pct,
        "status": alert["status"],
        "projected": alert["projected"],
        "projected_exhaustion": (
            alert["projected_exhaustion"].isoformat() if alert["projected_exhaustion"] else None
        ),
        "as_of": alert["as_of"].astimezone(UTC).isoformat(),
        "text": f"ODAVL: {alert['org_name']} ({alert['org']}) {what} in the period {period}.",
    }


def deliver_due(
    conn: psycopg.Connection,
    default_url: str | None,
    secret: str,
    policy: RetryPolicy = RetryPolicy(),
    now: datetime | None = None,
    send: Callable[[str, bytes, dict], Delivery] = post,
    limit: int = 100,
    seconds: float | None = None,
) -> DeliveryReport:
    """Sends every delivery due at `now` (at most `limit` attempts), one transaction each; with
    `seconds`, only as long as an attempt (at most TIMEOUT_SECONDS) still fits in them.

    `conn` must have no transaction open. Each attempt is a row of `quota_alert_attempts`.
    `default_url` and `secret` come from the environment and are never logged.
    """
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        raise ValueError("deliver_due needs a connection without an open transaction")
    report = DeliveryReport()
    deadline = None if seconds is None else time.monotonic() + seconds - TIMEOUT_SECONDS
    for _ in range(limit):
        if deadline is not None and time.monotonic() > deadline:
            report.out_of_time = True
            break
        moment = now or clock.now()
        with conn.transaction(), conn.cursor(row_factory=dict_row) as cursor:
            row = cursor.execute(_CLAIM, {"now": moment}).fetchone()
            if row is None:
                break
            url, key = _destination(row, default_url, secret)
            attempt = row["attempts"] + 1
            result = _attempt(row, url, key, send)
            state, next_at = _next_state(result, attempt, bool(url), policy, moment)
            _record_attempt(cursor, row, attempt, moment, result, state, next_at)
            _tally(report, row, result, state)
    return report


def _destination(row: dict, default_url: str | None, secret: str) -> tuple[str | None, str]:
    """Where a claimed delivery goes and the key that signs it: (URL or None, key). An endpoint
    added since migration 0020 signs with its own secret, one carried over with its
    organization's."""
    if row["destination"] == "default":
        return default_url, secret
    if row["secret_salt"]:
        return row["endpoint_url"], endpoint_secret(secret, row["secret_salt"])
    return row["endpoint_url"], organization_secret(secret, row["organization_id"])


def _attempt(
    row: dict, url: str | None, key: str, send: Callable[[str, bytes, dict], Delivery]
) -> Delivery:
    """POST the signed alert, or fail at once when its destination has no URL any more."""
    if not url:
        return Delivery(False, "no URL configured for this destination any more")
    body = json.dumps(payload(row), separators=(",", ":")).encode()
    return send(url, body, {SIGNATURE_HEADER: sign(key, body), "ODAVL-Alert-Id": row["uid"]})


def _next_state(
    result: Delivery, attempt: int, has_url: bool, policy: RetryPolicy, clock: datetime
) -> tuple[str, datetime]:
    """The delivery's state after this attempt, and when it is next due."""
    if result.delivered:
        return "sent", clock
    if attempt >= policy.max_attempts or not has_url:
        return "failed", clock
    return "pending", clock + policy.delay(attempt)


def _record_attempt(
    cursor: psycopg.Cursor[dict[str, Any]],
    row: dict,
    attempt: int,
    clock: datetime,
    result: Delivery,
    state: str,
    next_at: datetime,
) -> None:
    """The attempt's row in the ledger, and the delivery's new state."""
    error = None if result.delivered else result.detail
    cursor.execute(
        "INSERT INTO quota_alert_attempts (delivery_id, attempt, attempted_at, "
        "status_code, error, delivered) VALUES (%s, %s, %s, %s, %s, %s)",
        (row["delivery_id"], attempt, clock, result.status, error, result.delivered),
    )
    cursor.execute(
        "UPDATE quota_alert_deliveries SET state = %s, attempts = %s, next_attempt_at = %s, "
        "delivered_at = CASE WHEN %s THEN %s END, last_error = %s WHERE id = %s",
        (state, attempt, next_at, result.delivered, clock, error, row["delivery_id"]),
    )


def _tally(report: DeliveryReport, row: dict, result: Delivery, state: str) -> None:
    """Count the attempt's outcome in `report`, with why it failed."""
    if state == "sent":
        report.sent += 1
    elif state == "failed":
        report.failed += 1
    else:
        report.retrying += 1
    if not result.delivered:
        where = row["endpoint_uid"] or row["destination"]
        report.errors.append(f"{row['uid']} to {where}: {result.detail}")
