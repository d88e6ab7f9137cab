"""Alert settings an organization sets itself (docs/operations.md, "Quota alerts"): endpoints
with a secret shown once, thresholds of its own, only by its OWNER or ADMIN; through the
functions, the command line as users run it and the Alerts page; the migration that carries the
endpoints of before over, their signatures unchanged. Real PostgreSQL, real HTTP receivers."""

import json
import string
import threading
import time
from datetime import timedelta
from urllib.parse import urlsplit

import psycopg
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from dashlib import data
from odavl_pipeline.alerts import (
    AlertSettingsRefused,
    AlertThresholds,
    alert_uid,
    deliver_due,
    endpoint_secret,
    endpoints,
    enqueue,
    organization_secret,
    record_alerts,
    thresholds,
)
from odavl_pipeline.billing.quota import quota_status
from odavl_pipeline.db import migrate
from odavl_pipeline.db.server import connect, libpq_url
from odavl_pipeline.settings import Settings

from .alert_receiver import AlertReceiver
from .clocks import instant
from .commands import cli
from .dashboards_fixtures import (
    ALICE,
    DEV,
    MAYA,
    STAFF,
    VERA,
    environment,
    main_module_kept,
    no_exceptions,
    signed_in_app,
    texts,
)
from .records import ORG, OTHER_ORG

SECRET = "whsec_test_alert_settings"
NOW = instant("2026-11-20T12:00:00Z")
START, END = NOW - timedelta(days=10), NOW + timedelta(days=20)
OWNER, ADMIN_ELSEWHERE = "alice@odavl.com", "bob@odavl.com"  # the seeds': ORG's, OTHER_ORG's
DEVELOPER, VIEWER = "dev@example.com", "viewer@example.com"
WITH_SECRET = {"ODAVL_ALERT_WEBHOOK_SECRET": SECRET}


def quota_row(org=ORG, metric="analyses", used=450, quota=500, **fields) -> dict:
    return {
        "org": org,
        "period_start": START,
        "period_end": END,
        "metric": metric,
        "used": used,
        "quota": quota,
        "status": quota_status(used, quota),
        "projected": used * 3,
        "projected_exhaustion": None,
        "as_of": NOW,
        **fields,
    }


def add_member(conn, email: str, role: str, org: str = ORG) -> None:
    conn.execute("INSERT INTO users (email, name) VALUES (%s, %s)", (email, email.split("@")[0]))
    conn.execute(
        "INSERT INTO organization_members (organization_id, user_id, role) "
        "SELECT o.id, u.id, %s FROM organizations AS o, users AS u "
        "WHERE o.slug = %s AND u.email = %s",
        (role, org, email),
    )
    conn.commit()


def organization_id(conn, org: str = ORG) -> int:
    return conn.execute("SELECT id FROM organizations WHERE slug = %s", (org,)).fetchone()[0]


def stored_text(conn) -> str:
    """Everything the endpoints' and thresholds' tables hold, as text."""
    with conn.transaction():
        rows = conn.execute(
            "SELECT coalesce(json_agg(e)::text, '') || coalesce((SELECT json_agg(t)::text "
            "FROM organization_alert_thresholds AS t), '') FROM organization_alert_endpoints AS e"
        ).fetchone()
    return rows[0]


# --- the migration ------------------------------------------------------------------------


