"""Metered usage out to the emulator's billing meter events: increments as the period runs, a
true-up at its close, and a period's events add up to its closed usage, whatever fails.

Data is drawn relative to the instant a test starts at (`now`); the calendar tier runs the
report's window at each instant of tests/clocks.py, Stripe's clock (the emulator's) being ours.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg
import pytest
from psycopg.rows import dict_row

from odavl_pipeline import clock
from odavl_pipeline.billing.plans import CALENDAR_MONTHS, add_months, period_containing
from odavl_pipeline.db import migrate
from odavl_pipeline.db.server import connect
from odavl_pipeline.marts.store import MartsNotBuilt
from odavl_pipeline.stripe_billing.client import stripe_client
from odavl_pipeline.stripe_billing.usage_reports import (
    REPORT_WINDOW,
    read_billing_periods,
    reconcile,
    report_usage,
)

from .stripe_emulator import BILLED, sample_billing_periods, write_billing_periods

pytestmark = pytest.mark.stripe

OPEN = 1  # open periods of the sample with usage of a linked organization: sent as increments


@pytest.fixture
def now() -> datetime:
    """The instant the test starts at."""
    return clock.now()


def link_customers(settings) -> dict[str, str]:
    """The demo organizations linked to new emulated customers: {slug: customer id}."""
    client = stripe_client(settings)
    customers = {}
    with connect(settings) as conn:
        for slug in ("odavl-test-org", "enterprise-corp"):
            customers[slug] = client.v1.customers.create({"name": slug}).id
            conn.execute(
                "UPDATE organizations SET stripe_customer_id = %s WHERE slug = %s",
                (customers[slug], slug),
            )
    return customers


@pytest.fixture
def billing(stripe_settings, stripe_emulator, now):
    """The demo organizations linked to emulated customers, and the sample periods in the marts."""
    customers = link_customers(stripe_settings)
    write_billing_periods(stripe_settings.marts_path, sample_billing_periods(now))
    return customers


def report(settings, now: datetime | None = None):
    periods = read_billing_periods(settings.marts_path)
    with connect(settings) as conn:
        return report_usage(conn, stripe_client(settings), periods, now=now)


def reconciliation(settings, now: datetime | None = None):
    with connect(settings) as conn:
        return reconcile(conn, read_billing_periods(settings.marts_path), now=now)


def ledger(settings) -> list[dict]:
    with connect(settings) as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT o.slug, r.metric, r.quantity, r.cumulative, r.final, "
            "r.identifier, r.status, r.attempts, r.sent_at, r.last_error "
            "FROM stripe_usage_reports r JOIN organizations o "
            "ON o.id = r.organization_id ORDER BY r.identifier"
        ).fetchall()


def organization_ids(settings) -> dict[str, int]:
    with connect(settings) as conn:
        return dict(conn.execute("SELECT slug, id FROM organizations").fetchall())


def test_each_period_is_sent_once_and_a_second_report_sends_nothing(
    stripe_settings, stripe_emulator, billing, now
):
    summary = report(stripe_settings)

    assert summary.as_dict() == {
        "sent": BILLED + OPEN,
        "already_reported": 0,
        "without_customer": 1,
        "nothing_to_bill": 1,
        "outside_window": 1,
        "failed": 0,
        "discrepancies": 0,
        "credits_due": 0,
        "not_attempted": 0,
        "settled": BILLED,
    }
    ids = organization_ids(stripe_settings)
    recent, current = sample_billing_periods(now)[0], sample_billing_periods(now)[8]
    start, current_start = f"{recent[1]:%Y%m%dT%H%M%SZ}", f"{current[1]:%Y%m%dT%H%M%SZ}"
    enterprise, test_org = ids["enterprise-corp"], ids["odavl-test-org"]
    expected = {
        f"odavl:{enterprise}:analyses:{start}:4000": ("odavl_analyses", "enterprise-corp", "4000"),
        f"odavl:{enterprise}:audits:{start}:3": ("odavl_audits", "enterprise-corp", "3"),
        f"odavl:{enterprise}:fixes:{start}:15": ("odavl_fixes", "enterprise-corp", "15"),
        f"odavl:{test_org}:analyses:{start}:620": ("odavl_analyses", "odavl-test-org", "620"),
        f"odavl:{test_org}:fixes:{start}:7": ("odavl_fixes", "odavl-test-org", "7"),
        f"odavl:{test_org}:analyses:{current_start}:10": ("odavl_analyses", "odavl-test-org", "10"),
    }
    stored = stripe_emulator.meter_events.stored
    assert {
        identifier: (
            event["event_name"],
            event["payload"]["stripe_customer_id"],
            event["payload"]["value"],
        )
        for identifier, event in stored.items()
    } == {
        identifier: (name, billing[slug], value)
        for identifier, (name, slug, value) in expected.items()
    }
    open_identifier = f"odavl:{test_org}:analyses:{current_start}:10"
    assert {
        event["timestamp"] for identifier, event in stored.items() if identifier != open_identifier
    } == {int(recent[2].timestamp()) - 1}
    assert (
        current[1].timestamp() <= stored[open_identifier]["timestamp"] <= clock.now().timestamp()
    )  # the open period's increment: now, inside its period
    rows = ledger(stripe_settings)
    assert [(row["identifier"], row["status"], row["attempts"]) for row in rows] == [
        (identifier, "sent", 1) for identifier in sorted(expected)
    ]
    assert [row["final"] for row in rows] == [row["identifier"] != open_identifier for row in rows]
    assert all(row["sent_at"] is not None and row["quantity"] == row["cumulative"] for row in rows)
    assert reconciliation(stripe_settings).passed

    requests_so_far = stripe_emulator.meter_events.requests
    again = report(stripe_settings)
    assert (len(again.sent), again.already_reported, again.settled) == (0, BILLED + OPEN, 0)
    assert stripe_emulator.meter_events.requests == requests_so_far


def test_a_report_that_fails_in_the_middle_then_is_retried_bills_every_period_exactly_once(
    stripe_settings, stripe_emulator, billing
):
    meter_events = stripe_emulator.meter_events
    meter_events.fail_request(3, 500, after_storing=True)  # Stripe kept it; the answer was lost
    first = report(stripe_settings)

    assert (len(first.sent), len(first.failed), first.not_attempted, first.ok) == (2, 1, 3, False)
    assert "500" in first.failed[0][1]
    assert len(meter_events.accepted) == 3
    assert [row["status"] for row in ledger(stripe_settings)].count("pending") == 1
    unreconciled = reconciliation(stripe_settings)
    assert len(unreconciled.violations) == 3  # one pending, two closed periods never sent

    meter_events.fail_request(1, 503)  # the retry fails too, before Stripe keeps anything
    second = report(stripe_settings)
    assert (len(second.sent), len(second.failed), second.not_attempted) == (0, 1, 3)

    third = report(stripe_settings)  # the pending one again: Stripe refuses it as a duplicate
    assert (len(third.sent), third.already_reported, third.ok) == (4, 2, True)

    assert sorted(meter_events.accepted) == sorted(set(meter_events.accepted))
    assert len(meter_events.accepted) == BILLED + OPEN
    rows = ledger(stripe_settings)
    assert [row["status"] for row in rows] == ["sent"] * (BILLED + OPEN)
    assert {row["identifier"] for row in rows} == set(meter_events.accepted)
    assert sorted(row["attempts"] for row in rows) == [1, 1, 1, 1, 1, 3]
    assert all(row["last_error"] is None for row in rows)
    assert reconciliation(stripe_settings).passed
    assert len(report(stripe_settings).sent) == 0


def test_changed_usage_of_a_settled_period_is_a_discrepancy_never_billed_again(
    stripe_settings, stripe_emulator, billing, now
):
    report(stripe_settings)
    rows = sample_billing_periods(now)
    rows[3] = (*rows[3][:4], 625, *rows[3][5:])  # odavl-test-org analyses: 620 -> 625
    write_billing_periods(stripe_settings.marts_path, rows)
    requests_so_far = stripe_emulator.meter_events.requests

    summary = report(stripe_settings)

    assert summary.discrepancies == [
        f"odavl-test-org analyses {rows[3][1]:%Y-%m-%d}: settled with 620, the marts now say 625"
    ]
    assert (len(summary.sent), summary.ok) == (0, False)
    assert stripe_emulator.meter_events.requests == requests_so_far
    assert reconciliation(stripe_settings).violations == [
        f"odavl-test-org analyses {rows[3][1]:%Y-%m-%d}: reported 620, the marts say 625"
    ]


# --- increments as the period runs, and the true-up at its close ---------------------------


@dataclass(frozen=True)
class Period:
    """enterprise-corp's analyses period [start, end), and the next one until `next_end`."""

    start: datetime
    end: datetime
    next_end: datetime

    def rows(self, used: int, closed: bool, next_used: int | None = None) -> list[tuple]:
        """Its `billing_periods` row, and the next period's if `next_used` is given."""
        rows = [("enterprise-corp", self.start, self.end, "analyses", used, 5000, 0, closed)]
        if next_used is not None:
            rows.append(
                ("enterprise-corp", self.end, self.next_end, "analyses", next_used, 5000, 0, False)
            )
        return rows


