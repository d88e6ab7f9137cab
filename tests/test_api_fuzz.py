"""Property-based fuzzing of the HTTP API (CONTRACT.md sections 4 and 9) over HTTP: one real
`odavl-pipeline api` on loopback for the module, its own database behind it, raw requests from
http.client so that every header goes out exactly as generated.

- Any request (any bytes as body, any content type: valid, invalid, with parameters, in odd
  casing; any Authorization: none, malformed, another scheme, a valid key with or without the
  endpoint's scope, a revoked or an expired key; random extra headers; Content-Length matching)
  gets no 5xx; every 4xx carries JSON `{"error", "detail"}` and stores nothing; a request
  without a valid key is 401, one with a key lacking the scope 403, another media type 415.
- Any JSON sent to each of the four endpoints, and usage events as CloudEvents in structured and
  batch mode (valid-looking records mixed with broken ones, deep nesting, integers beyond 64
  bits, any unicode): a 200 answers each record once, in order, its counts those of its results,
  a rejected record with a reason of section 4; what it calls accepted or pending is stored as
  sent, at its request and position, for an organization the key may write for; what it calls
  a duplicate is stored already, as sent; what it calls rejected is in the quarantine with that
  reason; the tables and the quarantine grow by exactly what it says. The same body sent again
  accepts nothing: each record accepted, pending or duplicate before is a duplicate.

The server and its database live for the module, so the examples see each other's records
(duplicates and conflicts across requests, chains growing from the last verified attestation).
The properties run 150 requests, and 30 bodies for each endpoint and CloudEvents mode (each sent
twice): about 15 s on two idle cores. For a longer run set ODAVL_FUZZ_EXAMPLES, e.g.
`ODAVL_FUZZ_EXAMPLES=1000 .venv/bin/python -m pytest tests/test_api_fuzz.py -q
--hypothesis-show-statistics` (the records properties run a fifth of it each).
"""

import http.client
import json
import os
import re
import string
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import psycopg
import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from odavl_pipeline.api import keys
from odavl_pipeline.db.server import connect
from odavl_pipeline.domain.attestations import GENESIS_HASH
from odavl_pipeline.settings import Settings

from .api_server import api_server
from .clocks import clock_set_to
from .dashboards_fixtures import scratch_database
from .records import ORG, OTHER_ORG, PROJECT, attestation, audit, error, usage, with_signature
from .test_fuzz_ingest import FILE_REASONS, LINE_REASONS