@pytest.fixture
def database_at_0019(server_url, tmp_path, monkeypatch):
    """Settings on an empty database migrated to 0019, the revision before alert settings."""
    name = "odavl_alert_settings_migration"
    admin = libpq_url(server_url.set(database="postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    url = server_url.set(database=name)
    migrate.upgrade(url, "0019")
    environment = {
        "ODAVL_HOME": str(tmp_path / "home"),
        "ODAVL_DATABASE_URL": url.render_as_string(hide_password=False),
    }
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    yield url, Settings.from_env(environment)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.mark.clock(NOW)
def test_the_migration_carries_endpoints_over_and_their_receivers_keep_verifying(
    database_at_0019,
):
    url, settings = database_at_0019
    with AlertReceiver("not known yet") as before, connect(settings) as conn:
        # the schema of 0007: one endpoint per organization, inserted with SQL
        conn.execute(
            "INSERT INTO organizations (name, slug, tier, status) "
            "VALUES ('Old Org', 'old-org', 'PRO', 'ACTIVE'), ('Gone Org', 'gone-org', 'PRO', "
            "'ACTIVE')"
        )
        org_id, gone_id = organization_id(conn, "old-org"), organization_id(conn, "gone-org")
        conn.execute(
            "INSERT INTO organization_alert_endpoints (organization_id, url) VALUES (%s, %s)",
            (org_id, before.url),
        )
        for org, threshold in ((org_id, "80"), (gone_id, "100")):
            conn.execute(
                "INSERT INTO quota_alerts (uid, organization_id, period_start, period_end, "
                "metric, threshold, used, quota, status, projected, as_of) VALUES "
                "(%s, %s, %s, %s, 'analyses', %s, 450, 500, 'warning', 900, %s)",
                (f"qa_{org}", org, START, END, threshold, NOW),
            )
        # a delivery to each organization's endpoint: gone-org's endpoint row was deleted since
        conn.execute(
            "INSERT INTO quota_alert_deliveries (alert_id, destination, state, attempts) "
            "SELECT id, 'organization', 'pending', 0 FROM quota_alerts"
        )
        conn.commit()

    migrate.upgrade(url)

    with AlertReceiver(organization_secret(SECRET, org_id)) as receiver, connect(settings) as conn:
        [carried] = endpoints.listing(conn, "old-org")
        assert carried["uid"] == "ep_00000001" and carried["url"] == before.url
        assert carried["created_by"] is None and carried["signed_as_organization"]
        assert conn.execute(
            "SELECT a.uid, d.endpoint_id IS NOT NULL FROM quota_alert_deliveries AS d "
            "JOIN quota_alerts AS a ON a.id = d.alert_id ORDER BY a.uid"
        ).fetchall() == sorted([(f"qa_{org_id}", True), (f"qa_{gone_id}", False)])
        conn.execute(
            "UPDATE organization_alert_endpoints SET url = %s", (receiver.url,)
        )  # the same endpoint, now at this receiver
        conn.commit()
        # its receiver still verifies with the organization's secret: the alert and a test
        report = deliver_due(conn, None, SECRET)
        assert (report.sent, report.failed) == (1, 1)
        assert any("no URL configured" in error for error in report.errors)
        assert endpoints.send_test(conn, "old-org", "ep_00000001", SECRET).delivered
        assert [r.body["id"] for r in receiver.requests][0] == f"qa_{org_id}"
        assert receiver.requests[1].body["type"] == "quota.test"
        assert len(receiver.requests) == 2 and all(r.verified for r in receiver.requests)
        # any percentage is a threshold now; nothing else is
        for threshold, known in (("250", True), ("1000", True), ("0", False), ("1001", False)):
            try:
                with conn.transaction():
                    conn.execute(
                        "INSERT INTO quota_alerts (uid, organization_id, period_start, period_end, "
                        "metric, threshold, used, quota, status, projected, as_of) VALUES "
                        "(%s, %s, %s, %s, 'fixes', %s, 1, 1, 'exceeded', 1, %s)",
                        (f"qa_{threshold}", org_id, START, END, threshold, NOW),
                    )
                assert known, threshold
            except psycopg.errors.CheckViolation:
                assert not known, threshold
        conn.execute("INSERT INTO users (email, name) VALUES (%s, 'Owner')", (OWNER,))
        conn.execute(
            "INSERT INTO organization_members (organization_id, user_id, role) "
            "SELECT %s, id, 'OWNER' FROM users WHERE email = %s",
            (org_id, OWNER),
        )
        conn.commit()
        endpoints.add(conn, "old-org", "https://example.com/second", OWNER, SECRET)
        thresholds.set_thresholds(conn, "old-org", OWNER, percents=[50])

    # down: one endpoint per organization (the one carried over), the alerts 0007 knew
    migrate.downgrade(url, "0019")
    with connect(settings) as conn:
        assert conn.execute(
            "SELECT organization_id, url FROM organization_alert_endpoints"
        ).fetchall() == [(org_id, receiver.url)]
        assert sorted(t for (t,) in conn.execute("SELECT threshold FROM quota_alerts")) == [
            "100",
            "80",
        ]
        assert conn.execute("SELECT to_regclass('organization_alert_thresholds')").fetchone() == (
            None,
        )
    migrate.upgrade(url)


# --- the functions ------------------------------------------------------------------------


@pytest.mark.clock(NOW)
def test_custom_thresholds_alert_once_each_and_reach_each_endpoint_once(conn):
    thresholds.set_thresholds(conn, ORG, OWNER, percents=[150, 50, 90], forecast=False)
    with AlertReceiver("?") as first, AlertReceiver("?") as second:
        first.secret, _ = endpoints.add(conn, ORG, first.url, OWNER, SECRET)
        second.secret, row = endpoints.add(conn, ORG, second.url, OWNER.upper(), SECRET)
        assert first.secret != second.secret and row["created_by"] == OWNER

        soon = (NOW + timedelta(days=3)).date()  # at risk: no alert, the forecast is off
        rows = [quota_row(used=460), quota_row(metric="fixes", used=5, projected_exhaustion=soon)]
        rows.append(quota_row(org=OTHER_ORG, used=410))  # the defaults: 80
        assert sorted(record_alerts(conn, rows)) == sorted(
            [
                alert_uid(ORG, START, "analyses", "50"),
                alert_uid(ORG, START, "analyses", "90"),
                alert_uid(OTHER_ORG, START, "analyses", "80"),
            ]
        )
        assert record_alerts(conn, rows) == []  # a rerun: nothing new
        [past_150] = record_alerts(conn, [quota_row(used=800)])
        assert past_150 == alert_uid(ORG, START, "analyses", "150")

        assert enqueue(conn, default_url=False) == 3 * 2  # ORG's three alerts, two endpoints
        assert enqueue(conn, default_url=False) == 0
        assert deliver_due(conn, None, SECRET).sent == 6
        for receiver in (first, second):
            assert all(r.verified for r in receiver.requests)
            assert sorted(body["threshold"] for body in receiver.delivered) == ["150", "50", "90"]
        [body] = [b for b in first.delivered if b["threshold"] == "150"]
        assert body["type"] == "quota.threshold" and "past 150 %" in body["text"]

        # a removed endpoint: its pending deliveries fail at once, nothing more goes to it
        record_alerts(conn, [quota_row(metric="audits", used=80, quota=100)])  # 50
        assert enqueue(conn, default_url=False) == 2
        uid = endpoints.listing(conn, ORG)[1]["uid"]
        endpoints.remove(conn, ORG, uid, OWNER)
        assert deliver_due(conn, None, SECRET).sent == 1
        assert len(second.requests) == 3 and len(first.requests) == 4
        [removed] = [r for r in endpoints.listing(conn, ORG, removed=True) if r["uid"] == uid]
        assert removed["state"] == "removed" and removed["removed_by"] == OWNER
        assert removed["last_delivery"] == "failed (the endpoint was removed)"
        assert [r["last_delivery"][:4] for r in endpoints.listing(conn, ORG)] == ["sent"]


def test_a_secret_is_shown_once_and_stored_nowhere(conn):
    secret, row = endpoints.add(conn, ORG, "https://hooks.example.com/a?token=x", OWNER, SECRET)
    salt = conn.execute(
        "SELECT secret_salt FROM organization_alert_endpoints WHERE uid = %s", (row["uid"],)
    ).fetchone()[0]
    assert secret == endpoint_secret(SECRET, salt) and secret.startswith("whsec_")
    assert secret not in stored_text(conn) and secret[6:] not in stored_text(conn)
    assert secret not in json.dumps(endpoints.listing(conn, ORG, removed=True), default=str)
    # the same URL twice, or more endpoints than allowed, is refused in one line
    with pytest.raises(AlertSettingsRefused, match="already has this URL as endpoint ep_"):
        endpoints.add(conn, ORG, "https://hooks.example.com/a?token=x", OWNER, SECRET)
    for n in range(endpoints.MOST_ENDPOINTS - 1):
        endpoints.add(conn, ORG, f"https://hooks.example.com/{n}", OWNER, SECRET)
    with pytest.raises(AlertSettingsRefused, match="the most it may have: remove one first"):
        endpoints.add(conn, ORG, "https://hooks.example.com/more", OWNER, SECRET)
    with pytest.raises(AlertSettingsRefused, match="ODAVL_ALERT_WEBHOOK_SECRET is not set"):
        endpoints.add(conn, OTHER_ORG, "https://hooks.example.com/b", ADMIN_ELSEWHERE, None)
    assert endpoints.listing(conn, OTHER_ORG) == []


def test_only_an_owner_or_admin_manages_alert_settings(conn):
    add_member(conn, DEVELOPER, "DEVELOPER")
    add_member(conn, VIEWER, "VIEWER")
    _, row = endpoints.add(conn, ORG, "https://hooks.example.com/own", OWNER, SECRET)
    uid = row["uid"]
    for someone in (DEVELOPER, VIEWER, ADMIN_ELSEWHERE, "nobody@example.com", "%"):
        for attempt in (
            lambda someone=someone: endpoints.add(
                conn, ORG, "https://hooks.example.com/x", someone, SECRET
            ),
            lambda someone=someone: endpoints.remove(conn, ORG, uid, someone),
            lambda someone=someone: endpoints.listing(conn, ORG, by=someone),
            lambda someone=someone: endpoints.send_test(conn, ORG, uid, SECRET, by=someone),
            lambda someone=someone: thresholds.show(conn, ORG, by=someone),
            lambda someone=someone: thresholds.set_thresholds(conn, ORG, someone, percents=[10]),
        ):
            with pytest.raises(AlertSettingsRefused, match="is not an OWNER or ADMIN of"):
                attempt()
    assert [r["uid"] for r in endpoints.listing(conn, ORG)] == [uid]
    assert thresholds.show(conn, ORG).updated_at is None
    # an ADMIN manages their own organization's; nobody an organization that does not exist
    settled = thresholds.set_thresholds(conn, OTHER_ORG, ADMIN_ELSEWHERE, forecast=False)
    assert settled.thresholds == AlertThresholds((80, 100), False)
    assert settled.updated_by == ADMIN_ELSEWHERE
    with pytest.raises(AlertSettingsRefused, match="no organization has the slug 'nope'"):
        thresholds.show(conn, "nope")


def test_a_role_taken_away_while_a_change_waits_refuses_the_change(settings, conn):
    """The role is checked, and kept locked, in the transaction that makes the change."""
    with connect(settings) as demoting:
        demoting.execute(
            "UPDATE organization_members SET role = 'VIEWER' WHERE user_id = "
            "(SELECT id FROM users WHERE email = %s)",
            (OWNER,),
        )  # not committed yet
        outcome = []

        def change():
            with connect(settings) as own:
                try:
                    endpoints.add(own, ORG, "https://hooks.example.com/late", OWNER, SECRET)
                    outcome.append("added")
                except AlertSettingsRefused as refused:
                    outcome.append(str(refused))

        worker = threading.Thread(target=change)
        worker.start()
        deadline = time.monotonic() + 20
        while not conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND datname = current_database()"
        ).fetchone()[0]:
            conn.rollback()
            assert time.monotonic() < deadline, "the change never waited for the demotion"
            time.sleep(0.05)
        demoting.commit()
        worker.join(20)
    assert len(outcome) == 1 and "is not an OWNER or ADMIN" in outcome[0]
    assert endpoints.listing(conn, ORG) == []


def test_thresholds_default_keep_what_is_not_given_and_refuse_what_is_out_of_bounds(conn):
    assert thresholds.show(conn, ORG).thresholds == AlertThresholds((80, 100), True)
    thresholds.set_thresholds(conn, ORG, OWNER, percents=[100, 50, 50])
    assert thresholds.show(conn, ORG).thresholds == AlertThresholds((50, 100), True)
    thresholds.set_thresholds(conn, ORG, OWNER, forecast=False)
    assert thresholds.show(conn, ORG).thresholds == AlertThresholds((50, 100), False)
    thresholds.set_thresholds(conn, ORG, OWNER, percents=[])
    assert thresholds.show(conn, ORG).thresholds == AlertThresholds((), False)
    assert record_alerts(conn, [quota_row(used=10**6)]) == []  # nothing left to alert on
    for percents, why in (
        ([0], "no percentage a threshold takes"),
        ([1001], "no percentage a threshold takes"),
        ([True], "no percentage a threshold takes"),
        (list(range(1, 12)), "at most 10"),
    ):
        with pytest.raises(AlertSettingsRefused, match=why):
            thresholds.set_thresholds(conn, ORG, OWNER, percents=percents)
    # the database holds the same bounds, whoever writes
    for percents in ([0], [1001], list(range(1, 12)), [None]):
        with pytest.raises(psycopg.errors.CheckViolation), conn.transaction():
            conn.execute(
                "UPDATE organization_alert_thresholds SET percents = %s::int[]", (percents,)
            )


@hypothesis_settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(-5, 1100) | st.booleans(), max_size=14),
    st.text(alphabet="0123456789, %none", max_size=40),
)
def test_any_list_of_percentages_is_taken_sorted_or_refused_in_one_line(percents, text):
    try:
        chosen = thresholds.checked(percents, True)
    except AlertSettingsRefused as refused:
        assert "\n" not in str(refused)
        assert (
            any(isinstance(p, bool) or not 1 <= p <= 1000 for p in percents)
            or len(set(percents)) > 10
        )
    else:
        assert list(chosen.percents) == sorted(set(percents))
        assert thresholds.parse_percents(",".join(map(str, chosen.percents)) or "none") == (
            chosen.percents
        )
    try:
        parsed = thresholds.parse_percents(text)
    except AlertSettingsRefused as refused:
        assert "\n" not in str(refused)
    else:
        assert list(parsed) == sorted(set(parsed)) and len(parsed) <= 10
        assert all(1 <= p <= 1000 for p in parsed)