@pytest.fixture
def period(now) -> Period:
    """A period that ended two hours ago."""
    start = (now - timedelta(days=20)).replace(microsecond=0)
    end = (now - timedelta(hours=2)).replace(microsecond=0)
    return Period(start, end, end + timedelta(days=30))


def reported_to_stripe(emulator, customer: str, start: datetime, end: datetime) -> int:
    """What Stripe would bill: the `value`s of the distinct analyses events timestamped in the period."""
    return sum(
        int(event["payload"]["value"])
        for event in emulator.meter_events.stored.values()
        if event["event_name"] == "odavl_analyses"
        and event["payload"]["stripe_customer_id"] == customer
        and start.timestamp() <= event["timestamp"] < end.timestamp()
    )


def at(
    settings,
    period: Period,
    used: int,
    closed: bool,
    now: datetime | None,
    next_used: int | None = None,
):
    """The marts as a build at `now` (the clock's if None) would publish them, then a report
    at `now`."""
    write_billing_periods(settings.marts_path, period.rows(used, closed, next_used))
    return report(settings, now=now)


def test_increments_during_the_period_and_the_true_up_add_up_to_the_closed_usage(
    stripe_settings, stripe_emulator, billing, period
):
    customer, meter_events = billing["enterprise-corp"], stripe_emulator.meter_events
    org = organization_ids(stripe_settings)["enterprise-corp"]
    prefix = f"odavl:{org}:analyses:{period.start:%Y%m%dT%H%M%SZ}"
    day5, day10 = period.start + timedelta(days=5), period.start + timedelta(days=10)

    first = at(stripe_settings, period, 100, False, day5)
    assert (first.sent, first.settled) == ([f"{prefix}:100"], 0)
    assert meter_events.stored[f"{prefix}:100"]["timestamp"] == int(day5.timestamp())
    assert (
        at(stripe_settings, period, 100, False, day5 + timedelta(hours=1)).as_dict()[
            "already_reported"
        ]
        == 1
    )  # nothing new: nothing sent
    assert meter_events.requests == 1
    assert at(stripe_settings, period, 250, False, day10).sent == [f"{prefix}:250"]
    assert meter_events.stored[f"{prefix}:250"]["payload"]["value"] == "150"
    assert reconciliation(stripe_settings, now=day10).passed  # open: below the usage is fine

    # ended, not closed yet (inside the marts' grace): the increment is dated the last second
    ended = at(stripe_settings, period, 300, False, period.end + timedelta(minutes=20), next_used=0)
    assert ended.sent == [f"{prefix}:300"]
    assert meter_events.stored[f"{prefix}:300"]["timestamp"] == int(period.end.timestamp()) - 1

    closing = at(
        stripe_settings, period, 320, True, period.end + timedelta(minutes=70), next_used=0
    )
    assert (closing.sent, closing.settled, closing.ok) == ([f"{prefix}:320"], 1, True)
    assert meter_events.stored[f"{prefix}:320"]["payload"]["value"] == "20"
    assert reported_to_stripe(stripe_emulator, customer, period.start, period.end) == 320
    rows = ledger(stripe_settings)
    assert [
        (r["quantity"], r["cumulative"], r["final"])
        for r in sorted(rows, key=lambda r: r["cumulative"])
    ] == [(100, 100, False), (150, 250, False), (50, 300, False), (20, 320, True)]

    # a rerun sends nothing; late usage arrives after the close: the marts carry it into the
    # open period, which it is reported in; the closed period is never sent anything again
    requests_so_far = meter_events.requests
    rerun = at(stripe_settings, period, 320, True, period.end + timedelta(minutes=80), next_used=0)
    assert (rerun.sent, rerun.already_reported, meter_events.requests) == ([], 1, requests_so_far)
    late = at(stripe_settings, period, 320, True, period.end + timedelta(minutes=90), next_used=7)
    assert late.sent == [f"odavl:{org}:analyses:{period.end:%Y%m%dT%H%M%SZ}:7"]
    assert reported_to_stripe(stripe_emulator, customer, period.start, period.end) == 320
    assert reported_to_stripe(stripe_emulator, customer, period.end, period.next_end) == 7
    assert sorted(meter_events.accepted) == sorted(set(meter_events.accepted))
    assert reconciliation(stripe_settings, now=period.end + timedelta(minutes=90)).passed


