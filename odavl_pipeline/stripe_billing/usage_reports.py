"""Metered usage out to Stripe, as the period runs: increments since the last report, then a
true-up when the period closes, so that a period's meter events add up to its closed usage.

- Input: the `billing_periods` mart, open and closed periods (CONTRACT.md section 6). An open
  period's `used` is what has arrived so far; a closed period's never changes (usage that
  arrives after the close is carried by the marts into the open period, docs/marts.md).
- Event names: `odavl_analyses`, `odavl_fixes`, `odavl_audits` (one Stripe meter each, summing
  raw events); payload `{"stripe_customer_id": …, "value": "<increment>"}`.
- Increment: the period's `used` now minus the total already in our ledger for the period
  (`cumulative` of its last row). Each report sends the positive increments of open periods
  (hourly, with the `stripe` job) and, once a period is closed, its remainder: the true-up,
  marked `final`. After it, or when a closed period is found already fully reported (the row
  it was settled on is marked `final` without sending anything), nothing more is sent for the
  period.
- Identifier: `odavl:<organization id>:<metric>:<period start, UTC, %Y%m%dT%H%M%SZ>:<cumulative>`,
  where `cumulative` is the period's total through this increment. It depends on nothing
  but what was computed, so a retry or a rerun that computes the same increment sends the same
  identifier: Stripe refuses it as a duplicate (it keeps identifiers at least a day), and our
  ledger's UNIQUE identifier and UNIQUE (organization, metric, period start, cumulative)
  refuse a second row. Rows written before increments (one per closed period) keep their
  identifier `odavl:<organization id>:<metric>:<period start>` and count as a final increment.
- Timestamp: `min(now, period_end - 1 s)`, inside the period whatever the delay, so Stripe
  counts the event in the period's invoice while it is a draft. Stripe refuses timestamps
  older than 35 days: a remainder whose period's last second is more than 34 days old is left
  out (`outside_window`); backfilling history never bills old periods.
- Ledger: a `pending` row is committed before the send and marked `sent` after it. A failure
  or a crash in between leaves it `pending`; the next report sends it again first, with the
  same identifier, quantity and cumulative (a refusal as a duplicate proves Stripe has it),
  and only then computes a further increment. A `sent` row is never sent again.
- Never negative: when the marts say less than was already reported (a correction lowered the
  period, CONTRACT.md section 8), the difference is recorded as a credit due
  (`stripe_credits_due`, listed by the report and the Billing page) and nothing is sent until
  the usage exceeds what was reported; when a settled (`final`) period's usage changed, it is a
  discrepancy to settle by hand, never sent. Periods without usage and organizations without a
  Stripe customer send nothing.
- On time: Stripe finalizes a subscription's invoice after its finalization grace (1 hour
  after the period end by default, Dashboard, invoice settings, "Invoice finalization grace
  period"). The increments keep the bulk of a period's usage on time whatever the delays;
  the true-up is on time when the marts' grace (ODAVL_BILLING_GRACE_MINUTES) plus the time
  to the next build and report is shorter than Stripe's delay (docs/stripe.md).
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import stripe

from odavl_pipeline import clock
from odavl_pipeline.billing.catalogue import STRIPE_EVENT_NAMES
from odavl_pipeline.db.locks import stripe_usage_report_lock
from odavl_pipeline.marts.store import open_marts

REPORT_WINDOW = timedelta(days=34)  # Stripe accepts meter events up to 35 days old


@dataclass(frozen=True)
class BillingPeriod:
    """A billing period's usage of one metric by one organization (a `billing_periods` row)."""

    org: str
    period_start: datetime
    period_end: datetime
    metric: str
    used: int
    closed: bool


@dataclass(frozen=True)
class LedgerRow:
    id: int
    organization_id: int
    metric: str
    period_start: datetime
    period_end: datetime
    quantity: int
    cumulative: int
    final: bool
    identifier: str
    stripe_customer_id: str
    status: str