# --- URLs ---------------------------------------------------------------------------------

HOSTILE_URLS = {
    "": "the URL is empty",
    "javascript:alert(1)": "must start with https:// or http://",
    "file:///etc/passwd": "must start with https:// or http://",
    "ftp://example.com/x": "must start with https:// or http://",
    "https:example.com": "must start with https:// or http://",
    "http://user:password@example.com/": "holds credentials",
    "https://@example.com/": "holds credentials",
    "https://token@hooks.example.com": "holds credentials",
    "http://exa mple.com/": "a space, a control or a non-ASCII character",
    "http://example.com/\r\nX-Injected: 1": "a space, a control or a non-ASCII character",
    "http://bücher.example/": "a space, a control or a non-ASCII character",
    "http://": "names no host",
    "https://:443/x": "names no host",
    "http://[::1/": "is no host name or IP address",
    "http://[::g]/": "is no host name or IP address",
    "http://ex..ample.com/": "is no host name or IP address",
    "http://-example.com/": "is no host name or IP address",
    "http://example.com\\@evil.example/": "holds credentials",
    "http://example.com:99999/": "port '99999' is no number from 1 to 65535",
    "http://example.com:0/": "port '0' is no number from 1 to 65535",
    "http://example.com:/": "port '' is no number from 1 to 65535",
    "http://example.com/" + "a" * 2100: "at most 2,048",
}
GOOD_URLS = (
    "https://hooks.slack.com/services/T000/B000/XXXX",
    "HTTP://EXAMPLE.COM",
    "http://127.0.0.1:8080/hook?token=abc#part",
    "https://[::1]:8443/hooks",
    "https://xn--bcher-kva.example/odavl",
    "https://example.com./a",
)