def test_a_period_fully_reported_by_its_increments_is_settled_without_a_send(
    stripe_settings, stripe_emulator, billing, period
):
    at(stripe_settings, period, 40, False, period.start + timedelta(days=1))
    requests_so_far = stripe_emulator.meter_events.requests

    closing = at(stripe_settings, period, 40, True, period.end + timedelta(minutes=70))

    assert (closing.sent, closing.settled, stripe_emulator.meter_events.requests) == (
        [],
        1,
        requests_so_far,
    )
    assert [row["final"] for row in ledger(stripe_settings)] == [True]
    changed = at(
        stripe_settings, period, 41, True, period.end + timedelta(minutes=80)
    )  # never happens: a bug
    assert (changed.sent, len(changed.discrepancies)) == ([], 1)


CRASH = """
CREATE FUNCTION crash_before_sent() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'the report died between the send and its record'; END $$;
CREATE TRIGGER crash_before_sent BEFORE UPDATE OF status ON stripe_usage_reports
FOR EACH ROW WHEN (NEW.status = 'sent') EXECUTE FUNCTION crash_before_sent();
"""


def crash_after_sending(settings, crashing: bool) -> None:
    """From now on, the report dies right after Stripe answered, before recording `sent`."""
    with connect(settings) as conn:
        conn.execute(
            CRASH
            if crashing
            else "DROP TRIGGER crash_before_sent ON stripe_usage_reports; "
            "DROP FUNCTION crash_before_sent()"
        )


