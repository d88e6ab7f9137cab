"""The HTTP API over HTTP (CONTRACT.md section 9): `odavl-pipeline api` on a loopback port,
the real database behind it, a plain HTTP client in front."""

import http.client
import json
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from odavl_pipeline.api import keys
from odavl_pipeline.db.server import connect

from .api_server import api_server
from .records import OTHER_ORG, usage

pytestmark = pytest.mark.clock("2026-11-20T12:00:00Z")


def call(base, method, path, body=b"", key=None, content_type="application/json"):
    """(status, JSON answer, headers) of one request."""
    headers = {"Content-Type": content_type} if content_type else {}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(f"{base}{path}", data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read()), response.headers
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), error.headers


@pytest.fixture
def api(settings, tmp_path):
    with api_server(settings, tmp_path / "api.log") as base:
        yield base


@pytest.fixture
def alice_keys(settings):
    """Two keys of alice: one that may send usage, one that may only read quota."""
    with connect(settings) as conn:
        writer, _ = keys.create(conn, "alice@odavl.com", "writer", ["usage:write"])
        reader, _ = keys.create(conn, "alice@odavl.com", "reader", ["quota:read"])
    return writer, reader


def test_records_in_answer_each_record_and_a_retry_counts_nothing(settings, api, alice_keys):
    writer, _ = alice_keys
    sent = json.dumps([usage("h-1", quantity=2), usage("h-2", org=OTHER_ORG), usage("h-1")])
    status, answer, _ = call(api, "POST", "/v1/usage-events", sent.encode(), writer)
    assert status == 200
    assert {k: answer[k] for k in ("accepted", "duplicate", "pending", "rejected")} == {
        "accepted": 1,
        "duplicate": 0,
        "pending": 0,
        "rejected": 2,  # an organization alice may not write for; h-1 again, but different
    }
    assert [(r["index"], r["key"], r["status"], r["reason"]) for r in answer["results"]] == [
        (0, "h-1", "accepted", None),
        (1, "h-2", "rejected", "unknown_org"),
        (2, "h-1", "rejected", "conflicting_duplicate"),
    ]
    status, again, _ = call(api, "POST", "/v1/usage-events", sent.encode(), writer)
    assert status == 200 and [r["status"] for r in again["results"]] == [
        "duplicate",
        "rejected",
        "rejected",
    ]
    # one record alone, not in an array
    status, single, _ = call(
        api, "POST", "/v1/usage-events", json.dumps(usage("h-3")).encode(), writer
    )
    assert status == 200 and single["accepted"] == 1 and single["results"][0]["index"] == 0
    with connect(settings) as conn:
        assert conn.execute(
            "SELECT event_id, quantity FROM usage_events ORDER BY event_id"
        ).fetchall() == [("h-1", 2), ("h-3", 1)]


def test_cloudevents_in_both_modes_map_to_usage_records(settings, api, alice_keys):
    writer, _ = alice_keys

    def event(event_id, **data):
        return {
            "specversion": "1.0",
            "id": event_id,
            "source": "//insight/ci",
            "subject": "odavl-test-org",
            "type": "insight_analysis",
            "time": "2026-11-20T11:00:00Z",
            "data": {"quantity": 4, **data},
        }

    one = json.dumps(event("ce-1")).encode()
    status, answer, _ = call(
        api, "POST", "/v1/usage-events", one, writer, "application/cloudevents+json"
    )
    assert status == 200 and answer["accepted"] == 1
    batch = json.dumps([event("ce-2"), event("ce-3", quantity=0)]).encode()
    status, answer, _ = call(
        api, "POST", "/v1/usage-events", batch, writer, "application/cloudevents-batch+json"
    )
    assert status == 200
    assert [(r["key"], r["status"]) for r in answer["results"]] == [
        ("ce-2", "accepted"),
        ("ce-3", "rejected"),
    ]
    with connect(settings) as conn:
        assert conn.execute(
            "SELECT event_id, quantity, payload->'metadata'->>'source' FROM usage_events "
            "ORDER BY event_id"
        ).fetchall() == [("ce-1", 4, "//insight/ci"), ("ce-2", 4, "//insight/ci")]
    with connect(settings) as conn:
        insight, _ = keys.create(conn, "alice@odavl.com", "insight", ["insight:write"])
    status, refused, _ = call(
        api, "POST", "/v1/error-events", one, insight, "application/cloudevents+json"
    )
    assert (status, refused["error"]) == (415, "unsupported_media_type")  # usage events only