def test_hostile_urls_are_refused_saying_what_is_wrong_and_good_ones_kept():
    for url, why in HOSTILE_URLS.items():
        with pytest.raises(AlertSettingsRefused, match=why.replace("(", r"\(")) as refused:
            endpoints.checked_url(url)
        assert "\n" not in str(refused.value) and len(str(refused.value)) < 200, url
    for url in GOOD_URLS:
        assert endpoints.checked_url(f"  {url} ") == url


@hypothesis_settings(max_examples=400, deadline=None)
@given(
    st.text(max_size=80)
    | st.builds(
        lambda scheme, authority, rest: f"{scheme}://{authority}{rest}",
        st.sampled_from(["http", "https", "HTTPS", "ftp", "", "javascript"]),
        st.text(alphabet=string.ascii_letters + string.digits + ".-:@[]%_", max_size=30),
        st.text(alphabet=string.printable, max_size=30),
    )
)
def test_any_text_is_a_url_with_a_host_and_no_credentials_or_refused_in_one_line(text):
    try:
        url = endpoints.checked_url(text)
    except AlertSettingsRefused as refused:
        assert "\n" not in str(refused) and str(refused)
        return
    parts = urlsplit(url)
    assert url == text.strip() and len(url) <= endpoints.MAX_URL_LENGTH
    assert parts.scheme.lower() in ("http", "https") and parts.hostname
    assert parts.username is None and parts.password is None
    assert parts.port is None or 1 <= parts.port <= 65535
    assert all(33 <= ord(c) <= 126 for c in url)


