"""Quota over HTTP, and what every request of the API shares across its processes: a key's
rate, its revocation, its last use (CONTRACT.md section 9)."""

import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from odavl_pipeline.api import keys
from odavl_pipeline.api.app import ApiError, quota_check
from odavl_pipeline.billing.catalogue import QUOTA_METRICS
from odavl_pipeline.db.server import connect
from odavl_pipeline.ingest.run import ingest_days
from odavl_pipeline.marts.build import refresh_marts
from odavl_pipeline.settings import Settings

from .api_server import api_server
from .database_relay import DatabaseRelay
from .records import ORG, OTHER_ORG, usage
from .test_api_http import call

pytestmark = pytest.mark.clock("2026-11-20T12:00:00Z")


@pytest.fixture
def api(settings, tmp_path):
    with api_server(settings, tmp_path / "api.log") as base:
        yield base


def new_key(settings, email: str, *scopes: str) -> str:
    with connect(settings) as conn:
        return keys.create(conn, email, "test", list(scopes))[0]


def add_member(settings, email: str, org: str, role: str) -> None:
    with connect(settings) as conn:
        conn.execute(
            "INSERT INTO organization_members (organization_id, user_id, role) "
            "SELECT o.id, u.id, %s FROM organizations AS o, users AS u "
            "WHERE o.slug = %s AND u.email = %s",
            (role, org, email),
        )


def check(base, key, org, metric, quantity):
    body = json.dumps({"metric": metric, "quantity": quantity}).encode()
    return call(base, "POST", f"/v1/organizations/{org}/quota/check", body, key)


def test_quota_counts_what_was_just_sent_on_top_of_the_last_build(settings, api):
    writer = new_key(settings, "alice@odavl.com", "usage:write")
    reader = new_key(settings, "alice@odavl.com", "quota:read")
    sent = [usage("q-1", occurred_at="2026-11-02T08:00:00Z", quantity=200)]
    assert call(api, "POST", "/v1/usage-events", json.dumps(sent).encode(), writer)[0] == 200
    refresh_marts(settings)
    sent = [usage("q-2", occurred_at="2026-11-20T11:00:00Z", quantity=250)]
    assert call(api, "POST", "/v1/usage-events", json.dumps(sent).encode(), writer)[0] == 200

    status, quota, _ = call(api, "GET", f"/v1/organizations/{ORG}/quota", key=reader)
    assert status == 200
    assert (quota["org"], quota["tier"], quota["period_start"], quota["period_end"]) == (
        ORG,
        "PRO",
        "2026-11-01T00:00:00+00:00",
        "2026-12-01T00:00:00+00:00",
    )
    analyses = quota["metrics"]["analyses"]
    assert {k: analyses[k] for k in ("used", "quota", "remaining", "status")} == {
        "used": 450,
        "quota": 500,
        "remaining": 50,
        "status": "warning",
    }
    assert analyses["projected"] > 450 and analyses["projected_exhaustion"] is not None
    assert set(quota["metrics"]) == {"analyses", "fixes", "audits"}

    # allowed exactly while used + quantity <= quota; a check records nothing
    assert check(api, reader, ORG, "analyses", 50)[:2] == (
        200,
        {"allowed": True, "used": 450, "quota": 500, "remaining": 50},
    )
    assert check(api, reader, ORG, "analyses", 51)[1]["allowed"] is False
    assert check(api, reader, ORG, "fixes", 0)[1] == {
        "allowed": True,
        "used": 0,
        "quota": 200,
        "remaining": 200,
    }
    refresh_marts(settings)  # the next build publishes the same figure
    status, again, _ = call(api, "GET", f"/v1/organizations/{ORG}/quota", key=reader)
    assert again["metrics"]["analyses"]["used"] == 450


