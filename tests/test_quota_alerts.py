"""Quota alerts: the detection rule, exactly-once recording, signed delivery with retries and
its ledger, against a real PostgreSQL and a real HTTP receiver on loopback."""

import multiprocessing
import os
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from dashlib import ui
from odavl_pipeline.alerts import (
    DEFAULT_THRESHOLDS,
    AlertThresholds,
    RetryPolicy,
    alert_uid,
    deliver_due,
    endpoints,
    enqueue,
    organization_secret,
    record_alerts,
    record_from_marts,
    sign,
    thresholds_crossed,
    verify,
)
from odavl_pipeline.alerts.http import post
from odavl_pipeline.billing.catalogue import ALERT_THRESHOLDS
from odavl_pipeline.billing.quota import quota_status
from odavl_pipeline.db.server import connect
from odavl_pipeline.marts.schema import MART_TABLES

from .alert_receiver import AlertReceiver
from .clocks import instant
from .records import ORG, OTHER_ORG

SECRET = "whsec_test_quota_alerts"
# the alerts' periods are around NOW, and the clock (delivery's, the signatures') runs from it
NOW = instant("2026-11-20T12:00:00Z")
pytestmark = pytest.mark.clock(NOW)
START = NOW - timedelta(days=10)
END = NOW + timedelta(days=20)
IMMEDIATE = RetryPolicy(base=timedelta(0), cap=timedelta(0), max_attempts=5)


def quota_row(org=ORG, metric="analyses", used=450, quota=500, exhaustion=None, **fields):
    return {
        "org": org,
        "period_start": START,
        "period_end": END,
        "metric": metric,
        "used": used,
        "quota": quota,
        "status": quota_status(used, quota),
        "projected": used * 3,
        "projected_exhaustion": exhaustion,
        "as_of": NOW,
        **fields,
    }


def ledger(conn) -> list[tuple]:
    """Every attempt recorded (read in a transaction of its own)."""
    with conn.transaction():
        return conn.execute(
            "SELECT a.uid, d.destination, t.attempt, t.status_code, t.delivered FROM quota_alert_attempts t "
            "JOIN quota_alert_deliveries d ON d.id = t.delivery_id JOIN quota_alerts a ON a.id = d.alert_id "
            "ORDER BY a.uid, d.destination, t.attempt"
        ).fetchall()


# --- the rule -------------------------------------------------------------------------------


@hypothesis_settings(max_examples=int(os.environ.get("ODAVL_FUZZ_EXAMPLES", "200")), deadline=None)
@given(
    used=st.integers(0, 10**12),
    quota=st.integers(0, 10**12),
    exhaustion=st.none() | st.dates(date(1970, 1, 2), date(9998, 12, 30)),
    end=st.datetimes(datetime(1970, 1, 2), datetime(9998, 12, 30), timezones=st.just(UTC)),
)
def test_the_thresholds_are_the_dashboards_quota_states(used, quota, exhaustion, end):
    status = quota_status(used, quota)
    crossed = thresholds_crossed(used, quota, exhaustion, end)
    state = ui.quota_state(status, exhaustion, end)
    assert ("80" in crossed) == (state in ("warning", "exceeded"))
    assert ("100" in crossed) == (state == "exceeded")
    assert ("forecast" in crossed) == (state == "at risk")
    assert "100" not in crossed or "80" in crossed  # past 100 % is past 80 % too
    assert list(crossed) == [t for t in ALERT_THRESHOLDS if t in crossed]
    if quota > 0:
        assert ("80" in crossed) == (used * 100 >= 80 * quota)
        assert ("100" in crossed) == (used >= quota)


thresholds_lists = st.builds(
    AlertThresholds,
    st.lists(st.integers(1, 1000), max_size=10, unique=True).map(lambda p: tuple(sorted(p))),
    st.booleans(),
)