# --- the command line -----------------------------------------------------------------------


def test_endpoints_are_added_listed_tested_and_removed_from_the_command_line(settings, conn):
    add_member(conn, DEVELOPER, "DEVELOPER")
    with AlertReceiver("not known yet") as receiver:
        added = cli("alerts", "endpoints", "add", ORG, receiver.url, "--by", OWNER, env=WITH_SECRET)
        lines = added.stdout.strip().splitlines()
        secret, uid = lines[-1], lines[0].split()[1]
        assert lines[0] == f"endpoint {uid} of {ORG} added by {OWNER}: {receiver.url}"
        assert secret.startswith("whsec_") and secret != organization_secret(
            SECRET, organization_id(conn)
        )
        assert secret not in stored_text(conn) and added.stderr == ""
        receiver.secret = secret  # the receiver is configured with the secret printed

        [listed] = json.loads(cli("alerts", "endpoints", "list", ORG, "--json").stdout)
        assert listed["uid"] == uid and listed["url"] == receiver.url
        assert (listed["state"], listed["created_by"], listed["last_delivery"]) == (
            "active",
            OWNER,
            None,
        )
        table = cli("alerts", "endpoints", "list", ORG).stdout
        assert uid in table and "none yet" in table and secret not in table

        tested = cli("alerts", "endpoints", "test", ORG, uid, env=WITH_SECRET)
        assert tested.stdout.strip() == f"endpoint {uid} took the signed test alert: HTTP 200"
        [request] = receiver.requests
        assert request.verified and request.body["type"] == "quota.test"
        assert request.body["id"].startswith("qt_") and request.body["endpoint"] == uid
        assert conn.execute(
            "SELECT (SELECT count(*) FROM quota_alerts) + (SELECT count(*) FROM "
            "quota_alert_deliveries) + (SELECT count(*) FROM quota_alert_attempts)"
        ).fetchone() == (0,)  # a test is recorded nowhere near the alerts' ledger
        conn.commit()
        # signed with another master secret, the receiver refuses it: the answer is the error
        wrong = cli(
            "alerts", "endpoints", "test", ORG, uid, check=False,
            env={"ODAVL_ALERT_WEBHOOK_SECRET": "whsec_another"},
        )  # fmt: skip
        assert wrong.returncode == 1 and wrong.stdout == ""
        assert (
            wrong.stderr == f"error: endpoint {uid} did not take the signed test alert: HTTP 400\n"
        )

    refused = cli("alerts", "endpoints", "remove", ORG, uid, "--by", DEVELOPER, check=False)
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1
    assert "is not an OWNER or ADMIN of odavl-test-org" in refused.stderr
    usage = cli("alerts", "endpoints", "remove", ORG, uid, check=False)
    assert usage.returncode == 2 and "--by" in usage.stderr
    removed = cli("alerts", "endpoints", "remove", ORG, uid, "--by", OWNER)
    assert removed.stdout.startswith(f"endpoint {uid} of {ORG} removed by {OWNER} at ")
    assert "has no alert endpoints" in cli("alerts", "endpoints", "list", ORG).stdout
    [gone] = json.loads(cli("alerts", "endpoints", "list", ORG, "--all", "--json").stdout)
    assert (gone["state"], gone["removed_by"]) == ("removed", OWNER)
    for again in (
        ("remove", ORG, uid, "--by", OWNER),
        ("test", ORG, uid),
    ):
        failed = cli("alerts", "endpoints", *again, check=False, env=WITH_SECRET)
        assert failed.returncode == 1 and f"endpoint {uid} of {ORG} was removed on" in failed.stderr


