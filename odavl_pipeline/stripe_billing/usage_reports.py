"""Metered usage out to Stripe: one billing meter event per organization, metric and closed period.

- Event names: `odavl_analyses`, `odavl_fixes`, `odavl_audits` (one Stripe meter each);
  payload `{"stripe_customer_id": …, "value": "<used>"}`.
- Identifier: `odavl:<organization id>:<metric>:<period start, UTC, %Y%m%dT%H%M%SZ>`, the same
  on every attempt, so Stripe refuses a second event for a period (it keeps identifiers
  about a day); our ledger `stripe_usage_reports` keeps them for good.
- Timestamp: the last second of the period (`period_end - 1 s`), so the event lands in that
  period. Stripe refuses timestamps older than 35 days: a closed period whose last second is
  more than 34 days old and was never reported is left out (`outside_window`); backfilling
  history never bills old periods.
- Ledger: a `pending` row is committed before the send and marked `sent` after it. A failure
  or a crash in between leaves it `pending`, and the next report sends it again with the same
  identifier (a refusal as a duplicate proves Stripe has it). A `sent` row is never sent again.
- Periods without usage, and organizations without a Stripe customer, send nothing. A closed
  period whose usage no longer equals what was reported is a discrepancy to settle by hand,
  never billed again silently (late usage is carried into the open period by the marts).
"""

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import stripe

from odavl_pipeline.marts.store import open_marts

EVENT_NAMES = {"analyses": "odavl_analyses", "fixes": "odavl_fixes", "audits": "odavl_audits"}
REPORT_WINDOW = timedelta(days=34)  # Stripe accepts meter events up to 35 days old


@dataclass(frozen=True)
class ClosedPeriod:
    """A closed billing period's usage of one metric by one organization (a marts row)."""

    org: str
    period_start: datetime
    period_end: datetime
    metric: str
    used: int


@dataclass(frozen=True)
class LedgerRow:
    id: int
    organization_id: int
    metric: str
    period_start: datetime
    period_end: datetime
    quantity: int
    identifier: str
    stripe_customer_id: str
    status: str


@dataclass
class ReportSummary:
    sent: list[str] = field(default_factory=list)  # identifiers sent (or found at Stripe) now
    already_reported: int = 0
    without_customer: int = 0
    nothing_to_bill: int = 0
    outside_window: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (identifier, reason)
    discrepancies: list[str] = field(default_factory=list)
    not_attempted: int = 0  # left pending after Stripe became unreachable in this report

    @property
    def ok(self) -> bool:
        return not self.failed and not self.discrepancies and not self.not_attempted

    def as_dict(self) -> dict[str, int]:
        return {"sent": len(self.sent), "already_reported": self.already_reported,
                "without_customer": self.without_customer, "nothing_to_bill": self.nothing_to_bill,
                "outside_window": self.outside_window, "failed": len(self.failed),
                "discrepancies": len(self.discrepancies), "not_attempted": self.not_attempted}


@dataclass(frozen=True)
class Reconciliation:
    checked: int
    violations: list[str]

    @property
    def passed(self) -> bool:
        return not self.violations


def meter_event_identifier(organization_id: int, metric: str, period_start: datetime) -> str:
    return f"odavl:{organization_id}:{metric}:{period_start.astimezone(UTC):%Y%m%dT%H%M%SZ}"


def event_timestamp(period_end: datetime) -> int:
    """The last second of the period, in Unix seconds."""
    return int(period_end.timestamp()) - 1


def read_closed_periods(marts_path: Path) -> list[ClosedPeriod]:
    """The closed periods of the `billing_periods` mart (CONTRACT.md section 6)."""
    with open_marts(marts_path) as con:
        rows = con.execute("SELECT org, period_start, period_end, metric, used FROM billing_periods "
                           "WHERE closed ORDER BY org, metric, period_start").fetchall()
    return [ClosedPeriod(*row) for row in rows]


def report_usage(conn: psycopg.Connection, client: stripe.StripeClient,
                 periods: Iterable[ClosedPeriod], now: datetime | None = None) -> ReportSummary:
    """Send each closed period's usage to Stripe once; see the module's rules.

    `conn` must be outside a transaction: each ledger step commits on its own.
    """
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        raise ValueError("report_usage commits step by step: pass a connection outside a transaction")
    now = now or datetime.now(UTC)
    summary = ReportSummary()
    with _report_lock(conn):
        with conn.transaction():
            customers = _customers(conn)
            rows = [LedgerRow(*row) for row in conn.execute(_SELECT_LEDGER)]
        ledger = {(row.organization_id, row.metric, row.period_start): row for row in rows}
        unreachable = False
        for period in sorted(periods, key=lambda p: (p.org, p.metric, p.period_start)):
            if period.metric not in EVENT_NAMES:
                continue
            organization_id, customer_id = customers.get(period.org, (None, None))
            if organization_id is None or customer_id is None:
                summary.without_customer += 1
                continue
            row = ledger.get((organization_id, period.metric, period.period_start))
            if row is None:
                if period.used == 0:
                    summary.nothing_to_bill += 1
                    continue
                if event_timestamp(period.period_end) < (now - REPORT_WINDOW).timestamp():
                    summary.outside_window += 1
                    continue
                if unreachable:
                    summary.not_attempted += 1
                    continue
                row = _reserve(conn, organization_id, customer_id, period)
            if row.quantity != period.used:
                summary.discrepancies.append(
                    f"{period.org} {period.metric} {period.period_start:%Y-%m-%d}: {row.status} "
                    f"with {row.quantity}, the marts now say {period.used}")
            elif row.status == "sent":
                summary.already_reported += 1
            elif unreachable:
                summary.not_attempted += 1
            else:
                unreachable = not _send(conn, client, row, summary)
    return summary