@hypothesis_settings(max_examples=int(os.environ.get("ODAVL_FUZZ_EXAMPLES", "200")), deadline=None)
@given(
    used=st.integers(-(10**12), 10**12),
    quota=st.integers(-(10**12), 10**12),
    more=st.integers(0, 10**12),
    thresholds=thresholds_lists,
)
def test_any_thresholds_are_crossed_in_integers_and_stay_crossed_as_use_grows(
    used, quota, more, thresholds
):
    end = NOW + timedelta(days=10)
    crossed = thresholds_crossed(used, quota, None, end, thresholds)
    later = thresholds_crossed(used + more, quota, None, end, thresholds)
    percents = [name for name in crossed if name != "forecast"]
    assert set(percents) <= set(later)  # more use never un-crosses a percentage
    assert percents == [str(p) for p in thresholds.percents if used > 0 and used * 100 >= p * quota]
    # a percentage crossed means every smaller one is too (a quota is not negative)
    if quota >= 0:
        assert percents == [str(p) for p in thresholds.percents[: len(percents)]]
    # the defaults are today's rule, whatever the integers: the status the marts show
    status = quota_status(used, quota)
    default = thresholds_crossed(used, quota, None, end)
    assert default == {"exceeded": ("80", "100"), "warning": ("80",), "ok": ()}[status]
    assert thresholds_crossed(used, quota, None, end, DEFAULT_THRESHOLDS) == default


def test_quota_zero_alerts_at_the_first_unit_used_and_not_before():
    end = NOW + timedelta(days=10)
    every = AlertThresholds((1, 50, 1000), True)
    assert thresholds_crossed(0, 0, None, end, every) == ()  # status ok: nothing used
    assert thresholds_crossed(1, 0, None, end, every) == ("1", "50", "1000")  # exceeded
    assert quota_status(0, 0) == "ok" and quota_status(1, 0) == "exceeded"
    # the forecast only while the status is ok, and only when switched on
    soon = (NOW + timedelta(days=2)).date()
    assert thresholds_crossed(10, 500, soon, end, every) == ("1", "forecast")
    assert thresholds_crossed(10, 500, soon, end, AlertThresholds((1,), False)) == ("1",)
    assert thresholds_crossed(450, 500, soon, end) == ("80",)  # warning: no longer "at risk"


def test_signatures_verify_only_with_the_secret_the_body_and_a_recent_time():
    body = b'{"id":"qa_1"}'
    header = sign(SECRET, body, timestamp=1_700_000_000)
    assert header.startswith("t=1700000000,v1=")
    assert verify(SECRET, header, body, now=1_700_000_010)
    assert not verify("another secret", header, body, now=1_700_000_010)
    assert not verify(SECRET, header, body + b" ", now=1_700_000_010)
    assert not verify(SECRET, header, body, now=1_700_000_000 + 301)  # a replay, too late
    assert not verify(SECRET, "garbage", body)
    assert organization_secret(SECRET, 1) != organization_secret(SECRET, 2)


# --- recording: exactly once ------------------------------------------------------------------


def test_each_alert_is_recorded_once_across_reruns(conn):
    rows = [
        quota_row(used=520),
        quota_row(metric="fixes", used=10, quota=200, exhaustion=(NOW + timedelta(days=5)).date()),
        quota_row(metric="audits", used=1, quota=100),
    ]
    first = record_alerts(conn, rows)
    assert sorted(first) == sorted(
        [
            alert_uid(ORG, START, "analyses", "80"),
            alert_uid(ORG, START, "analyses", "100"),
            alert_uid(ORG, START, "fixes", "forecast"),
        ]
    )
    assert record_alerts(conn, rows) == []  # a rerun, a backfill: nothing new
    assert record_alerts(conn, [quota_row(used=600)]) == []  # still past, still once
    assert conn.execute("SELECT count(*) FROM quota_alerts").fetchone()[0] == 3
    # an unknown organization in the marts is no alert and no error
    assert record_alerts(conn, [quota_row(org="no-such-org", used=999)]) == []


