"""Metered usage out to the emulator's billing meter events: once per period, whatever fails."""

from datetime import UTC, datetime, timedelta

import pytest
from psycopg.rows import dict_row

from odavl_pipeline.db.server import connect
from odavl_pipeline.stripe_billing.client import stripe_client
from odavl_pipeline.marts.store import MartsNotBuilt
from odavl_pipeline.stripe_billing.usage_reports import read_closed_periods, reconcile, report_usage

from .stripe_emulator import BILLED, sample_billing_periods, write_billing_periods

NOW = datetime.now(UTC)


@pytest.fixture
def billing(stripe_settings, stripe_emulator):
    """The demo organizations linked to emulated customers, and the sample periods in the marts."""
    client = stripe_client(stripe_settings)
    customers = {}
    with connect(stripe_settings) as conn:
        for slug in ("odavl-test-org", "enterprise-corp"):
            customers[slug] = client.v1.customers.create({"name": slug}).id
            conn.execute("UPDATE organizations SET stripe_customer_id = %s WHERE slug = %s",
                         (customers[slug], slug))
    write_billing_periods(stripe_settings.marts_path, sample_billing_periods(NOW))
    return customers


def report(settings):
    periods = read_closed_periods(settings.marts_path)
    with connect(settings) as conn:
        return report_usage(conn, stripe_client(settings), periods)


def reconciliation(settings):
    with connect(settings) as conn:
        return reconcile(conn, read_closed_periods(settings.marts_path))


def ledger(settings) -> list[dict]:
    with connect(settings) as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute("SELECT o.slug, r.metric, r.quantity, r.identifier, r.status, r.attempts, "
                           "r.sent_at, r.last_error FROM stripe_usage_reports r "
                           "JOIN organizations o ON o.id = r.organization_id ORDER BY r.identifier"
                           ).fetchall()


def organization_ids(settings) -> dict[str, int]:
    with connect(settings) as conn:
        return dict(conn.execute("SELECT slug, id FROM organizations").fetchall())


def test_each_closed_period_is_sent_once_and_a_second_report_sends_nothing(
        stripe_settings, stripe_emulator, billing):
    summary = report(stripe_settings)

    assert summary.as_dict() == {"sent": BILLED, "already_reported": 0, "without_customer": 1,
                                 "nothing_to_bill": 1, "outside_window": 1, "failed": 0,
                                 "discrepancies": 0, "not_attempted": 0}
    ids = organization_ids(stripe_settings)
    recent = sample_billing_periods(NOW)[0]
    start = f"{recent[1]:%Y%m%dT%H%M%SZ}"
    enterprise, test_org = ids["enterprise-corp"], ids["odavl-test-org"]
    expected = {
        f"odavl:{enterprise}:analyses:{start}": ("odavl_analyses", "enterprise-corp", "4000"),
        f"odavl:{enterprise}:audits:{start}": ("odavl_audits", "enterprise-corp", "3"),
        f"odavl:{enterprise}:fixes:{start}": ("odavl_fixes", "enterprise-corp", "15"),
        f"odavl:{test_org}:analyses:{start}": ("odavl_analyses", "odavl-test-org", "620"),
        f"odavl:{test_org}:fixes:{start}": ("odavl_fixes", "odavl-test-org", "7"),
    }
    stored = stripe_emulator.meter_events.stored
    assert {identifier: (event["event_name"], event["payload"]["stripe_customer_id"],
                         event["payload"]["value"]) for identifier, event in stored.items()} == {
        identifier: (name, billing[slug], value) for identifier, (name, slug, value) in expected.items()}
    assert {event["timestamp"] for event in stored.values()} == {int(recent[2].timestamp()) - 1}
    rows = ledger(stripe_settings)
    assert [(row["identifier"], row["status"], row["attempts"]) for row in rows] == [
        (identifier, "sent", 1) for identifier in sorted(expected)]
    assert all(row["sent_at"] is not None for row in rows)
    assert reconciliation(stripe_settings).passed

    requests_so_far = stripe_emulator.meter_events.requests
    again = report(stripe_settings)
    assert (len(again.sent), again.already_reported) == (0, BILLED)
    assert stripe_emulator.meter_events.requests == requests_so_far