@dataclass
class ReportSummary:
    sent: list[str] = field(default_factory=list)  # identifiers sent (or found at Stripe) now
    already_reported: int = 0  # periods with nothing new since the last report
    without_customer: int = 0
    nothing_to_bill: int = 0
    outside_window: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (identifier, reason)
    discrepancies: list[str] = field(default_factory=list)
    credits_due: list[str] = field(default_factory=list)  # periods reported above their usage
    not_attempted: int = 0  # left for later after Stripe became unreachable in this report
    settled: int = 0  # closed periods settled now (true-up sent, or none needed)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.discrepancies and not self.not_attempted

    def as_dict(self) -> dict[str, int]:
        return {
            "sent": len(self.sent),
            "already_reported": self.already_reported,
            "without_customer": self.without_customer,
            "nothing_to_bill": self.nothing_to_bill,
            "outside_window": self.outside_window,
            "failed": len(self.failed),
            "discrepancies": len(self.discrepancies),
            "credits_due": len(self.credits_due),
            "not_attempted": self.not_attempted,
            "settled": self.settled,
        }


@dataclass(frozen=True)
class Reconciliation:
    checked: int
    violations: list[str]

    @property
    def passed(self) -> bool:
        return not self.violations


def meter_event_identifier(
    organization_id: int, metric: str, period_start: datetime, cumulative: int
) -> str:
    """The increment that brings the period's reported total to `cumulative`."""
    return (
        f"odavl:{organization_id}:{metric}:{period_start.astimezone(UTC):%Y%m%dT%H%M%SZ}:"
        f"{cumulative}"
    )


def event_timestamp(period_end: datetime, now: datetime | None = None) -> int:
    """Now, or the period's last second if it has ended, in Unix seconds."""
    last_second = int(period_end.timestamp()) - 1
    return last_second if now is None else min(int(now.timestamp()), last_second)


def read_billing_periods(marts_path: Path) -> list[BillingPeriod]:
    """Every period of the `billing_periods` mart, open and closed (CONTRACT.md section 6)."""
    with open_marts(marts_path) as con:
        rows = con.execute(
            "SELECT org, period_start, period_end, metric, used, closed "
            "FROM billing_periods ORDER BY org, metric, period_start"
        ).fetchall()
    return [BillingPeriod(*row) for row in rows]


def report_usage(
    conn: psycopg.Connection,
    client: stripe.StripeClient,
    periods: Iterable[BillingPeriod],
    now: datetime | None = None,
) -> ReportSummary:
    """Send each period's increment since the last report, and each closed period's true-up;
    see the module's rules.

    `conn` must be outside a transaction: each ledger step commits on its own.
    """
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        raise ValueError(
            "report_usage commits step by step: pass a connection outside a transaction"
        )
    report = _UsageReport(conn, client, now or clock.now())
    with stripe_usage_report_lock(conn):
        with conn.transaction():
            customers = _customers(conn)
            latest = {
                (row.organization_id, row.metric, row.period_start): row
                for row in _latest_increments(conn)
            }
            report.credited = set(
                conn.execute(
                    "SELECT organization_id, metric, period_start FROM stripe_credits_due "
                    "WHERE credit > 0"
                ).fetchall()
            )
        for period in sorted(periods, key=lambda p: (p.org, p.metric, p.period_start)):
            if period.metric not in STRIPE_EVENT_NAMES or period.period_start > report.now:
                continue
            organization_id, customer_id = customers.get(period.org, (None, None))
            if organization_id is None or customer_id is None:
                report.summary.without_customer += 1
                continue
            row = latest.get((organization_id, period.metric, period.period_start))
            report.report_period(period, organization_id, customer_id, row)
    return report.summary