def reconcile(conn: psycopg.Connection, periods: Iterable[ClosedPeriod],
              now: datetime | None = None) -> Reconciliation:
    """The sent ledger equals the closed periods' usage, for organizations with a customer id.

    Every ledger row must be `sent` with its period's current usage; every closed period
    with usage of a linked organization, inside Stripe's window, must have a ledger row.
    """
    now = now or datetime.now(UTC)
    with conn.transaction():
        customers = _customers(conn)
        rows = [LedgerRow(*row) for row in conn.execute(_SELECT_LEDGER)]
    slugs = {organization_id: slug for slug, (organization_id, _) in customers.items()}
    billed = {(p.org, p.metric, p.period_start): p for p in periods if p.metric in EVENT_NAMES}
    violations, reported = [], set()
    for row in rows:
        key = (slugs.get(row.organization_id), row.metric, row.period_start)
        reported.add(key)
        where = f"{key[0]} {row.metric} {row.period_start:%Y-%m-%d}"
        if key not in billed:
            violations.append(f"{where}: reported, but no such closed period in the marts")
        elif row.status != "sent":
            violations.append(f"{where}: pending, Stripe's receipt not confirmed yet")
        elif row.quantity != billed[key].used:
            violations.append(f"{where}: reported {row.quantity}, the marts say {billed[key].used}")
    oldest = (now - REPORT_WINDOW).timestamp()
    for key in sorted(billed.keys() - reported):
        period = billed[key]
        linked = customers.get(period.org, (None, None))[1] is not None
        if linked and period.used > 0 and event_timestamp(period.period_end) >= oldest:
            violations.append(f"{period.org} {period.metric} {period.period_start:%Y-%m-%d}: "
                              f"{period.used} not reported to Stripe")
    return Reconciliation(checked=len(rows) + len(billed), violations=violations)


# --- the ledger --------------------------------------------------------------------------

_LEDGER_COLUMNS = ("id, organization_id, metric, period_start, period_end, quantity, identifier, "
                   "stripe_customer_id, status")
_SELECT_LEDGER = "SELECT " + _LEDGER_COLUMNS + " FROM stripe_usage_reports"


def _customers(conn: psycopg.Connection) -> dict[str, tuple[int, str | None]]:
    return {slug: (organization_id, customer_id) for organization_id, slug, customer_id in
            conn.execute("SELECT id, slug, stripe_customer_id FROM organizations")}


def _reserve(conn: psycopg.Connection, organization_id: int, customer_id: str,
             period: ClosedPeriod) -> LedgerRow:
    """Commit the `pending` row before anything is sent (reports are serialized by a lock)."""
    with conn.transaction():
        row = conn.execute(
            "INSERT INTO stripe_usage_reports (organization_id, metric, period_start, period_end, "
            "quantity, identifier, stripe_customer_id, status, attempts) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, 'pending', 0) RETURNING " + _LEDGER_COLUMNS,
            (organization_id, period.metric, period.period_start, period.period_end, period.used,
             meter_event_identifier(organization_id, period.metric, period.period_start),
             customer_id)).fetchone()
    return LedgerRow(*row)


def _send(conn: psycopg.Connection, client: stripe.StripeClient, row: LedgerRow,
          summary: ReportSummary) -> bool:
    """Send a pending row and record the outcome; False when Stripe could not be reached."""
    try:
        client.v1.billing.meter_events.create({
            "event_name": EVENT_NAMES[row.metric],
            "payload": {"stripe_customer_id": row.stripe_customer_id, "value": str(row.quantity)},
            "identifier": row.identifier,
            "timestamp": event_timestamp(row.period_end),
        })
    except stripe.StripeError as error:
        if not _is_duplicate(error, row.identifier):
            _record_failure(conn, row, error)
            summary.failed.append((row.identifier, _reason(error)))
            return not _is_unreachable(error)
    with conn.transaction():
        conn.execute("UPDATE stripe_usage_reports SET status = 'sent', sent_at = now(), "
                     "attempts = attempts + 1, last_error = NULL WHERE id = %s", (row.id,))
    summary.sent.append(row.identifier)
    return True


def _record_failure(conn: psycopg.Connection, row: LedgerRow, error: stripe.StripeError) -> None:
    with conn.transaction():
        conn.execute("UPDATE stripe_usage_reports SET attempts = attempts + 1, last_error = %s "
                     "WHERE id = %s", (_reason(error), row.id))


def _is_duplicate(error: stripe.StripeError, identifier: str) -> bool:
    """Stripe refuses an identifier it has seen: proof that the event was delivered before."""
    message = getattr(error, "user_message", None) or str(error)
    return isinstance(error, stripe.InvalidRequestError) and (
        error.code == "duplicate_meter_event"
        or ("already exists" in message and identifier in message))


def _is_unreachable(error: stripe.StripeError) -> bool:
    """Connection failures, rate limits and server errors: stop, and leave the rest for later."""
    status = error.http_status
    return (isinstance(error, stripe.APIConnectionError) or status is None or status == 429
            or status >= 500)


def _reason(error: stripe.StripeError) -> str:
    status = error.http_status or "no response"
    return f"{type(error).__name__} ({status}): {getattr(error, 'user_message', None) or error}"


@contextmanager
def _report_lock(conn: psycopg.Connection) -> Iterator[None]:
    """One report at a time: a session-level advisory lock, held across the step commits."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_lock(hashtext('odavl:stripe:usage-report'))")
    try:
        yield
    finally:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_unlock(hashtext('odavl:stripe:usage-report'))")