def test_a_crash_between_sending_and_recording_never_counts_twice(
    stripe_settings, stripe_emulator, billing, period
):
    customer, meter_events = billing["enterprise-corp"], stripe_emulator.meter_events
    day3 = period.start + timedelta(days=3)
    crash_after_sending(stripe_settings, True)
    with pytest.raises(psycopg.errors.RaiseException, match="between the send and its record"):
        at(stripe_settings, period, 100, False, day3)  # an increment while the period runs
    assert [(r["status"], r["cumulative"]) for r in ledger(stripe_settings)] == [("pending", 100)]
    assert len(meter_events.accepted) == 1  # Stripe has it, our ledger does not know
    crash_after_sending(stripe_settings, False)

    # more usage by the rerun: the pending increment is resent first, with its identifier
    # (Stripe refuses the duplicate), then the new increment alone
    rerun = at(stripe_settings, period, 130, False, day3 + timedelta(hours=1))
    assert (len(rerun.sent), rerun.ok) == (2, True)
    assert reported_to_stripe(stripe_emulator, customer, period.start, period.end) == 130

    crash_after_sending(stripe_settings, True)  # now during the true-up
    with pytest.raises(psycopg.errors.RaiseException):
        at(stripe_settings, period, 180, True, period.end + timedelta(minutes=70))
    crash_after_sending(stripe_settings, False)
    after_crash = at(stripe_settings, period, 180, True, period.end + timedelta(minutes=75))
    assert (len(after_crash.sent), after_crash.settled, after_crash.ok) == (1, 1, True)
    assert at(stripe_settings, period, 180, True, period.end + timedelta(minutes=80)).sent == []

    assert reported_to_stripe(stripe_emulator, customer, period.start, period.end) == 180
    assert sorted(meter_events.accepted) == sorted(set(meter_events.accepted))
    assert len(meter_events.accepted) == 3  # 100, 30 and the true-up's 50, each once
    rows = ledger(stripe_settings)
    assert sorted((r["quantity"], r["cumulative"], r["status"], r["attempts"]) for r in rows) == [
        (30, 130, "sent", 1),
        (50, 180, "sent", 1),
        (100, 100, "sent", 1),
    ]
    assert reconciliation(stripe_settings, now=period.end + timedelta(minutes=80)).passed