# (path, body, content type, key, status, error): one server for all, each case on its own
BAD_REQUESTS = [
    ("/v1/usage-events", b"[]", "application/json", None, 401, "unauthorized"),
    ("/v1/usage-events", b"[]", "application/json", "nope", 401, "unauthorized"),
    ("/v1/usage-events", b"[]", "application/json", "reader", 403, "forbidden"),
    ("/v1/error-events", b"[]", "application/json", "writer", 403, "forbidden"),
    ("/v1/usage-events", b"{not json", "application/json", "writer", 400, "invalid_json"),
    ("/v1/usage-events", b"[]", "application/json", "writer", 400, "not_records"),
    ("/v1/usage-events", b"[" * 70 + b"]" * 70, "application/json", "writer", 400, "too_deep"),
    ("/v1/usage-events", b"[1]", "text/plain", "writer", 415, "unsupported_media_type"),
    (
        "/v1/usage-events",
        b"[" + b"1," * 1000 + b"1]",
        "application/json",
        "writer",
        413,
        "too_many_records",
    ),
    ("/v1/no-such-thing", b"[]", "application/json", "writer", 404, "not_found"),
]


def test_bad_requests_get_a_4xx_with_error_and_detail(api, alice_keys):
    writer, reader = alice_keys
    for path, body, content_type, key, status, error in BAD_REQUESTS:
        key = {"writer": writer, "reader": reader}.get(key, key)
        got, answer, headers = call(api, "POST", path, body, key, content_type)
        assert (got, answer["error"]) == (status, error), (path, body[:40], answer)
        assert answer["detail"]
        if status == 401:
            assert headers["WWW-Authenticate"] == "Bearer"
    # a body declared over 1 MiB is refused before it is sent (a client still sending it may
    # see its connection closed instead: the answer is read before the body is written)
    host, port = api.removeprefix("http://").split(":")
    client = http.client.HTTPConnection(host, int(port), timeout=30)
    client.putrequest("POST", "/v1/usage-events")
    for name, value in (
        ("Authorization", f"Bearer {writer}"),
        ("Content-Type", "application/json"),
        ("Content-Length", str((1 << 20) + 1)),
    ):
        client.putheader(name, value)
    client.endheaders()
    response = client.getresponse()
    assert response.status == 413
    assert json.loads(response.read())["error"] == "too_large"
    client.close()


def test_a_revoked_key_stops_at_once_and_the_description_lists_the_endpoints(
    settings, api, alice_keys
):
    writer, _ = alice_keys
    body = json.dumps(usage("r-1")).encode()
    assert call(api, "POST", "/v1/usage-events", body, writer)[0] == 200
    cli_revoke = subprocess.run(
        [sys.executable, "-m", "odavl_pipeline.cli", "keys", "revoke", writer[:8]],
        capture_output=True,
        text=True,
    )
    assert cli_revoke.returncode == 0, cli_revoke.stderr
    assert call(api, "POST", "/v1/usage-events", body, writer)[0] == 401
    status, description, _ = call(api, "GET", "/openapi.json", content_type=None)
    assert status == 200
    assert {
        "/v1/usage-events",
        "/v1/error-events",
        "/v1/fix-attestations",
        "/v1/audit-results",
    } <= set(description["paths"])


def test_the_command_refuses_a_taken_port_in_one_line(settings, api):
    port = api.rsplit(":", 1)[1]
    taken = subprocess.run(
        [sys.executable, "-m", "odavl_pipeline.cli", "api", "--port", port],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert taken.returncode == 1
    assert taken.stderr.startswith(f"error: cannot listen on 127.0.0.1:{port}")
    assert len(taken.stderr.strip().splitlines()) == 1