def test_an_organization_the_key_may_not_read_is_one_that_does_not_exist(settings, api):
    reader = new_key(settings, "alice@odavl.com", "quota:read")
    theirs = call(api, "GET", f"/v1/organizations/{OTHER_ORG}/quota", key=reader)
    nobodys = call(api, "GET", "/v1/organizations/no-such-org/quota", key=reader)
    assert theirs[0] == nobodys[0] == 404
    assert json.dumps(theirs[1]).replace(OTHER_ORG, "X") == json.dumps(nobodys[1]).replace(
        "no-such-org", "X"
    )
    assert check(api, reader, OTHER_ORG, "analyses", 1)[0] == 404
    # a VIEWER reads quota, and cannot send records; a DEVELOPER (the contract's MEMBER) can
    add_member(settings, "alice@odavl.com", OTHER_ORG, "VIEWER")
    assert call(api, "GET", f"/v1/organizations/{OTHER_ORG}/quota", key=reader)[0] == 200
    writer = new_key(settings, "alice@odavl.com", "usage:write")
    sent = json.dumps(usage("v-1", org=OTHER_ORG)).encode()
    answer = call(api, "POST", "/v1/usage-events", sent, writer)[1]
    assert answer["results"][0]["reason"] == "unknown_org"
    with connect(settings) as conn:
        conn.execute("UPDATE organization_members SET role = 'DEVELOPER' WHERE role = 'VIEWER'")
    answer = call(api, "POST", "/v1/usage-events", sent, writer)[1]
    assert answer["results"][0]["status"] == "accepted"


BAD_CHECKS = [
    (b'{"metric": "analyses", "quantity": -1}', "application/json", 400),
    (b'{"metric": "analyses", "quantity": 1.5}', "application/json", 400),
    (b'{"metric": "analyses", "quantity": true}', "application/json", 400),
    (b'{"metric": "analyses", "quantity": 9223372036854775808}', "application/json", 400),
    (b'{"metric": "api_calls", "quantity": 1}', "application/json", 400),
    (b'{"metric": ["analyses"], "quantity": 1}', "application/json", 400),
    (b'["analyses", 1]', "application/json", 400),
    (b"{", "application/json", 400),
    (b'{"metric": "analyses", "quantity": 1}', "text/plain", 415),
]


def test_quota_refusals_say_why(settings, api):
    reader = new_key(settings, "alice@odavl.com", "quota:read")
    writer = new_key(settings, "alice@odavl.com", "usage:write")
    path = f"/v1/organizations/{ORG}/quota"
    for body, content_type, expected in BAD_CHECKS:
        status, answer, _ = call(api, "POST", f"{path}/check", body, reader, content_type)
        assert status == expected and set(answer) == {"error", "detail"}, (body, answer)
    assert call(api, "GET", path, key=writer)[:2] == (
        403,
        {"error": "forbidden", "detail": "the key lacks the scope 'quota:read'"},
    )
    status, _, headers = call(api, "GET", path)
    assert status == 401 and headers["WWW-Authenticate"] == "Bearer"
    biggest = json.dumps({"metric": "analyses", "quantity": 2**63 - 1}).encode()
    status, answer, _ = call(api, "POST", f"{path}/check", biggest, reader)
    assert status == 200 and answer["allowed"] is False


def test_two_api_processes_share_a_key_s_rate_and_its_revocation(settings, tmp_path):
    reader = new_key(settings, "alice@odavl.com", "quota:read")
    rate = {"ODAVL_API_RATE_PER_SECOND": "5"}
    with (
        api_server(settings, tmp_path / "one.log", **rate) as one,
        api_server(settings, tmp_path / "two.log", **rate) as two,
    ):
        path = f"/v1/organizations/{ORG}/quota"
        call(one, "GET", path, key=reader)  # warm both up before the clock starts
        call(two, "GET", path, key=reader)
        time.sleep(1.5)  # a full allowance again
        started = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            answers = list(
                pool.map(lambda n: call((one, two)[n % 2], "GET", path, key=reader), range(40))
            )
        elapsed = time.monotonic() - started
        let_through = sum(status == 200 for status, _, _ in answers)
        # a second's allowance at once, then 5 a second: one process alone would let 5 + 5 × t
        # through, each of two on its own about twice that
        assert 5 <= let_through <= 5 + 5 * elapsed + 1, (let_through, elapsed)
        limited = [(answer, headers) for status, answer, headers in answers if status == 429]
        assert len(limited) == 40 - let_through
        assert all(1 <= int(headers["Retry-After"]) <= 2 for _, headers in limited)
        assert limited[0][0]["error"] == "rate_limited"

        time.sleep(1.5)
        assert call(one, "GET", path, key=reader)[0] == 200
        with connect(settings) as conn:
            keys.revoke(conn, reader[: keys.PREFIX_LENGTH])
        revoked = time.monotonic()
        assert call(one, "GET", path, key=reader)[0] == 401
        assert call(two, "GET", path, key=reader)[0] == 401
        assert time.monotonic() - revoked < 1