@dataclass
class _UsageReport:
    """One report's sends; once Stripe is found unreachable, the rest is left for later."""

    conn: psycopg.Connection
    client: stripe.StripeClient
    now: datetime
    summary: ReportSummary = field(default_factory=ReportSummary)
    unreachable: bool = False
    credited: set[tuple[int, str, datetime]] = field(default_factory=set)  # credits due before

    def report_period(
        self,
        period: BillingPeriod,
        organization_id: int,
        customer_id: str,
        row: LedgerRow | None,
    ) -> None:
        """Bring a period's reported total up to its usage: send its pending increment first
        (`row`, its latest, if its outcome is unknown), then a further one if it needs one."""
        sent_now = False
        if row is not None and row.status == "pending":  # a send whose outcome is unknown
            if self._left_for_later() or not self._deliver(row):
                return
            row, sent_now = _as_sent(row), True
        reported = row.cumulative if row else 0
        if self._nothing_to_send(period, organization_id, row, reported, sent_now):
            return
        if event_timestamp(period.period_end, self.now) < (self.now - REPORT_WINDOW).timestamp():
            self.summary.outside_window += 1
            return
        if self._left_for_later():
            return
        row = _reserve(self.conn, organization_id, customer_id, period, reported)
        if self._deliver(row) and period.closed:
            self.summary.settled += 1

    def _nothing_to_send(
        self,
        period: BillingPeriod,
        organization_id: int,
        row: LedgerRow | None,
        reported: int,
        sent_now: bool,
    ) -> bool:
        """True when the period needs no further increment, counted by why: a credit due or a
        discrepancy, a settled or already reported period, no usage. A closed period whose
        increments add up to its usage is settled here: its latest row is marked `final`."""
        where = f"{period.org} {period.metric} {period.period_start:%Y-%m-%d}"
        if period.used < reported and not (row is not None and row.final):
            _record_credit(self.conn, organization_id, period, reported)
            self.summary.credits_due.append(
                f"{where}: reported {reported}, billed {period.used}: "
                f"a credit of {reported - period.used} is due"
            )
            return True
        if (organization_id, period.metric, period.period_start) in self.credited:
            _record_credit(self.conn, organization_id, period, reported)  # caught up: 0
        if period.used < reported:
            self.summary.discrepancies.append(
                f"{where}: reported {reported}, the marts now say {period.used}"
            )
            return True
        if row is not None and row.final:
            if period.used != reported:
                self.summary.discrepancies.append(
                    f"{where}: settled with {reported}, the marts now say {period.used}"
                )
            elif sent_now:
                self.summary.settled += 1
            else:
                self.summary.already_reported += 1
            return True
        if period.used != reported:
            return False
        if row is None:
            self.summary.nothing_to_bill += 1
        elif period.closed:
            _mark_final(self.conn, row)
            self.summary.settled += 1
        elif not sent_now:
            self.summary.already_reported += 1
        return True

    def _left_for_later(self) -> bool:
        """True, and counted as not attempted, once Stripe was found unreachable."""
        if self.unreachable:
            self.summary.not_attempted += 1
        return self.unreachable

    def _deliver(self, row: LedgerRow) -> bool:
        """Send a pending increment; True when Stripe has it."""
        reachable, delivered = _send(self.conn, self.client, row, self.now, self.summary)
        self.unreachable = not reachable
        return delivered


def reconcile(
    conn: psycopg.Connection, periods: Iterable[BillingPeriod], now: datetime | None = None
) -> Reconciliation:
    """What was sent agrees with the marts, for organizations with a Stripe customer id.

    Every ledger row must be `sent`, a period's increments must add up to its cumulative
    total, which must never exceed the period's usage, and must equal it once the period is
    closed; every closed period with usage of a linked organization, inside Stripe's window,
    must have been reported. Pass every period (`read_billing_periods`): increments of open
    periods are in the ledger too.
    """
    now = now or clock.now()
    with conn.transaction():
        customers = _customers(conn)
        rows = _ledger(conn)
        credits = credits_due(conn)
    slugs = {organization_id: slug for slug, (organization_id, _) in customers.items()}
    billed = {
        (p.org, p.metric, p.period_start): p for p in periods if p.metric in STRIPE_EVENT_NAMES
    }
    by_period: dict[tuple, list[LedgerRow]] = {}
    for row in rows:
        by_period.setdefault(
            (slugs.get(row.organization_id), row.metric, row.period_start), []
        ).append(row)
    oldest = (now - REPORT_WINDOW).timestamp()
    violations = []
    for key, increments in by_period.items():
        where = f"{key[0]} {key[1]} {key[2]:%Y-%m-%d}"
        reported = increments[-1].cumulative
        pending = sum(row.status != "sent" for row in increments)
        if pending:
            violations.append(f"{where}: {pending} pending, Stripe's receipt not confirmed yet")
        if sum(row.quantity for row in increments) != reported:
            violations.append(
                f"{where}: increments add up to "
                f"{sum(row.quantity for row in increments)}, not {reported}"
            )
        period = billed.get(key)
        if period is None:
            violations.append(f"{where}: reported, but no such period in the marts")
        elif (reported > period.used and credits.get(key) != reported - period.used) or (
            period.closed
            and reported < period.used
            and event_timestamp(period.period_end) >= oldest
        ):
            violations.append(f"{where}: reported {reported}, the marts say {period.used}")
    for key in sorted(k for k, p in billed.items() if p.closed and k not in by_period):
        period = billed[key]
        linked = customers.get(period.org, (None, None))[1] is not None
        if linked and period.used > 0 and event_timestamp(period.period_end) >= oldest:
            violations.append(
                f"{period.org} {period.metric} {period.period_start:%Y-%m-%d}: "
                f"{period.used} not reported to Stripe"
            )
    return Reconciliation(checked=len(by_period) + len(billed), violations=violations)