INSTANT = "2026-11-20T12:00:00Z"  # the clock of the module: the records' dates are before it
EXAMPLES = int(os.environ.get("ODAVL_FUZZ_EXAMPLES", "150"))
# The examples share the module's server and database. The only function-scoped fixture is the
# clock mark's (autouse), which sets nothing here; records of 10,000 characters take a while to
# generate.
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
RECORDS_PROPERTY = settings(PROPERTY, max_examples=max(1, EXAMPLES // 5))

STATUSES = ("accepted", "duplicate", "pending", "rejected")
REASONS = LINE_REASONS | FILE_REASONS  # CONTRACT.md section 4
ENDPOINTS = {  # path -> (source and its table, key field, scope)
    "/v1/usage-events": ("usage_events", "event_id", "usage:write"),
    "/v1/error-events": ("error_events", "event_id", "insight:write"),
    "/v1/fix-attestations": ("fix_attestations", "request_id", "autopilot:write"),
    "/v1/audit-results": ("audit_results", "request_id", "guardian:write"),
}
SOURCES = [source for source, _, _ in ENDPOINTS.values()]
PATH_OF = {source: path for path, (source, _, _) in ENDPOINTS.items()}
KEY_OF = {source: key for source, key, _ in ENDPOINTS.values()}
WRITE_SCOPES = [scope for _, _, scope in ENDPOINTS.values()]
JSON_TYPE = "application/json"
CLOUDEVENT = "application/cloudevents+json"
CLOUDEVENTS_BATCH = "application/cloudevents-batch+json"
OTHER_PROJECT = "api-backend"  # the other project of ORG
OTHER_ORG_PROJECT = "mobile-app"
DEEPEST_JSON = 64  # levels a body may nest (section 9's limits)

# --- the module's server -------------------------------------------------------------------


@dataclass(frozen=True)
class Api:
    base: str
    conn: psycopg.Connection  # autocommit, for reading what the server stored
    keys: dict[str, str]  # name -> key
    writable: dict[str, set[str]]  # key name -> the organizations its user may write for
    scopes: dict[str, set[str]]


@pytest.fixture(scope="module")
def api(server_url, template_url, tmp_path_factory) -> Iterator[Api]:
    """`odavl-pipeline api` on a database of the module's own, the clock at INSTANT, and keys:
    alice's (OWNER of ORG) with every write scope, with usage only, quota only, revoked and
    expired; bob's (ADMIN of OTHER_ORG, VIEWER of ORG) with every write scope."""
    root = tmp_path_factory.mktemp("api-fuzz")
    with (
        scratch_database(server_url, template_url.database, "odavl_api_fuzz") as url,
        clock_set_to(INSTANT),
        pytest.MonkeyPatch.context() as environment,
    ):
        variables = {
            "ODAVL_HOME": str(root / "home"),
            "ODAVL_DATABASE_URL": url.render_as_string(hide_password=False),
            "ODAVL_LANDING_DIR": str(root / "landing"),
        }
        for name, value in variables.items():
            environment.setenv(name, value)
        app_settings = Settings.from_env(variables)
        with connect(app_settings) as conn:
            conn.execute(
                "INSERT INTO organization_members (organization_id, user_id, role) "
                "SELECT o.id, u.id, 'VIEWER' FROM organizations AS o, users AS u "
                "WHERE o.slug = %s AND u.email = 'bob@odavl.com'",
                (ORG,),
            )
            made = {
                "alice": ("alice@odavl.com", WRITE_SCOPES),
                "alice-usage": ("alice@odavl.com", ["usage:write"]),
                "alice-quota": ("alice@odavl.com", ["quota:read"]),
                "alice-revoked": ("alice@odavl.com", WRITE_SCOPES),
                "alice-expired": ("alice@odavl.com", WRITE_SCOPES),
                "bob": ("bob@odavl.com", WRITE_SCOPES),
            }
            api_keys = {
                name: keys.create(conn, email, name, scopes)[0]
                for name, (email, scopes) in made.items()
            }
            keys.revoke(conn, api_keys["alice-revoked"][: keys.PREFIX_LENGTH])
            conn.execute(
                "UPDATE api_keys SET expires_at = odavl_now() - interval '1 second' "
                "WHERE key_prefix = %s",
                (api_keys["alice-expired"][: keys.PREFIX_LENGTH],),
            )
            conn.commit()
        # no key is slowed: the properties send as fast as the server answers
        with (
            api_server(app_settings, root / "api.log", ODAVL_API_RATE_PER_SECOND="1000000") as base,
            connect(app_settings) as reader,
        ):
            reader.autocommit = True
            yield Api(
                base,
                reader,
                api_keys,
                {name: {OTHER_ORG} if name == "bob" else {ORG} for name in made},
                {name: set(scopes) for name, (_, scopes) in made.items()},
            )


@dataclass(frozen=True)
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self):
        return json.loads(self.body)


def send(base: str, method: str, target: str, headers: list[tuple[str, bytes]], body: bytes):
    """One request on a connection of its own, its headers exactly `headers` (and Host)."""
    address = urlsplit(base)
    client = http.client.HTTPConnection(address.hostname, address.port, timeout=60)
    try:
        client.putrequest(method, target, skip_accept_encoding=True)
        for name, value in headers:
            client.putheader(name, value)
        client.endheaders(body)
        response = client.getresponse()
        return Answer(response.status, response.headers, response.read())
    finally:
        client.close()


def post_json(api: Api, path: str, value, key: str, content_type: str = JSON_TYPE) -> Answer:
    body = json.dumps(value, ensure_ascii=False).encode()
    headers = [
        ("Content-Type", content_type.encode()),
        ("Authorization", f"Bearer {api.keys[key]}".encode()),
        ("Content-Length", str(len(body)).encode()),
    ]
    return send(api.base, "POST", path, headers, body)


# --- what the database holds ---------------------------------------------------------------

SNAPSHOT = """
    SELECT (SELECT count(*) FROM usage_events), (SELECT count(*) FROM error_events),
           (SELECT count(*) FROM fix_attestations), (SELECT count(*) FROM audit_results),
           (SELECT coalesce(sum(1 + coalesce(cardinality(more_line_nos), 0)), 0) FROM quarantine),
           (SELECT count(*) FROM api_requests), (SELECT coalesce(max(file_id), 0) FROM api_requests),
           (SELECT count(*) FROM ingested_files)
"""
USAGE_BY_ORG = """
    SELECT o.slug, count(u.id) FROM organizations AS o
    LEFT JOIN usage_events AS u ON u.organization_id = o.id GROUP BY o.slug
"""


@dataclass(frozen=True)
class Snapshot:
    rows: dict[str, int]  # source -> rows of its table
    quarantined: int  # lines in the quarantine
    requests: int
    last_request: int  # the file id of the newest request kept
    files: int
    usage_by_org: dict[str, int]


def snapshot(conn: psycopg.Connection) -> Snapshot:
    counts = conn.execute(SNAPSHOT).fetchone()
    return Snapshot(
        dict(zip(SOURCES, counts[:4], strict=True)),
        counts[4],
        counts[5],
        counts[6],
        counts[7],
        dict(conn.execute(USAGE_BY_ORG).fetchall()),
    )


def as_usage_record(event):
    """The usage record of a CloudEvent, by section 9's mapping (what is not an event stays)."""
    if not isinstance(event, dict):
        return event
    data = event.get("data")
    mapped = {"id": "event_id", "subject": "org", "type": "event_type", "time": "occurred_at"}
    record = {
        name: value
        for name, value in (data.items() if isinstance(data, dict) else ())
        if name not in mapped.values()
    }
    record.update(
        {field: event[attribute] for attribute, field in mapped.items() if attribute in event}
    )
    metadata = record.get("metadata", {})
    if "source" in event and isinstance(metadata, dict):  # else the rules reject the metadata
        record["metadata"] = {**metadata, "source": event["source"]}
    return record


def shown(value) -> str:
    """`value` as JSON with each long run of one character cut short, for a failure's message."""
    text = json.dumps(value, ensure_ascii=False)
    return re.sub(r"(.)\1{15,}", lambda run: f"{run[1]}×{len(run[0])}", text)


def stored_as_sent(conn, table: str, where: str, parameters: tuple, record) -> bool:
    """Whether a row of `table` matching `where` holds `record` as its payload (the same JSON
    value: key order, white space and how a number is written do not matter)."""
    return (
        conn.execute(
            f"SELECT 1 FROM {table} WHERE {where} AND payload = %s::jsonb",
            (*parameters, json.dumps(record)),
        ).fetchone()
        is not None
    )


def repeats_a_fork(earlier: list, results: list[dict], record) -> bool:
    """Whether `record` is a copy of one of `earlier` that its request rejected as a fork."""
    text = json.dumps(record, sort_keys=True)
    return any(
        result["reason"] == "chain_fork" and json.dumps(sent, sort_keys=True) == text
        for sent, result in zip(earlier, results, strict=False)
    )


def check_answer(
    api: Api, key_name: str, source: str, records: list, body: bytes, answer: dict, before
) -> list[str]:
    """The properties of a 200 to `records` (as the server reads them from `body`, CloudEvents
    already mapped); the statuses, in order."""
    n, key_field = len(records), KEY_OF[source]
    assert set(answer) == {*STATUSES, "results"}, answer
    results = answer["results"]
    assert [result["index"] for result in results] == list(range(n))
    statuses = [result["status"] for result in results]
    assert set(statuses) <= set(STATUSES), statuses
    assert {status: answer[status] for status in STATUSES} == {
        status: statuses.count(status) for status in STATUSES
    }
    for record, result in zip(records, results, strict=True):
        sent_key = record.get(key_field) if isinstance(record, dict) else None
        assert result["key"] == (sent_key if isinstance(sent_key, str) else None), result
        if result["status"] == "rejected":
            assert result["reason"] in REASONS and result["detail"], result
        else:
            assert result["reason"] is None and result["detail"] is None, result

    conn, table = api.conn, source
    after = snapshot(conn)
    # the request is kept whole, once, as a ledger file of its own that balances
    assert after.requests == before.requests + 1 and after.files == before.files + 1
    file_id = after.last_request
    kept = conn.execute(
        "SELECT r.body, r.records, r.key_prefix, f.lines, f.accepted, f.duplicate, f.pending, "
        "f.rejected FROM api_requests AS r JOIN ingested_files AS f ON f.id = r.file_id "
        "WHERE r.file_id = %s",
        (file_id,),
    ).fetchone()
    assert bytes(kept[0]) == body
    assert kept[1:3] == (n, api.keys[key_name][: keys.PREFIX_LENGTH])
    assert kept[3:] == (n, *(answer[status] for status in STATUSES))

    # accepted and pending: stored as sent, at this request and position, for an organization
    # the key may write for; rejected: in the quarantine with that reason
    in_table = dict(
        conn.execute(
            f"SELECT line_no, payload FROM {table} WHERE file_id = %s", (file_id,)
        ).fetchall()
    )
    quarantined = {}
    for line_no, more, reason in conn.execute(
        "SELECT line_no, more_line_nos, reason FROM quarantine WHERE file_id = %s", (file_id,)
    ):
        for number in (line_no, *(more or ())):
            assert number not in quarantined, (number, file_id)
            quarantined[number] = reason
    taken = {i + 1 for i, status in enumerate(statuses) if status in ("accepted", "pending")}
    assert set(in_table) == taken, (in_table, statuses)
    assert quarantined == {
        result["index"] + 1: result["reason"]
        for result in results
        if result["status"] == "rejected"
    }
    for index, record in enumerate(records):
        status = statuses[index]
        if status in ("accepted", "pending"):
            assert stored_as_sent(
                conn, table, "file_id = %s AND line_no = %s", (file_id, index + 1), record
            ), (index, shown(record), shown(in_table[index + 1]))
            assert record["org"] in api.writable[key_name], (index, record)
        elif status == "duplicate":  # the same key, the same content, stored already
            if repeats_a_fork(records[:index], results, record):
                # Known and reported: a second copy of an attestation that this request rejects
                # as a fork answers `duplicate` (ingestion's own repeats, landed files too),
                # where section 4 keeps `duplicate` for copies of an accepted record.
                event("a copy of a rejected fork answered duplicate")
                continue
            stored = conn.execute(
                f"SELECT payload FROM {table} WHERE {key_field} = %s", (record[key_field],)
            ).fetchall()
            assert stored_as_sent(conn, table, f"{key_field} = %s", (record[key_field],), record), (
                index,
                shown(record),
                [shown(payload) for (payload,) in stored],
            )
    if source == "fix_attestations":
        pending = {
            line_no
            for (line_no,) in conn.execute(
                "SELECT line_no FROM fix_attestations WHERE file_id = %s "
                "AND chain_status = 'pending'",
                (file_id,),
            )
        }
        assert pending == {i + 1 for i, status in enumerate(statuses) if status == "pending"}

    # nothing counted twice, nothing lost: the tables and the quarantine grow by what it says
    # (a pending attestation of an earlier request may leave its table for the quarantine as a
    # fork once its parent arrives)
    moved = after.quarantined - before.quarantined - answer["rejected"]
    assert moved == 0 or (source == "fix_attestations" and moved > 0), moved
    for other in SOURCES:
        grown = after.rows[other] - before.rows[other]
        said = answer["accepted"] + answer["pending"] - moved if other == source else 0
        assert grown == said, (other, grown, answer)
    if source == "usage_events":
        for org, count in after.usage_by_org.items():
            accepted_for_org = sum(
                status == "accepted" and record.get("org") == org
                for record, status in zip(records, statuses, strict=True)
            )
            assert count - before.usage_by_org.get(org, 0) == accepted_for_org, org
    return statuses


def check_refusal(api: Api, answer: Answer, before: Snapshot) -> dict:
    """A 4xx: JSON `{"error", "detail"}`, and nothing stored."""
    refusal = json.loads(answer.body)
    assert isinstance(refusal, dict) and set(refusal) == {"error", "detail"}, refusal
    assert isinstance(refusal["error"], str) and refusal["error"]
    assert isinstance(refusal["detail"], str) and refusal["detail"]
    assert answer.headers.get_content_type() == JSON_TYPE
    assert snapshot(api.conn) == before
    return refusal


# --- records -----------------------------------------------------------------------------

TEXT = (
    st.text(max_size=20)
    | st.sampled_from(["", " ", "\x00", "é", "\u2028", "😀", "ﬀ", "\ufeff", "null", "0"])
    | st.builds(
        lambda char, n: char * n, st.sampled_from(["x", "é"]), st.sampled_from([200, 201, 10_001])
    )
)
HUGE_INTS = st.sampled_from(
    [
        2**31 - 1,
        2**31,
        2**53 + 1,
        2**63 - 1,
        2**63,
        -(2**63),
        -(2**63) - 1,
        2**64 - 1,
        2**64,
        2**64 + 1,
        10**30 + 7,
        -(10**40) - 3,
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.integers()
    | HUGE_INTS
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT
)
JSON = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=10,
)


def nested(depth: int, in_objects: bool):
    value = 0
    for _ in range(depth):
        value = {"a": value} if in_objects else [value]
    return value


DEEP = st.builds(nested, st.integers(1, 70), st.booleans())
ANY_JSON = JSON | DEEP


def mostly(valid: st.SearchStrategy, other: st.SearchStrategy) -> st.SearchStrategy:
    """`valid` three times in four, else `other`."""
    return st.integers(0, 3).flatmap(lambda n: other if n == 3 else valid)


TIMES = st.sampled_from(
    [
        "2026-11-03T14:05:00Z",
        "2026-11-20T11:59:00+02:00",
        "2026-11-19T23:59:59.999999-05:00",
        "1970-01-01T00:00:00Z",
    ]
)
BAD_TIMES = st.sampled_from(
    [
        "1969-12-31T23:59:59Z",  # before the epoch
        "2026-11-20T14:00:00Z",  # two hours after the module's clock: future
        "2026-11-03",
        "2026-11-03T14:05:00",  # no offset
        "2026-02-30T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "yesterday",
    ]
)
# fresh keys, or keys the examples share (duplicates and conflicts across requests)
KEYS = mostly(st.uuids().map(str), st.sampled_from([f"k-{n}" for n in range(4)]) | TEXT)
ORGS = mostly(st.just(ORG), st.sampled_from([OTHER_ORG, "no-such-org"]))
PROJECTS = st.sampled_from([PROJECT, PROJECT, OTHER_PROJECT, OTHER_ORG_PROJECT, "no-such-project"])
# metadata, often with integers beyond 64 bits that must be kept as sent
METADATA = mostly(st.dictionaries(st.text(max_size=8), SCALARS | HUGE_INTS, max_size=3), ANY_JSON)


def mutated(base: st.SearchStrategy[dict], fields: list[str]) -> st.SearchStrategy:
    """A record of `base`, perhaps with a field given any JSON, a field dropped, one added."""
    return st.builds(
        lambda record, changes, dropped: {
            name: value for name, value in {**record, **changes}.items() if name not in dropped
        },
        base,
        st.dictionaries(st.sampled_from([*fields, "extra", "metadata"]), ANY_JSON, max_size=2),
        st.sets(st.sampled_from(fields), max_size=1),
    )


USAGE = st.builds(
    lambda event_id, org, kind, at, quantity, extra: usage(
        event_id, org=org, event_type=kind, occurred_at=at, quantity=quantity, **extra
    ),
    KEYS,
    ORGS,
    mostly(
        st.sampled_from(["insight_analysis", "autopilot_job", "guardian_test_run", "api_call"]),
        st.sampled_from(["x", "API_CALL", ""]),
    ),
    mostly(TIMES, BAD_TIMES),
    mostly(st.integers(1, 5), st.sampled_from([0, -1, 1_000_000, 1_000_001, 2**63, 2**64 + 1])),
    st.fixed_dictionaries(
        {},
        optional={
            "user": mostly(st.just("alice@odavl.com"), st.sampled_from(["nobody@x.org", ""])),
            "project": PROJECTS,
            "metadata": METADATA,
            "duration_ms": mostly(st.integers(0, 10**6), st.integers() | HUGE_INTS),
        },
    ),
)
USAGE_FIELDS = ["event_id", "org", "event_type", "occurred_at", "quantity"]


def _error(event_id, org, project, signed, fields):
    record = error(event_id, org=org, project=project, **fields)
    return with_signature(record) if signed else record


ERRORS = st.builds(
    _error,
    KEYS,
    ORGS,
    PROJECTS,
    st.booleans(),
    st.fixed_dictionaries(
        {},
        optional={
            "severity": mostly(st.sampled_from(["CRITICAL", "LOW"]), st.sampled_from(["low", "X"])),
            "line": mostly(st.integers(0, 3), st.just(-1) | HUGE_INTS),
            "detector": mostly(st.just("eslint"), st.sampled_from(["", "d" * 64, "d" * 65])),
            "message": mostly(st.text(min_size=1, max_size=20), TEXT),
            "occurred_at": mostly(TIMES, BAD_TIMES),
            "signature": st.sampled_from(["0" * 64, "zz", "A" * 64]),
            "metadata": METADATA,
        },
    ),
)
ERROR_FIELDS = ["event_id", "org", "project", "detector", "severity", "message", "file", "line"]
ISSUE = st.fixed_dictionaries(
    {
        "suite": mostly(st.sampled_from(["accessibility", "seo", "best_practices"]), st.just("ux")),
        "severity": mostly(st.sampled_from(["HIGH", "info", "Medium"]), st.just("nope")),
        "message": TEXT,
        "recommendation": TEXT,
    },
    optional={"element": TEXT, "documentation": TEXT},
)
AUDITS = st.builds(
    lambda request_id, org, project, fields: audit(request_id, org=org, project=project, **fields),
    KEYS,
    ORGS,
    PROJECTS,
    st.fixed_dictionaries(
        {},
        optional={
            "url": mostly(
                st.sampled_from(["http://a.example", "https://a.example/x?y"]),
                st.sampled_from(["ftp://a", "", "https://"]),
            ),
            "environment": st.sampled_from(["development", "staging", "production", "prod"]),
            "device": st.sampled_from(["desktop", "mobile", "tablet", "watch"]),
            "score_seo": mostly(st.integers(0, 100), st.sampled_from([-1, 101]) | HUGE_INTS),
            "duration_ms": mostly(st.integers(0, 10**6), st.just(-1) | HUGE_INTS),
            "issues": mostly(st.lists(ISSUE, max_size=3), st.lists(ISSUE | ANY_JSON) | ANY_JSON),
            "metadata": METADATA,
            "occurred_at": mostly(TIMES, BAD_TIMES),
        },
    ),
)
AUDIT_FIELDS = ["request_id", "org", "project", "url", "environment", "device", "status"]


def attestations(tips: dict[tuple[str, str], str]) -> st.SearchStrategy[list]:
    """Attestations of a chain going on from a project's last verified one (`tips`), in any
    order and with repeats, with orphans (an unknown parent), forks, wrong hashes and invalid
    fields, and records that are no attestations."""

    def chain(request_ids, place, order):
        org, project = place
        records, prev = [], tips.get(place, GENESIS_HASH)
        for n, request_id in enumerate(request_ids):
            record = attestation(
                request_id, prev, org=org, project=project, created_at=f"2026-11-03T14:{n:02d}:00Z"
            )
            records.append(record)
            prev = record["hash"]
        return [records[i % len(records)] for i in order]

    places = st.sampled_from(
        [
            (ORG, PROJECT),
            (ORG, PROJECT),
            (ORG, OTHER_PROJECT),
            (OTHER_ORG, OTHER_ORG_PROJECT),
            (ORG, "no-such-project"),
        ]
    )
    fresh = st.uuids().map(str)
    chains = st.builds(
        chain,
        st.lists(fresh, min_size=1, max_size=4, unique=True),
        places,
        st.lists(st.integers(0, 5), min_size=1, max_size=5),
    )
    single = st.builds(
        lambda request_id, place, parent, fields: attestation(
            request_id,
            {"tip": tips.get(place, GENESIS_HASH), "genesis": GENESIS_HASH}.get(parent, parent),
            org=place[0],
            project=place[1],
            **fields,
        ),
        KEYS,
        places,
        st.sampled_from(["tip", "genesis"]) | st.text("0123456789abcdef", min_size=64, max_size=64),
        st.fixed_dictionaries(
            {},
            optional={
                "risk_score": mostly(st.integers(0, 100), st.sampled_from([-1, 101]) | HUGE_INTS),
                "recipes": mostly(st.lists(TEXT, max_size=2), ANY_JSON),
                "status": st.sampled_from(["SUCCESS", "PARTIAL", "FAILED", "OK"]),
                "lines_added": mostly(st.integers(0, 3), st.just(-1) | HUGE_INTS),
                "created_at": mostly(TIMES, BAD_TIMES),
                "note": METADATA,
            },
        ),
    )
    broken = mutated(single, ["request_id", "org", "project", "prev_hash", "hash", "risk_score"])
    return st.lists(
        mostly(chains, single.map(lambda r: [r]))
        | mostly(single, broken | ANY_JSON).map(lambda r: [r]),
        min_size=1,
        max_size=4,
    ).map(lambda parts: [record for part in parts for record in part])


def tips(conn: psycopg.Connection) -> dict[tuple[str, str], str]:
    """The last verified attestation of each project: the one no verified attestation continues."""
    return {
        (org, project): hash_
        for org, project, hash_ in conn.execute(
            "SELECT o.slug, p.slug, f.hash FROM fix_attestations AS f "
            "JOIN projects AS p ON p.id = f.project_id "
            "JOIN organizations AS o ON o.id = p.organization_id "
            "WHERE f.chain_status = 'verified' AND NOT EXISTS ("
            "  SELECT 1 FROM fix_attestations AS c WHERE c.project_id = f.project_id "
            "  AND c.prev_hash = f.hash AND c.chain_status = 'verified')"
        )
    }


def records_of(source: str, conn: psycopg.Connection) -> st.SearchStrategy[list]:
    """Lists of records of `source`, valid-looking ones mixed with broken ones and any JSON."""
    if source == "fix_attestations":
        return attestations(tips(conn))
    base, fields = {
        "usage_events": (USAGE, USAGE_FIELDS),
        "error_events": (ERRORS, ERROR_FIELDS),
        "audit_results": (AUDITS, AUDIT_FIELDS),
    }[source]
    return st.lists(mostly(base, mutated(base, fields) | ANY_JSON), min_size=1, max_size=6)


def cloudevent(record) -> st.SearchStrategy:
    """A CloudEvent carrying a usage record, perhaps with an attribute dropped or given any
    JSON, or `data` that is no object; what is not a record is sent as it is."""
    if not isinstance(record, dict):
        return st.just(record)
    attributes = {"id": "event_id", "subject": "org", "type": "event_type", "time": "occurred_at"}
    event = {
        "specversion": "1.0",
        "source": "//insight/ci",
        **{attribute: record[field] for attribute, field in attributes.items() if field in record},
        "data": {name: value for name, value in record.items() if name not in attributes.values()},
    }
    return st.builds(
        lambda changes, dropped: {
            name: value for name, value in {**event, **changes}.items() if name not in dropped
        },
        st.dictionaries(
            st.sampled_from(["source", "data", "id", "time", "datacontenttype", "subject"]),
            ANY_JSON,
            max_size=1,
        ),
        st.sets(st.sampled_from(["specversion", "source", "data", "id", "subject"]), max_size=1),
    )


def depth(value) -> int:
    """How deeply `value` nests (a scalar is 0)."""
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    return 0


MODES = {  # mode -> (source, content type)
    "usage_events": ("usage_events", JSON_TYPE),
    "error_events": ("error_events", JSON_TYPE),
    "fix_attestations": ("fix_attestations", JSON_TYPE),
    "audit_results": ("audit_results", JSON_TYPE),
    "cloudevents": ("usage_events", CLOUDEVENT),
    "cloudevents_batch": ("usage_events", CLOUDEVENTS_BATCH),
}


@RECORDS_PROPERTY
@given(data=st.data())
@pytest.mark.parametrize("mode", MODES)
def test_any_records_are_answered_each_once_and_none_is_counted_twice(api, mode, data):
    source, content_type = MODES[mode]
    key_name = data.draw(mostly(st.just("alice"), st.just("bob")), label="key")
    records = data.draw(records_of(source, api.conn), label="records")
    if content_type != JSON_TYPE:
        records = data.draw(st.tuples(*map(cloudevent, records)).map(list), label="events")
    # an array, or its first value alone (which is an array of its own when it is one); a batch
    # of CloudEvents is an array, a structured one a single event
    if content_type == CLOUDEVENTS_BATCH:
        value = records
    elif content_type == CLOUDEVENT:
        value = records[0]
    else:
        value = data.draw(st.sampled_from([records, records[0]]))
    sent = value if isinstance(value, list) else [value]
    not_one_event = content_type == CLOUDEVENT and isinstance(value, list)
    if content_type != JSON_TYPE:
        sent = [as_usage_record(event) for event in sent]
    casing = data.draw(st.sampled_from([str, str.upper, str.title]), label="casing")
    parameters = data.draw(st.sampled_from(["", "; charset=utf-8", ";charset=UTF-8 ", "; v=1"]))

    before = snapshot(api.conn)
    first = post_json(api, PATH_OF[source], value, key_name, casing(content_type) + parameters)
    note(f"first answer: {first.status} {first.body[:2000]!r}")
    if depth(value) > DEEPEST_JSON or not sent or not_one_event:
        assert first.status == 400, first.body
        too_deep = depth(value) > DEEPEST_JSON
        event("refused: " + ("too deep" if too_deep else "not records"))
        refusal = check_refusal(api, first, before)
        assert refusal["error"] == ("too_deep" if too_deep else "not_records")
        return
    assert first.status == 200, first.body
    body = json.dumps(value, ensure_ascii=False).encode()
    statuses = check_answer(api, key_name, source, sent, body, first.json(), before)
    for status in set(statuses):
        event(f"a record {status}")
    if any(
        status == "accepted" and re.search(r"[0-9]{20}", json.dumps(record))
        for record, status in zip(sent, statuses, strict=True)
    ):
        event("a record with an integer beyond 64 bits accepted")

    before = snapshot(api.conn)
    second = post_json(api, PATH_OF[source], value, key_name, content_type)
    assert second.status == 200, second.body
    again = check_answer(api, key_name, source, sent, body, second.json(), before)
    assert "accepted" not in again
    assert [
        status for status, earlier in zip(again, statuses, strict=True) if earlier != "rejected"
    ] == ["duplicate"] * sum(earlier != "rejected" for earlier in statuses), (statuses, again)


# --- any request ---------------------------------------------------------------------------

TOKEN = string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~"
# a header value as HTTP/1.1 carries it: no NUL, CR or LF, no white space but inner spaces and
# tabs (h11 refuses the rest before the app sees it, and http.client would not send them)
VALUE_BYTES = [b for b in range(256) if b not in b"\x00\t\n\x0b\x0c\r "]
HEADER_VALUES = st.lists(st.sampled_from(VALUE_BYTES), max_size=60).map(bytes) | st.builds(
    lambda a, b: a + b" \t " + b,
    st.lists(st.sampled_from(VALUE_BYTES), min_size=1, max_size=20).map(bytes),
    st.lists(st.sampled_from(VALUE_BYTES), min_size=1, max_size=20).map(bytes),
)
OWN_HEADERS = {"host", "content-length", "transfer-encoding", "content-type", "authorization"}
# headers that change how HTTP itself goes (an upgrade, chunks) are left out: they are not the API's
EXTRA_HEADERS = st.lists(
    st.tuples(
        st.text(TOKEN, min_size=1, max_size=20).filter(
            lambda name: name.lower() not in {*OWN_HEADERS, "connection", "upgrade", "expect", "te"}
        ),
        HEADER_VALUES,
    )
    | st.sampled_from(
        [
            ("Accept", b"text/html"),
            ("Accept", b"application/xml;q=0.9, */*;q=0.1"),
            ("Accept-Encoding", b"gzip, br"),
            ("Content-Encoding", b"gzip"),
            ("Connection", b"close"),
            ("Connection", b"keep-alive"),
            ("Expect", b"100-continue"),
            ("X-Forwarded-For", b"10.0.0.1, 203.0.113.9"),
            ("X-Forwarded-Proto", b"https"),
            ("Cookie", b"session=x"),
            ("Origin", b"https://evil.example"),
            ("X-Request-Id", b"\xff\xfe"),
        ]
    ),
    max_size=4,
)
MEDIA = st.sampled_from([JSON_TYPE, CLOUDEVENT, CLOUDEVENTS_BATCH])
CASINGS = st.sampled_from([str, str.upper, str.title, str.swapcase])
VALID_TYPES = st.builds(
    lambda media, casing, parameters, space: (space + casing(media) + parameters).encode(),
    MEDIA,
    CASINGS,
    st.sampled_from(
        ["", ";", "; charset=utf-8", ";charset=latin-1", '; x="a;b"', "; boundary=--", "\t"]
    ),
    st.sampled_from(["", " ", "\t"]),
).map(lambda value: (value, "valid"))
OTHER_TYPES = st.sampled_from(
    [
        b"",
        b"text/plain",
        b"text/json",
        b"application/x-www-form-urlencoded",
        b"multipart/form-data; boundary=x",
        b"application/jsonx",
        b"application/json-patch+json",
        b"application/ld+json",
        b"application",
        b"json",
        b"*/*",
        b"application/*",
        b"application/cloudevents",
        b"application /json",
        b"application/json\xa0x",
    ]
).map(lambda value: (value, "other"))
CONTENT_TYPES = mostly(
    VALID_TYPES,
    OTHER_TYPES
    | st.just((None, "other"))  # no Content-Type
    | HEADER_VALUES.map(lambda value: (value, "any")),
)
SCHEMES = st.sampled_from(["Bearer", "bearer", "BEARER", "bEaReR"])


def authorizations(names: list[str]) -> st.SearchStrategy:
    """(header value or None, the key it names when the server is to take it, or None)."""
    valid = st.builds(
        lambda scheme, name, before, after: (
            f"{scheme} {before}".encode() + b"KEY:" + name.encode() + after.encode(),
            name,
        ),
        SCHEMES,
        mostly(st.sampled_from(["alice", "alice-usage", "bob"]), st.sampled_from(names)),
        st.sampled_from(["", " ", "  "]),
        st.sampled_from(["", " ", "\t "]),
    )
    refused = st.one_of(
        st.just((None, None)),
        st.sampled_from([b"", b"Bearer", b"Bearer ", b"Bearer  \t", b"Basic dXNlcjpwYXNz"]).map(
            lambda value: (value, None)
        ),
        st.builds(  # another scheme, a key cut short or lengthened, no space, a tab
            lambda name, form: (form.encode().replace(b"KEY", b"KEY:" + name.encode()), None),
            st.sampled_from(names),
            st.sampled_from(
                [
                    "Token KEY",
                    "Basic KEY",
                    "BearerKEY",
                    "Bearer\tKEY",
                    "Bearer KEYx",
                    "Bearer xKEY",
                    "Bearer KEY KEY",
                ]
            ),
        ),
        HEADER_VALUES.map(lambda value: (value, None)),
        st.builds(
            lambda scheme, value: (scheme.encode() + b" " + value, None), SCHEMES, HEADER_VALUES
        ),
    )
    return mostly(valid, refused)


EDGE_BODIES = st.sampled_from(
    [
        b"",
        b"[]",
        b"{}",
        b"null",
        b"[1, 2",
        b'{"a": NaN}',
        b"[1e400]",
        b'{"event_id": "\\ud800"}',
        b"\xef\xbb\xbf[]",
        "[]".encode("utf-16"),
        b"\xff\xfe\xfd",
        b"[" * 65 + b"]" * 65,
        b"[" * 5000 + b"]" * 5000,
        b"[" + b"{}," * 1000 + b"{}]",
        b'[{"event_id": "x", "org": "' + b"o" * 100_000 + b'"}]',
        b'{"quantity": 18446744073709551617}',
    ]
)
BODIES = mostly(
    st.one_of(
        st.lists(USAGE | ERRORS | AUDITS, min_size=1, max_size=4),
        USAGE.flatmap(cloudevent),
        st.lists(USAGE.flatmap(cloudevent), min_size=1, max_size=3),
    ).map(lambda value: json.dumps(value).encode()),
    st.binary(max_size=200) | ANY_JSON.map(lambda value: json.dumps(value).encode()) | EDGE_BODIES,
)

METHODS = mostly(
    st.just("POST"), st.sampled_from(["GET", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"])
)
TARGETS = mostly(
    st.sampled_from([*ENDPOINTS, "/v1/usage-events?x=1&y"]),
    st.sampled_from(["/v1/usage-event", "/v1/", "/v1/usage-events/x"]),
)


@PROPERTY
@given(data=st.data())
def test_any_request_gets_no_5xx_and_a_refusal_says_why_in_json(api, data):
    names = list(api.keys)
    method = data.draw(METHODS, label="method")
    target = data.draw(TARGETS, label="target")
    authorization, key_name = data.draw(authorizations(names), label="authorization")
    content_type, kind = data.draw(CONTENT_TYPES, label="content type")
    extra = data.draw(EXTRA_HEADERS, label="extra headers")
    body = data.draw(BODIES, label="body")
    if authorization is not None and key_name is not None:
        authorization = authorization.replace(
            b"KEY:" + key_name.encode(), api.keys[key_name].encode()
        )
    elif authorization is not None:  # the malformed forms of a key carry a real one
        for name in names:
            authorization = authorization.replace(b"KEY:" + name.encode(), api.keys[name].encode())
    headers = [
        *([("Content-Type", content_type)] if content_type is not None else []),
        *([("Authorization", authorization)] if authorization is not None else []),
        ("Content-Length", str(len(body)).encode()),
        *extra,
    ]
    before = snapshot(api.conn)
    answer = send(api.base, method, target, headers, body)
    note(f"answer: {answer.status} {answer.headers.items()} {answer.body[:2000]!r}")
    event(f"status {answer.status}")
    assert answer.status < 500
    path = target.split("?")[0]
    if method == "HEAD":  # an answer without a body
        assert answer.status == (405 if path in ENDPOINTS else 404)
        assert snapshot(api.conn) == before
        return
    refusal = None
    if answer.status != 200:
        assert 400 <= answer.status < 500
        refusal = check_refusal(api, answer, before)
    if path not in ENDPOINTS:
        assert (answer.status, refusal["error"]) == (404, "not_found")
        return
    if method != "POST":
        assert (answer.status, refusal["error"]) == (405, "method_not_allowed")
        return
    source, _, scope = ENDPOINTS[path]
    if key_name is None or key_name in ("alice-revoked", "alice-expired"):
        assert answer.status == 401 and answer.headers["WWW-Authenticate"] == "Bearer"
        return
    if scope not in api.scopes[key_name]:
        assert (answer.status, refusal["error"]) == (403, "forbidden")
        return
    media = (content_type or b"").decode("latin-1").split(";")[0].strip().lower()
    takes = (JSON_TYPE, CLOUDEVENT, CLOUDEVENTS_BATCH) if source == "usage_events" else (JSON_TYPE,)
    if kind == "other" or (kind == "valid" and media not in takes):
        assert (answer.status, refusal["error"]) == (415, "unsupported_media_type")
        return
    if kind == "valid":
        assert answer.status != 415
    if answer.status != 200:
        assert (answer.status, refusal["error"]) in {
            (400, "invalid_json"),
            (400, "not_records"),
            (400, "too_deep"),
            (413, "too_many_records"),
            (415, "unsupported_media_type"),
        }, refusal
        return
    value = json.loads(body)
    records = value if isinstance(value, list) else [value]
    if media in (CLOUDEVENT, CLOUDEVENTS_BATCH):
        records = [as_usage_record(item) for item in records]
    check_answer(api, key_name, source, records, body, answer.json(), before)