def test_the_command_line_refuses_in_one_line(settings):
    for args, env, why in (
        (("add", ORG, "https://hooks.example.com/x", "--by", OWNER), {}, "is not set"),
        (("add", ORG, "ftp://example.com/x", "--by", OWNER), WITH_SECRET, "https:// or http://"),
        (("add", ORG, "http://u:p@example.com/", "--by", OWNER), WITH_SECRET, "credentials"),
        (("add", "no-such-org", "https://x.example/", "--by", OWNER), WITH_SECRET, "'no-such-org'"),
        (("test", ORG, "ep_nothing"), WITH_SECRET, "has no endpoint 'ep_nothing'"),
    ):
        environment = {"ODAVL_ALERT_WEBHOOK_SECRET": None, **env}
        result = cli("alerts", "endpoints", *args, check=False, env=environment)
        assert result.returncode == 1, args
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, args
        assert why in result.stderr and "Traceback" not in result.stderr, args
    assert json.loads(cli("alerts", "endpoints", "list", ORG, "--json").stdout) == []


def test_thresholds_are_shown_and_set_from_the_command_line(settings):
    shown = json.loads(cli("alerts", "thresholds", "show", ORG, "--json").stdout)
    assert shown == {
        "org": ORG,
        "percents": [80, 100],
        "forecast": True,
        "default": True,
        "updated_at": None,
        "updated_by": None,
    }
    assert (
        "80 %, 100 %; forecast on (the defaults" in cli("alerts", "thresholds", "show", ORG).stdout
    )
    out = cli(
        "alerts", "thresholds", "set", ORG, "--percent", "100, 50%,80", "--forecast", "off",
        "--by", OWNER,
    ).stdout  # fmt: skip
    assert out.startswith(f"{ORG}: 50 %, 80 %, 100 %; forecast off (set by {OWNER} at ")
    cli("alerts", "thresholds", "set", ORG, "--forecast", "on", "--by", OWNER)
    shown = json.loads(cli("alerts", "thresholds", "show", ORG, "--json").stdout)
    assert (shown["percents"], shown["forecast"], shown["default"]) == ([50, 80, 100], True, False)
    for args in (
        ("--by", OWNER),  # nothing to set
        ("--percent", "eighty", "--by", OWNER),
        ("--percent", "0", "--by", OWNER),
        ("--percent", ",".join(map(str, range(1, 12))), "--by", OWNER),
        ("--forecast", "maybe", "--by", OWNER),
    ):
        result = cli("alerts", "thresholds", "set", ORG, *args, check=False)
        assert result.returncode == 2 and "Traceback" not in result.stderr, args
    refused = cli(
        "alerts", "thresholds", "set", ORG, "--percent", "10", "--by", ADMIN_ELSEWHERE, check=False
    )
    assert refused.returncode == 1 and "is not an OWNER or ADMIN" in refused.stderr