# --- credits due ---------------------------------------------------------------------------

RECORD_CREDIT = """
    INSERT INTO stripe_credits_due AS c (organization_id, metric, period_start, period_end,
                                         reported, used, credit)
    VALUES (%(org)s, %(metric)s, %(start)s, %(end)s, %(reported)s, %(used)s, %(credit)s)
    ON CONFLICT (organization_id, metric, period_start) DO UPDATE
    SET reported = excluded.reported, used = excluded.used, credit = excluded.credit,
        updated_at = odavl_now()
    WHERE (c.reported, c.used, c.credit) IS DISTINCT FROM (excluded.reported, excluded.used,
                                                           excluded.credit)
"""


def _record_credit(
    conn: psycopg.Connection, organization_id: int, period: BillingPeriod, reported: int
) -> None:
    """Keep the period's credit due: what was reported above its usage (a row once there was
    one; its credit 0 when the usage caught up)."""
    credit = max(reported - period.used, 0)
    values = {
        "org": organization_id,
        "metric": period.metric,
        "start": period.period_start,
        "end": period.period_end,
        "reported": reported,
        "used": period.used,
        "credit": credit,
    }
    with conn.transaction():
        if credit:
            conn.execute(RECORD_CREDIT, values)
        else:
            conn.execute(
                "UPDATE stripe_credits_due SET reported = %(reported)s, used = %(used)s, "
                "credit = 0, updated_at = odavl_now() WHERE organization_id = %(org)s "
                "AND metric = %(metric)s AND period_start = %(start)s AND credit > 0",
                values,
            )


def credits_due(conn: psycopg.Connection) -> dict[tuple[str, str, datetime], int]:
    """The credits due now, by (organization slug, metric, period start)."""
    return {
        (slug, metric, start): credit
        for slug, metric, start, credit in conn.execute(
            "SELECT o.slug, c.metric, c.period_start, c.credit FROM stripe_credits_due AS c "
            "JOIN organizations AS o ON o.id = c.organization_id WHERE c.credit > 0"
        ).fetchall()
    }


# --- the ledger --------------------------------------------------------------------------

_LEDGER_COLUMNS = (
    "id, organization_id, metric, period_start, period_end, quantity, cumulative, "
    "final, identifier, stripe_customer_id, status"
)


def _ledger(conn: psycopg.Connection) -> list[LedgerRow]:
    """Every increment, each period's in the order they were reserved."""
    return [
        LedgerRow(*row)
        for row in conn.execute(
            "SELECT " + _LEDGER_COLUMNS + " FROM stripe_usage_reports "
            "ORDER BY organization_id, metric, period_start, cumulative"
        )
    ]


def _latest_increments(conn: psycopg.Connection) -> list[LedgerRow]:
    """Each period's latest increment (the one with its cumulative total so far)."""
    return [
        LedgerRow(*row)
        for row in conn.execute(
            "SELECT DISTINCT ON (organization_id, metric, period_start) "
            + _LEDGER_COLUMNS
            + " FROM stripe_usage_reports "
            "ORDER BY organization_id, metric, period_start, cumulative DESC"
        )
    ]