def test_two_builds_racing_record_and_deliver_each_alert_once(settings):
    rows = [
        quota_row(org=org, metric=metric, used=600)
        for org in (ORG, OTHER_ORG)
        for metric in ("analyses", "fixes", "audits")
    ]
    barrier = threading.Barrier(2)
    recorded: list[list[str]] = []

    def build():
        with connect(settings) as own:
            barrier.wait()
            recorded.append(record_alerts(own, rows))

    threads = [threading.Thread(target=build) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(recorded) == 2
    assert sorted(recorded[0] + recorded[1]) == sorted({u for r in recorded for u in r})
    assert len(recorded[0]) + len(recorded[1]) == 12  # 6 quotas × (80, 100), each once

    with AlertReceiver(SECRET) as receiver, connect(settings) as conn:
        enqueue(conn, default_url=True)
        reports = []

        def sender():
            with connect(settings) as own:
                barrier.wait()
                reports.append(deliver_due(own, receiver.url, SECRET))

        threads = [threading.Thread(target=sender) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        ids = [body["id"] for body in receiver.delivered]
        assert len(ids) == 12 and len(set(ids)) == 12  # every alert delivered, none twice
        assert all(r.verified for r in receiver.requests)
        assert sum(r.sent for r in reports) == 12
        assert len(ledger(conn)) == 12


# --- delivery ---------------------------------------------------------------------------------


def test_a_receiver_failing_twice_gets_the_alert_on_the_third_attempt(conn):
    [uid] = record_alerts(conn, [quota_row(used=400)])  # 80 %
    with AlertReceiver(SECRET, fail_first=2) as receiver:
        enqueue(conn, default_url=True)
        report = deliver_due(conn, receiver.url, SECRET, policy=IMMEDIATE)
        assert [r.answered for r in receiver.requests] == [503, 503, 200]
        assert all(r.verified for r in receiver.requests)  # signed with the secret, each time
        assert {r.body["id"] for r in receiver.requests} == {uid}  # the same id every attempt
        assert len(receiver.delivered) == 1
    assert (report.sent, report.retrying, report.failed) == (1, 2, 0)
    assert ledger(conn) == [
        (uid, "default", 1, 503, False),
        (uid, "default", 2, 503, False),
        (uid, "default", 3, 200, True),
    ]
    state = conn.execute(
        "SELECT state, attempts, delivered_at IS NOT NULL, last_error FROM quota_alert_deliveries"
    ).fetchone()
    assert state == ("sent", 3, True, None)
    conn.commit()
    body = receiver.delivered[0]
    assert body["threshold"] == "80" and body["organization"]["slug"] == ORG
    assert body["used"] == 400 and body["quota"] == 500 and body["pct_used"] == 80.0
    assert "80 %" in body["text"]
    # nothing more to send, ever
    assert deliver_due(conn, receiver.url, SECRET, policy=IMMEDIATE).sent == 0


def test_retries_back_off_and_give_up_after_the_last_attempt(conn):
    record_alerts(conn, [quota_row(used=500)])
    policy = RetryPolicy(max_attempts=3)
    with AlertReceiver(SECRET, fail_first=100) as receiver:
        enqueue(conn, default_url=True, now=NOW)
        assert deliver_due(conn, receiver.url, SECRET, policy=policy, now=NOW).retrying == 2
        # 80 and 100: first attempts failed, the next are due a minute later, not before
        assert (
            deliver_due(
                conn, receiver.url, SECRET, policy=policy, now=NOW + timedelta(seconds=59)
            ).retrying
            == 0
        )
        assert (
            deliver_due(
                conn, receiver.url, SECRET, policy=policy, now=NOW + timedelta(seconds=60)
            ).retrying
            == 2
        )
        # then two minutes later, the third and last attempt
        assert (
            deliver_due(
                conn, receiver.url, SECRET, policy=policy, now=NOW + timedelta(seconds=60 + 119)
            ).failed
            == 0
        )
        report = deliver_due(
            conn, receiver.url, SECRET, policy=policy, now=NOW + timedelta(seconds=180)
        )
        assert report.failed == 2 and all(
            "HTTP 503" in e and receiver.url not in e for e in report.errors
        )
        assert (
            deliver_due(
                conn, receiver.url, SECRET, policy=policy, now=NOW + timedelta(days=1)
            ).failed
            == 0
        )
        assert len(receiver.requests) == 6
    assert conn.execute(
        "SELECT array_agg(DISTINCT state), max(attempts) FROM quota_alert_deliveries"
    ).fetchone() == (["failed"], 3)
    assert len(ledger(conn)) == 6
    assert RetryPolicy().delay(1) == timedelta(minutes=1)
    assert RetryPolicy().delay(3) == timedelta(minutes=4)
    assert RetryPolicy().delay(20) == timedelta(hours=1)


def _send_then_die(settings, url):
    """A sender whose process dies after its POST, before it records the attempt."""

    def send(url_, body, headers):
        post(url_, body, headers)
        os._exit(17)

    with connect(settings) as conn:
        deliver_due(conn, url, SECRET, send=send)


def test_a_sender_dying_between_sending_and_recording_leads_to_a_resend_with_the_same_id(
    conn, settings
):
    [uid] = record_alerts(conn, [quota_row(used=410)])
    with AlertReceiver(SECRET) as receiver:
        enqueue(conn, default_url=True)
        # spawned, not forked: a fork of this process (pytest-xdist's threads) may hang
        child = multiprocessing.get_context("spawn").Process(
            target=_send_then_die, args=(settings, receiver.url)
        )
        child.start()
        child.join(120)  # a spawned interpreter imports the package first: slow on a busy machine
        assert child.exitcode == 17
        assert [body["id"] for body in receiver.delivered] == [uid]  # it was sent...
        assert ledger(conn) == []  # ...but never recorded: the transaction died with it
        assert conn.execute("SELECT state, attempts FROM quota_alert_deliveries").fetchone() == (
            "pending",
            0,
        )
        conn.commit()
        assert deliver_due(conn, receiver.url, SECRET).sent == 1
        assert [body["id"] for body in receiver.delivered] == [uid, uid]  # at least once
    assert ledger(conn) == [(uid, "default", 1, 200, True)]


def test_an_organization_endpoint_gets_its_alerts_signed_with_its_own_secret(conn):
    record_alerts(
        conn, [quota_row(used=100, quota=100), quota_row(org=OTHER_ORG, used=100, quota=100)]
    )
    with AlertReceiver(SECRET) as central, AlertReceiver("not known yet") as own:
        own.secret, _ = endpoints.add(conn, ORG, own.url, "alice@odavl.com", SECRET)
        assert own.secret != SECRET
        assert enqueue(conn, default_url=True) == 4 + 2
        assert enqueue(conn, default_url=True) == 0
        assert deliver_due(conn, central.url, SECRET).sent == 6
        assert all(r.verified for r in central.requests + own.requests)
        assert sorted(b["organization"]["slug"] for b in own.delivered) == [ORG, ORG]
        assert len(central.delivered) == 4


def test_alerts_of_a_period_already_over_are_not_sent_to_a_destination_added_later(conn):
    record_alerts(conn, [quota_row(used=450, period_end=NOW - timedelta(seconds=1))])
    assert enqueue(conn, default_url=True) == 0


# --- Dagster: the marts hook and the sensor --------------------------------------------------


def _publish_quota_status(path: Path, rows: list[dict]) -> None:
    with duckdb.connect(str(path)) as marts:
        marts.execute(f"CREATE TABLE quota_status {MART_TABLES['quota_status']}")
        for row in rows:
            marts.execute(
                "INSERT INTO quota_status VALUES (?, 'PRO', ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?)",
                [
                    row["org"],
                    row["period_start"],
                    row["period_end"],
                    row["metric"],
                    row["used"],
                    row["quota"],
                    row["status"],
                    row["projected"],
                    row["projected_exhaustion"],
                    row["as_of"],
                ],
            )


def test_alerts_are_detected_from_the_published_quota_status(settings, conn):
    settings.marts_path.parent.mkdir(parents=True, exist_ok=True)
    _publish_quota_status(
        settings.marts_path,
        [
            quota_row(used=100),
            quota_row(metric="fixes", used=190, quota=200),
            quota_row(
                metric="audits", used=5, quota=100, exhaustion=(NOW + timedelta(days=3)).date()
            ),
        ],
    )
    assert len(record_from_marts(settings)) == 2
    assert record_from_marts(settings) == []
    assert sorted(conn.execute("SELECT metric, threshold FROM quota_alerts").fetchall()) == [
        ("audits", "forecast"),
        ("fixes", "80"),
    ]


def test_the_sensor_sends_when_configured_and_says_why_not_otherwise(settings, conn, monkeypatch):
    from odavl_pipeline.definitions import defs
    from odavl_pipeline.defs.monitoring.quota_alerts import quota_alert_delivery
    from odavl_pipeline.defs.resources import pipeline_resources

    assert defs().resolve_sensor_def("quota_alert_delivery")
    record_alerts(conn, [quota_row(used=480)])
    monkeypatch.delenv("ODAVL_ALERT_WEBHOOK_SECRET", raising=False)
    monkeypatch.delenv("ODAVL_ALERT_WEBHOOK_URL", raising=False)
    with dg.build_sensor_context(resources=pipeline_resources()) as context:
        result = quota_alert_delivery(context)
    assert "ODAVL_ALERT_WEBHOOK_SECRET is not set" in result.skip_message
    assert "recorded" in result.skip_message
    monkeypatch.setenv("ODAVL_ALERT_WEBHOOK_SECRET", SECRET)
    with dg.build_sensor_context(resources=pipeline_resources()) as context:
        result = quota_alert_delivery(context)
    assert "ODAVL_ALERT_WEBHOOK_URL is not set" in result.skip_message
    with AlertReceiver(SECRET) as receiver:
        monkeypatch.setenv("ODAVL_ALERT_WEBHOOK_URL", receiver.url)
        with dg.build_sensor_context(resources=pipeline_resources()) as context:
            result = quota_alert_delivery(context)
        assert result.skip_message.startswith("quota alerts: 1 delivered")
        assert receiver.url not in result.skip_message and SECRET not in result.skip_message
        assert [b["threshold"] for b in receiver.delivered] == ["80"]


# --- the dashboards ---------------------------------------------------------------------------


def test_the_overview_lists_the_organizations_alerts_to_its_members_only(settings, conn):
    from dashlib import data

    record_alerts(conn, [quota_row(used=500), quota_row(org=OTHER_ORG, used=450)])
    data._quota_alerts.clear()
    alice = data.quota_alerts(data.Viewer("alice@odavl.com"), ORG)
    assert sorted(zip(alice["threshold"], alice["state"], alice["delivery"], strict=True)) == [
        ("100", "exceeded", "not sent (no webhook)"),
        ("80", "warning", "not sent (no webhook)"),
    ]
    with pytest.raises(data.AccessDenied):
        data.quota_alerts(data.Viewer("bob@odavl.com"), ORG)
    with pytest.raises(data.AccessDenied):
        data.quota_alerts(data.Viewer("nobody@example.com"), "no-such-org")
    bob = data.quota_alerts(data.Viewer("BOB@odavl.com"), OTHER_ORG)
    assert list(bob["threshold"]) == ["80"]
    assert data.quota_alerts(data.Viewer("alice@odavl.com"), ORG)["uid"].nunique() == 2