def test_a_report_that_fails_in_the_middle_then_is_retried_bills_every_period_exactly_once(
        stripe_settings, stripe_emulator, billing):
    meter_events = stripe_emulator.meter_events
    meter_events.fail_request(3, 500, after_storing=True)  # Stripe kept it; the answer was lost
    first = report(stripe_settings)

    assert (len(first.sent), len(first.failed), first.not_attempted, first.ok) == (2, 1, 2, False)
    assert "500" in first.failed[0][1]
    assert len(meter_events.accepted) == 3
    assert [row["status"] for row in ledger(stripe_settings)].count("pending") == 1
    unreconciled = reconciliation(stripe_settings)
    assert len(unreconciled.violations) == 3  # one pending, two never sent

    meter_events.fail_request(1, 503)  # the retry fails too, before Stripe keeps anything
    second = report(stripe_settings)
    assert (len(second.sent), len(second.failed), second.not_attempted) == (0, 1, 2)

    third = report(stripe_settings)  # the pending one again: Stripe refuses it as a duplicate
    assert (len(third.sent), third.already_reported, third.ok) == (3, 2, True)

    assert sorted(meter_events.accepted) == sorted(set(meter_events.accepted))
    assert len(meter_events.accepted) == BILLED
    rows = ledger(stripe_settings)
    assert [row["status"] for row in rows] == ["sent"] * BILLED
    assert {row["identifier"] for row in rows} == set(meter_events.accepted)
    assert sorted(row["attempts"] for row in rows) == [1, 1, 1, 1, 3]
    assert all(row["last_error"] is None for row in rows)
    assert reconciliation(stripe_settings).passed
    assert len(report(stripe_settings).sent) == 0


def test_changed_usage_of_a_reported_period_is_a_discrepancy_never_billed_again(
        stripe_settings, stripe_emulator, billing):
    report(stripe_settings)
    rows = sample_billing_periods(NOW)
    rows[3] = (*rows[3][:4], 625, *rows[3][5:])  # odavl-test-org analyses: 620 -> 625
    write_billing_periods(stripe_settings.marts_path, rows)
    requests_so_far = stripe_emulator.meter_events.requests

    summary = report(stripe_settings)

    assert summary.discrepancies == [
        f"odavl-test-org analyses {rows[3][1]:%Y-%m-%d}: sent with 620, the marts now say 625"]
    assert (len(summary.sent), summary.ok) == (0, False)
    assert stripe_emulator.meter_events.requests == requests_so_far
    assert reconciliation(stripe_settings).violations == [
        f"odavl-test-org analyses {rows[3][1]:%Y-%m-%d}: reported 620, the marts say 625"]


def test_reconciliation_finds_unreported_periods_and_ignores_what_stripe_would_refuse(
        stripe_settings, stripe_emulator, billing):
    result = reconciliation(stripe_settings)
    assert sorted(result.violations) == sorted(
        f"{org} {metric} {start:%Y-%m-%d}: {used} not reported to Stripe"
        for org, start, _, metric, used, *_ in sample_billing_periods(NOW)[:6] if used)
    assert len(result.violations) == BILLED


def test_the_report_needs_the_marts(stripe_settings, tmp_path):
    with pytest.raises(MartsNotBuilt, match="run `odavl-pipeline run` first"):
        read_closed_periods(tmp_path / "nothing.duckdb")


def test_only_closed_periods_are_read(stripe_settings, billing):
    periods = read_closed_periods(stripe_settings.marts_path)
    assert len(periods) == len(sample_billing_periods(NOW)) - 1
    assert all(period.period_end <= NOW + timedelta(seconds=1) for period in periods)
    assert all(period.period_start.utcoffset() == timedelta(0) for period in periods)