def _customers(conn: psycopg.Connection) -> dict[str, tuple[int, str | None]]:
    return {
        slug: (organization_id, customer_id)
        for organization_id, slug, customer_id in conn.execute(
            "SELECT id, slug, stripe_customer_id FROM organizations"
        )
    }


def _reserve(
    conn: psycopg.Connection,
    organization_id: int,
    customer_id: str,
    period: BillingPeriod,
    reported: int,
) -> LedgerRow:
    """Commit the `pending` increment before anything is sent (reports are serialized by a lock)."""
    with conn.transaction():
        row = conn.execute(
            "INSERT INTO stripe_usage_reports (organization_id, metric, period_start, period_end, "
            "quantity, cumulative, final, identifier, stripe_customer_id, status, attempts) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'pending', 0) RETURNING "
            + _LEDGER_COLUMNS,
            (
                organization_id,
                period.metric,
                period.period_start,
                period.period_end,
                period.used - reported,
                period.used,
                period.closed,
                meter_event_identifier(
                    organization_id, period.metric, period.period_start, period.used
                ),
                customer_id,
            ),
        ).fetchone()
    assert row is not None  # INSERT … RETURNING returns the row it inserted
    return LedgerRow(*row)


def _as_sent(row: LedgerRow) -> LedgerRow:
    return LedgerRow(**{**row.__dict__, "status": "sent"})


def _mark_final(conn: psycopg.Connection, row: LedgerRow) -> None:
    """The closed period was fully reported by its increments: settled, nothing to send."""
    with conn.transaction():
        conn.execute("UPDATE stripe_usage_reports SET final = true WHERE id = %s", (row.id,))


def _send(
    conn: psycopg.Connection,
    client: stripe.StripeClient,
    row: LedgerRow,
    now: datetime,
    summary: ReportSummary,
) -> tuple[bool, bool]:
    """Send a pending increment and record the outcome: (Stripe reachable, delivered)."""
    try:
        client.v1.billing.meter_events.create(
            {
                "event_name": STRIPE_EVENT_NAMES[row.metric],
                "payload": {
                    "stripe_customer_id": row.stripe_customer_id,
                    "value": str(row.quantity),
                },
                "identifier": row.identifier,
                "timestamp": event_timestamp(row.period_end, now),
            }
        )
    except stripe.StripeError as error:
        if not _is_duplicate(error, row.identifier):
            _record_failure(conn, row, error)
            summary.failed.append((row.identifier, _reason(error)))
            return not _is_unreachable(error), False
    with conn.transaction():
        conn.execute(
            "UPDATE stripe_usage_reports SET status = 'sent', sent_at = odavl_now(), "
            "attempts = attempts + 1, last_error = NULL WHERE id = %s",
            (row.id,),
        )
    summary.sent.append(row.identifier)
    return True, True


def _record_failure(conn: psycopg.Connection, row: LedgerRow, error: stripe.StripeError) -> None:
    with conn.transaction():
        conn.execute(
            "UPDATE stripe_usage_reports SET attempts = attempts + 1, last_error = %s "
            "WHERE id = %s",
            (_reason(error), row.id),
        )


def _is_duplicate(error: stripe.StripeError, identifier: str) -> bool:
    """Stripe refuses an identifier it has seen: proof that the event was delivered before."""
    message = getattr(error, "user_message", None) or str(error)
    return isinstance(error, stripe.InvalidRequestError) and (
        error.code == "duplicate_meter_event"
        or ("already exists" in message and identifier in message)
    )


def _is_unreachable(error: stripe.StripeError) -> bool:
    """Connection failures, rate limits and server errors: stop, and leave the rest for later."""
    status = error.http_status
    return (
        isinstance(error, stripe.APIConnectionError)
        or status is None
        or status == 429
        or status >= 500
    )


def _reason(error: stripe.StripeError) -> str:
    status = error.http_status or "no response"
    return f"{type(error).__name__} ({status}): {getattr(error, 'user_message', None) or error}"