def test_last_use_is_kept_without_a_write_per_request(settings, api):
    reader = new_key(settings, "alice@odavl.com", "quota:read")
    prefix = reader[: keys.PREFIX_LENGTH]

    def last_used():
        with connect(settings) as conn:
            return keys.listing(conn, prefix=prefix)[0]["last_used_at"]

    assert last_used() is None
    assert call(api, "GET", f"/v1/organizations/{ORG}/quota", key=reader)[0] == 200
    first = last_used()
    assert first is not None
    for _ in range(5):
        call(api, "GET", f"/v1/organizations/{ORG}/quota", key=reader)
    assert last_used() == first  # within the minute: not written again


def test_several_workers_serve_one_port_and_end_together(settings, tmp_path):
    reader = new_key(settings, "alice@odavl.com", "quota:read")
    with api_server(settings, tmp_path / "api.log", "--workers", "2") as base:
        with ThreadPoolExecutor(4) as pool:
            statuses = list(
                pool.map(
                    lambda _: call(base, "GET", f"/v1/organizations/{ORG}/quota", key=reader)[0],
                    range(20),
                )
            )
        assert statuses == [200] * 20
        assert call(base, "GET", "/healthz")[:2] == (200, {"status": "ok"})
    log = (tmp_path / "api.log").read_text()
    assert "2 processes" in log and log.count("Application startup complete") == 2


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=10,
)


@given(
    body=st.one_of(
        st.fixed_dictionaries(
            {"metric": st.sampled_from(QUOTA_METRICS) | JSON_VALUES, "quantity": JSON_VALUES}
        ),
        st.fixed_dictionaries(
            {
                "metric": st.sampled_from(QUOTA_METRICS),
                "quantity": st.integers(min_value=-(2**70), max_value=2**70),
            }
        ),
        JSON_VALUES,
    ).map(lambda value: json.dumps(value).encode())
    | st.binary(max_size=50),
    content_type=st.sampled_from(["application/json", "Application/JSON; charset=utf-8", ""])
    | st.text(max_size=30),
)
def test_a_quota_check_takes_a_metric_and_a_bigint_quantity_and_refuses_the_rest(
    body, content_type
):
    try:
        metric, quantity = quota_check(content_type, body)
    except ApiError as refusal:
        assert refusal.status in (400, 415) and refusal.detail
        return
    assert content_type.split(";")[0].strip().lower() == "application/json"
    assert metric in QUOTA_METRICS and type(quantity) is int and 0 <= quantity <= 2**63 - 1


@given(st.text(max_size=12))
def test_the_rate_setting_takes_whole_requests_per_second_and_names_itself_otherwise(value):
    try:
        rate = Settings.from_env({"ODAVL_API_RATE_PER_SECOND": value}).api_rate_per_second
    except ValueError as refusal:
        assert str(refusal).startswith("ODAVL_API_RATE_PER_SECOND must be a whole number")
        return
    assert rate == (int(value) if value else 200) and 1 <= rate <= 1_000_000