# --- the Alerts page ------------------------------------------------------------------------


@pytest.fixture
def dashboards(marts, monkeypatch) -> Settings:
    for key, value in {**environment(marts), **WITH_SECRET}.items():
        monkeypatch.setenv(key, value)
    with main_module_kept():
        yield marts


def button(at, label: str):
    return next(b for b in at.button if b.label == label)


def test_an_owner_adds_tests_and_removes_an_endpoint_and_sets_thresholds_on_the_page(dashboards):
    at = no_exceptions(signed_in_app(ALICE).switch_page("views/alerts.py").run())
    assert at.title[0].value == "Alerts" and "No alert endpoints yet" in texts(at)
    assert "80 %, 100 %; forecast on; the defaults" in texts(at)

    at.text_input(key="alerts.url").set_value("ftp://example.com/x")
    no_exceptions(button(at, "Add endpoint").click().run())
    assert "the URL must start with https:// or http://" in [e.value for e in at.error]

    with AlertReceiver("not known yet") as receiver:
        at.text_input(key="alerts.url").set_value(receiver.url)
        no_exceptions(button(at, "Add endpoint").click().run())
        [secret] = [code.value for code in at.code]
        assert secret.startswith("whsec_") and "shown this once" in texts(at)
        with connect(dashboards) as conn:
            assert secret not in stored_text(conn)
            [row] = endpoints.listing(conn, ORG)
        assert (row["url"], row["created_by"]) == (receiver.url, ALICE.email)
        [table] = [t.value for t in at.dataframe]
        assert list(table["url"]) == [receiver.url]
        receiver.secret = secret

        no_exceptions(at.run())  # the next run: the secret is never shown again
        assert not at.code and secret not in texts(at)

        no_exceptions(button(at, "Send a test alert").click().run())
        assert f"{row['uid']} took the signed test alert: HTTP 200" in [s.value for s in at.success]
        [request] = receiver.requests
        assert request.verified and request.body["type"] == "quota.test"

    at.multiselect(key="alerts.percents").set_value([50, 80, 100, 120])
    at.toggle(key="alerts.forecast").set_value(False)
    no_exceptions(button(at, "Save thresholds").click().run())
    assert "Thresholds saved: 50 %, 80 %, 100 %, 120 %; forecast off." in texts(at)
    with connect(dashboards) as conn:
        assert thresholds.show(conn, ORG).thresholds == AlertThresholds((50, 80, 100, 120), False)

    assert button(at, "Remove endpoint").disabled  # not before it is confirmed
    no_exceptions(at.checkbox(key="alerts.confirm removal").check().run())
    no_exceptions(button(at, "Remove endpoint").click().run())
    assert f"Endpoint {row['uid']} removed" in texts(at)
    assert "No alert endpoints yet" in texts(at)
    with connect(dashboards) as conn:
        assert endpoints.listing(conn, ORG) == []
        thresholds.set_thresholds(conn, ORG, ALICE.email, percents=[80, 100], forecast=True)