def test_less_usage_than_reported_sends_nothing_negative_and_records_the_credit_due(
    stripe_settings, stripe_emulator, billing, period
):
    at(stripe_settings, period, 100, False, period.start + timedelta(days=2))
    requests_so_far = stripe_emulator.meter_events.requests

    lower = at(
        stripe_settings, period, 90, False, period.start + timedelta(days=3)
    )  # a correction lowered the open period
    closed = at(stripe_settings, period, 90, True, period.end + timedelta(minutes=70))

    where = f"enterprise-corp analyses {period.start:%Y-%m-%d}"
    due = [f"{where}: reported 100, billed 90: a credit of 10 is due"]
    assert (lower.credits_due, closed.credits_due) == (due, due)
    assert lower.discrepancies == closed.discrepancies == []
    assert stripe_emulator.meter_events.requests == requests_so_far  # nothing negative
    with connect(stripe_settings) as conn:
        assert conn.execute(
            "SELECT metric, reported, used, credit FROM stripe_credits_due"
        ).fetchall() == [("analyses", 100, 90, 10)]
    assert reconciliation(stripe_settings, now=period.end + timedelta(minutes=70)).passed


def test_a_credit_due_ends_when_the_usage_catches_up(
    stripe_settings, stripe_emulator, billing, period
):
    at(stripe_settings, period, 100, False, period.start + timedelta(days=2))
    at(stripe_settings, period, 90, False, period.start + timedelta(days=3))
    caught_up = at(stripe_settings, period, 130, False, period.start + timedelta(days=4))
    assert caught_up.credits_due == [] and len(caught_up.sent) == 1  # the 30 above 100
    with connect(stripe_settings) as conn:
        assert conn.execute("SELECT reported, used, credit FROM stripe_credits_due").fetchall() == [
            (100, 130, 0)
        ]


def test_rows_of_before_the_increments_become_final_first_increments(
    stripe_settings, stripe_emulator, billing, database_url, period
):
    migrate.downgrade(database_url, "0007")
    org = organization_ids(stripe_settings)["enterprise-corp"]
    old_identifier = f"odavl:{org}:analyses:{period.start:%Y%m%dT%H%M%SZ}"
    with connect(stripe_settings) as conn:
        conn.execute(
            "INSERT INTO stripe_usage_reports (organization_id, metric, period_start, "
            "period_end, quantity, identifier, stripe_customer_id, status, attempts) "
            "VALUES (%s, 'analyses', %s, %s, 320, %s, %s, 'sent', 1)",
            (org, period.start, period.end, old_identifier, billing["enterprise-corp"]),
        )
    migrate.upgrade(database_url)

    assert [
        (r["identifier"], r["quantity"], r["cumulative"], r["final"])
        for r in ledger(stripe_settings)
    ] == [(old_identifier, 320, 320, True)]
    again = at(stripe_settings, period, 320, True, period.end + timedelta(minutes=70))
    assert (again.sent, again.already_reported, stripe_emulator.meter_events.requests) == ([], 1, 0)


def test_reconciliation_finds_unreported_periods_and_ignores_what_stripe_would_refuse(
    stripe_settings, stripe_emulator, billing, now
):
    result = reconciliation(stripe_settings)
    assert sorted(result.violations) == sorted(
        f"{org} {metric} {start:%Y-%m-%d}: {used} not reported to Stripe"
        for org, start, _, metric, used, *_ in sample_billing_periods(now)[:6]
        if used
    )
    assert len(result.violations) == BILLED


def test_the_report_needs_the_marts(stripe_settings, tmp_path):
    with pytest.raises(MartsNotBuilt, match="run `odavl-pipeline run` first"):
        read_billing_periods(tmp_path / "nothing.duckdb")


def test_open_and_closed_periods_are_read(stripe_settings, billing, now):
    periods = read_billing_periods(stripe_settings.marts_path)
    assert len(periods) == len(sample_billing_periods(now))
    assert [period.closed for period in periods].count(False) == 1
    closed = [period for period in periods if period.closed]
    assert all(period.period_end <= now + timedelta(seconds=1) for period in closed)
    assert all(period.period_start.utcoffset() == timedelta(0) for period in periods)


# --- the calendar tier: the report's window at each instant of tests/clocks.py ---------------


def calendar_month(moment: datetime, months_later: int = 0) -> tuple[datetime, datetime]:
    """The UTC calendar month holding `moment`, or one `months_later` (negative: before)."""
    start, _ = period_containing(CALENDAR_MONTHS, moment)
    return add_months(start, months_later), add_months(start, months_later + 1)


