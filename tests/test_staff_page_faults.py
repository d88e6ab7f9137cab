"""The Staff page lists what a fault left waiting (the billing periods whose close waits for
usage files, and the Stripe events set aside), with the reason, and only staff see them (through
Streamlit's AppTest, on the demo marts)."""

import json

import pytest
import stripe

from dashlib import data
from odavl_pipeline import clock
from odavl_pipeline.billing.catalogue import QUOTA_METRICS
from odavl_pipeline.db.server import connect
from odavl_pipeline.settings import Settings
from odavl_pipeline.stripe_billing import inbox
from odavl_pipeline.stripe_billing.sync import process_due

from .dashboards_fixtures import (
    ALICE,
    BUILT_AT,
    STAFF,
    no_exceptions,
    signed_in_app,
    texts,
)

pytestmark = pytest.mark.usefixtures("app_test_leaves_main_alone", "dashboard_environment")


def staff_page():
    return no_exceptions(signed_in_app(STAFF).switch_page("views/staff.py").run())


def set_aside_one(app_settings: Settings) -> dict:
    """A subscription Stripe sent with a status we do not know, processed: set aside."""
    event = {
        "id": "evt_frozen",
        "type": "customer.subscription.updated",
        "created": 1_900_000_000,
        "data": {"object": {"id": "sub_frozen", "customer": "cus_x", "status": "frozen"}},
    }
    with connect(app_settings) as conn:
        inbox.receive(conn, inbox.parse_event(event), json.dumps(event))
    [outcome] = process_due(app_settings, stripe.StripeClient("sk_test_never_called"))
    assert outcome.status == "dead"
    return event


def test_the_staff_page_lists_the_stripe_events_set_aside_with_their_reason(marts):
    assert "Every Stripe event received was processed" in texts(staff_page())

    set_aside_one(marts)
    at = staff_page()
    table = at.dataframe[-1].value
    assert list(table["id"]) == ["evt_frozen"]
    assert list(table["reason"]) == [inbox.INVALID]
    assert table["detail"][0] == "subscription sub_frozen: unknown status 'frozen'"
    assert "1 Stripe event(s) set aside" in texts(at)
    assert "`odavl-pipeline stripe retry`" in texts(at)
    with pytest.raises(data.AccessDenied):
        data.stripe_dead_letters(data.Viewer(ALICE.email))

    with connect(marts) as conn:
        assert inbox.requeue(conn) == ["evt_frozen"]
    assert "Every Stripe event received was processed" in texts(staff_page())


def test_the_staff_page_names_the_periods_waiting_to_close_and_the_files_holding_them(
    marts, clock_at
):
    clock_at(BUILT_AT)
    data._held_files.clear()
    at = staff_page()
    assert "No billing period past its end and grace waits to close." in texts(at)
    assert "Usage file" not in {column for frame in at.dataframe for column in frame.value}

    late = marts.landing_dir / "usage_events" / "2026-11-05" / "late.ndjson"
    late.parent.mkdir(parents=True, exist_ok=True)
    late.write_text('{"id": "late-1"}\n')
    try:
        clock_at("2026-12-20T00:00:00Z")  # the demo's open periods are past their end and grace
        data._held_files.clear()
        at = staff_page()
        waiting = next(f.value for f in at.dataframe if "period_start" in f.value)
        assert len(waiting) > 0 and set(waiting["metric"]) <= set(QUOTA_METRICS)
        assert all(end <= clock.now() - marts.billing_grace for end in waiting["period_end"])
        held = next(f.value for f in at.dataframe if "why" in f.value)
        assert list(held["path"]) == ["usage_events/2026-11-05/late.ndjson"]
        assert list(held["why"]) == ["unread"]
        assert f"{len(waiting):,} billing period(s) past their end and grace" in texts(at)
        with pytest.raises(data.AccessDenied):
            data.files_holding_closes(data.Viewer(ALICE.email))
    finally:
        late.unlink()
        data._held_files.clear()