@pytest.mark.parametrize("person", [VERA, DEV, STAFF], ids=["viewer", "developer", "staff"])
def test_nobody_but_an_owner_or_admin_sees_the_page_or_gets_anything_from_its_address(
    dashboards, person
):
    # the menu lists the page for whom app.py's `may_change` allows: OWNER and ADMIN only
    assert not data.may_change(data.Viewer(person.email), ORG)
    assert data.may_change(data.Viewer(ALICE.email), ORG)
    at = no_exceptions(signed_in_app(person, {"org": ORG}))
    assert at.query_params["org"] == ORG
    shown = texts(no_exceptions(at.switch_page("views/alerts.py").run()))  # its address
    assert "The Alerts page is for the owners and admins of odavl-test-org" in shown
    assert [b.label for b in at.button] == ["Sign out"] and not at.text_input and not at.code


def test_an_owner_of_one_organization_sees_only_its_alerts_settings(dashboards):
    at = no_exceptions(signed_in_app(MAYA, {"org": OTHER_ORG}).switch_page("views/alerts.py").run())
    assert "The Alerts page is for the owners and admins of enterprise-corp" in texts(at)


def test_the_overview_names_any_threshold_as_a_percentage(dashboards):
    with connect(dashboards) as conn:
        thresholds.set_thresholds(conn, ORG, ALICE.email, percents=[5, 250], forecast=False)
        record_alerts(conn, [quota_row(used=2_000, quota=500)])
    data._quota_alerts.clear()
    try:
        at = no_exceptions(signed_in_app(ALICE))
        [alerts] = [t.value for t in at.dataframe if "threshold" in t.value.columns]
        assert sorted(zip(alerts["threshold"], alerts["state"], strict=True)) == [
            ("250 %", "exceeded"),
            ("5 %", "ok"),
        ]
    finally:
        with connect(dashboards) as conn:
            conn.execute("DELETE FROM quota_alerts")
            thresholds.set_thresholds(conn, ORG, ALICE.email, percents=[80, 100], forecast=True)
        data._quota_alerts.clear()