def sent_events(emulator) -> dict[tuple[str, datetime], dict]:
    """The meter events Stripe holds, by (event name, period start in the identifier)."""
    return {
        (
            event["event_name"],
            datetime.strptime(identifier.split(":")[3], "%Y%m%dT%H%M%S%z"),
        ): event
        for identifier, event in emulator.meter_events.stored.items()
    }


@pytest.mark.calendar
def test_at_any_instant_each_event_is_dated_in_its_period_and_old_periods_are_left_out(
    calendar_now, stripe_settings, stripe_emulator
):
    link_customers(stripe_settings)
    window_start = (calendar_now - REPORT_WINDOW).replace(microsecond=0)
    last_month = calendar_month(calendar_now, -1)
    # name: (metric, start, end, used, closed); analyses by calendar month, fixes at the window
    periods = {
        "this month": ("analyses", *calendar_month(calendar_now), 11, False),
        "last month": (
            "analyses",
            *last_month,
            22,
            calendar_now >= last_month[1] + stripe_settings.billing_grace,
        ),
        "two months ago": ("analyses", *calendar_month(calendar_now, -2), 33, True),
        "three months ago": ("analyses", *calendar_month(calendar_now, -3), 44, True),
        "last second just in the window": (
            "fixes",
            window_start - timedelta(days=30),
            window_start + timedelta(minutes=1, seconds=1),
            5,
            True,
        ),
        "ended just before the window": (
            "fixes",
            window_start - timedelta(days=30),
            window_start - timedelta(minutes=1),
            6,
            True,
        ),
    }
    write_billing_periods(
        stripe_settings.marts_path,
        [
            ("enterprise-corp", start, end, metric, used, 5000, 0, closed)
            for metric, start, end, used, closed in periods.values()
        ],
    )

    summary = report(stripe_settings)
    reported_by = clock.now()

    two_months_ago_ended = periods["two months ago"][2]
    expected = {"this month", "last month", "last second just in the window"} | (
        {"two months ago"} if two_months_ago_ended - timedelta(seconds=1) >= window_start else set()
    )  # a month ends 28 to 31 days after it starts: two months ago is in the window on the 1st
    assert (summary.failed, summary.ok) == ([], True)  # Stripe, on our clock, took every event
    assert summary.outside_window == len(periods) - len(expected)
    events = sent_events(stripe_emulator)
    assert set(events) == {(f"odavl_{periods[name][0]}", periods[name][1]) for name in expected}
    for name in expected:
        metric, start, end, used, _ = periods[name]
        event = events[(f"odavl_{metric}", start)]
        last_second = int(end.timestamp()) - 1
        assert event["payload"]["value"] == str(used)
        assert start.timestamp() <= event["timestamp"] <= last_second  # in its period
        assert (
            min(int(calendar_now.timestamp()), last_second)
            <= event["timestamp"]
            <= min(int(reported_by.timestamp()), last_second)
        )  # min(now, the period's last second)
    assert reconciliation(stripe_settings).passed


@pytest.mark.calendar
def test_at_any_instant_the_month_that_closed_last_gets_its_true_up(
    calendar_now, stripe_settings, stripe_emulator, clock_at
):
    customer = link_customers(stripe_settings)["enterprise-corp"]
    grace = stripe_settings.billing_grace
    start, end = calendar_month(calendar_now, -1)
    month = Period(start, end, calendar_month(calendar_now)[1])

    clock_at(start + (end - start) / 2)  # mid-month: an increment dated now
    assert at(stripe_settings, month, 100, False, None).sent
    clock_at(end + grace / 2)  # ended, in the grace: an increment dated its last second
    assert at(stripe_settings, month, 120, False, None, next_used=0).sent
    clock_at(max(calendar_now, end + grace))  # the first report once the marts closed it
    closing = at(stripe_settings, month, 125, True, None, next_used=0)

    assert (len(closing.sent), closing.settled, closing.ok) == (1, 1, True)
    true_up = stripe_emulator.meter_events.stored[closing.sent[0]]
    assert (true_up["payload"]["value"], true_up["timestamp"]) == ("5", int(end.timestamp()) - 1)
    assert reported_to_stripe(stripe_emulator, customer, start, end) == 125
    assert sorted((row["cumulative"], row["final"]) for row in ledger(stripe_settings)) == [
        (100, False),
        (120, False),
        (125, True),
    ]
    assert at(stripe_settings, month, 125, True, None, next_used=0).sent == []
    assert reconciliation(stripe_settings).passed