def test_a_retry_after_a_dropped_connection_counts_once(settings, api):
    writer = new_key(settings, "alice@odavl.com", "usage:write")
    sent = [usage(f"drop-{n}", occurred_at="2026-11-19T10:00:00Z", quantity=2) for n in range(500)]
    body = json.dumps(sent).encode()
    host, port = api.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as dropped:  # gone before the answer
        dropped.sendall(
            b"POST /v1/usage-events HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {writer}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
    status, retried, headers = call(api, "POST", "/v1/usage-events", body, writer)
    assert status == 200
    assert {r["status"] for r in retried["results"]} <= {"accepted", "duplicate"}
    assert retried["accepted"] + retried["duplicate"] == 500
    with connect(settings) as conn:
        assert conn.execute(
            "SELECT count(*), sum(quantity) FROM usage_events WHERE event_id LIKE 'drop-%'"
        ).fetchone() == (500, 1000)
        # the answer names its request as the drill-down does: its ledger file, kept whole
        assert conn.execute(
            "SELECT r.records FROM api_requests AS r JOIN ingested_files AS f ON f.id = r.file_id "
            "WHERE f.path LIKE %s",
            (f"api/usage_events/%/{headers['ODAVL-Request-Id']}.ndjson",),
        ).fetchall() == [(500,)]


def test_a_database_out_of_reach_is_503_and_then_served_again(settings, tmp_path):
    reader = new_key(settings, "alice@odavl.com", "quota:read")
    relay = DatabaseRelay(settings.database_url.get_secret_value())
    relay.start()
    through_relay = {"ODAVL_DATABASE_URL": relay.url.render_as_string(hide_password=False)}
    try:
        with api_server(settings, tmp_path / "api.log", **through_relay) as base:
            path = f"/v1/organizations/{ORG}/quota"
            assert call(base, "GET", path, key=reader)[0] == 200
            relay.stop()
            for method, route in (("GET", path), ("GET", "/healthz")):
                status, answer, _ = call(base, method, route, key=reader)
                assert (status, answer["error"]) == (503, "database_unavailable")
            sent = json.dumps(usage("down-1")).encode()
            writer = "0" * 8 + "_unreachable"
            assert call(base, "POST", "/v1/usage-events", sent, writer)[0] == 503
            relay.start()
            assert call(base, "GET", path, key=reader)[0] == 200
    finally:
        relay.stop()


def test_a_record_keeps_its_exact_numbers_as_a_landed_line_does(settings, api, landing):
    writer = new_key(settings, "alice@odavl.com", "usage:write")
    exact = (
        '{"event_id": "exact-%s", "org": "%s", "event_type": "insight_analysis", '
        '"occurred_at": "2026-11-19T10:00:00Z", "quantity": 1, '
        '"metadata": {"x": 0.1000000000000000055511151231257827, "n": 18446744073709551617}}'
    )
    # sent pretty-printed in an array: each record is its own text, line breaks aside
    body = (
        "[\n  " + (exact % ("sent", ORG)) + ",\n  " + (exact % ("landed", ORG)) + "\n]"
    ).encode()
    assert call(api, "POST", "/v1/usage-events", body, writer)[1]["accepted"] == 2
    rounded = exact.replace("0.1000000000000000055511151231257827", "0.1")
    status, again, _ = call(
        api, "POST", "/v1/usage-events", (rounded % ("sent", ORG)).encode(), writer
    )
    assert again["results"][0]["reason"] == "conflicting_duplicate"  # another number
    landing.write("usage_events", "2026-11-19", "a.ndjson", [exact % ("landed", ORG)])
    with connect(settings) as conn:
        ingest_days(conn, landing.root, "usage_events", [date(2026, 11, 19)])
        assert conn.execute(
            "SELECT accepted, duplicate, rejected FROM ingested_files WHERE path LIKE %s",
            ("%/a.ndjson",),
        ).fetchall() == [(0, 1, 0)]
        assert conn.execute(
            "SELECT payload->'metadata'->>'n' FROM usage_events WHERE event_id = 'exact-sent'"
        ).fetchone() == ("18446744073709551617",)
