"""Records taken in for the HTTP API (odavl_pipeline/api/records.py): the landing zone's rules
and code, one result per record in order, nothing counted twice whichever way a record comes
first, and every accepted row traced to its request and position."""

import json
from datetime import date

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from odavl_pipeline.api import keys, records
from odavl_pipeline.db.server import connect
from odavl_pipeline.ingest.run import ingest_days

from .records import ORG, OTHER_ORG, audit, chain, error, usage

pytestmark = pytest.mark.clock("2026-11-20T12:00:00Z")


@pytest.fixture
def alice(settings):
    """A key of alice (OWNER of odavl-test-org, no role in enterprise-corp)."""
    with connect(settings) as conn:
        key, _ = keys.create(conn, "alice@odavl.com", "test", ["usage:write"])
        return keys.holder(conn, key)


def _send(settings, holder, source, sent):
    body = json.dumps(sent).encode()
    with connect(settings) as conn:
        return records.take_records(conn, holder, source, sent, body, "application/json")


def _statuses(outcome):
    return [(r.index, r.key, r.status, r.reason) for r in outcome.results]


def test_each_record_gets_its_outcome_in_order_and_a_second_send_counts_nothing(settings, alice):
    sent = [
        usage("api-1", quantity=3),
        usage("api-1", quantity=3),  # the same record again in the request
        usage("api-2", quantity=0),  # not a valid quantity
        usage("api-3", org=OTHER_ORG),  # an organization alice may not write for
        usage("api-4", org="no-such-org"),
        "not a record",
        usage("api-5"),
    ]
    first = _send(settings, alice, "usage_events", sent)
    assert _statuses(first) == [
        (0, "api-1", "accepted", None),
        (1, "api-1", "duplicate", None),
        (2, "api-2", "rejected", "schema_violation"),
        (3, "api-3", "rejected", "unknown_org"),
        (4, "api-4", "rejected", "unknown_org"),
        (5, None, "rejected", "schema_violation"),
        (6, "api-5", "accepted", None),
    ]
    # an organization the key may not write for reads exactly as one that does not exist
    assert first.results[3].detail.replace(OTHER_ORG, "X") == first.results[4].detail.replace(
        "no-such-org", "X"
    )
    assert first.counts() == {"accepted": 2, "duplicate": 1, "pending": 0, "rejected": 4}

    again = _send(settings, alice, "usage_events", sent)
    assert [r.status for r in again.results] == [
        "duplicate",
        "duplicate",
        "rejected",
        "rejected",
        "rejected",
        "rejected",
        "duplicate",
    ]
    with connect(settings) as conn:
        rows = conn.execute(
            "SELECT u.event_id, u.quantity, f.path, u.line_no, r.key_prefix, r.records "
            "FROM usage_events AS u JOIN ingested_files AS f ON f.id = u.file_id "
            "JOIN api_requests AS r ON r.file_id = f.id ORDER BY u.event_id"
        ).fetchall()
        assert [(e, q, line, prefix, n) for e, q, _, line, prefix, n in rows] == [
            ("api-1", 3, 1, alice.prefix, 7),
            ("api-5", 1, 7, alice.prefix, 7),
        ]
        assert rows[0][2] == first.path and first.path.startswith("api/usage_events/2026-11-20/")
        kept = conn.execute(
            "SELECT body FROM api_requests WHERE file_id = %s", (first.file_id,)
        ).fetchone()[0]
        assert json.loads(kept) == sent  # the request kept whole
        ledger = conn.execute(
            "SELECT lines, accepted, duplicate, pending, rejected FROM ingested_files "
            "WHERE id IN (%s, %s) ORDER BY id",
            (first.file_id, again.file_id),
        ).fetchall()
        assert ledger == [(7, 2, 1, 0, 4), (7, 0, 3, 0, 4)]


def test_every_source_is_taken_in_and_an_attestation_waits_for_its_chain(settings, alice):
    assert [r.status for r in _send(settings, alice, "error_events", [error("e-1")]).results] == [
        "accepted"
    ]
    assert [r.status for r in _send(settings, alice, "audit_results", [audit("a-1")]).results] == [
        "accepted"
    ]
    first, second = chain("fix", 2)
    assert [r.status for r in _send(settings, alice, "fix_attestations", [second]).results] == [
        "pending"  # its predecessor has not come yet
    ]
    assert [r.status for r in _send(settings, alice, "fix_attestations", [first]).results] == [
        "accepted"
    ]
    with connect(settings) as conn:
        assert conn.execute(
            "SELECT request_id, chain_status FROM fix_attestations ORDER BY request_id"
        ).fetchall() == [("fix-0", "verified"), ("fix-1", "verified")]


def test_a_record_sent_then_landed_or_landed_then_sent_counts_once(settings, alice, landing):
    landing.write("usage_events", "2026-11-19", "a.ndjson", [usage("landed-first")])
    with connect(settings) as conn:
        ingest_days(conn, landing.root, "usage_events", [date(2026, 11, 19)])
    sent = _send(settings, alice, "usage_events", [usage("landed-first"), usage("sent-first")])
    assert [r.status for r in sent.results] == ["duplicate", "accepted"]
    landing.write("usage_events", "2026-11-20", "b.ndjson", [usage("sent-first")])
    with connect(settings) as conn:
        ingest_days(conn, landing.root, "usage_events", [date(2026, 11, 20)])
        assert conn.execute(
            "SELECT accepted, duplicate FROM ingested_files WHERE path LIKE %s",
            ("%/b.ndjson",),
        ).fetchall() == [(0, 1)]
        assert conn.execute("SELECT event_id FROM usage_events ORDER BY event_id").fetchall() == [
            ("landed-first",),
            ("sent-first",),
        ]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
# records mostly near the valid shape: a valid one with a field changed, dropped or added
NEAR = st.builds(
    lambda event, changes, dropped: {
        k: v for k, v in {**usage(f"h-{event}", org=ORG), **changes}.items() if k not in dropped
    },
    st.integers(0, 5),
    st.dictionaries(
        st.sampled_from(["event_id", "org", "event_type", "occurred_at", "quantity", "extra"]),
        JSON,
        max_size=2,
    ),
    st.sets(st.sampled_from(["event_id", "org", "quantity"]), max_size=1),
)


@hypothesis_settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(NEAR | JSON, min_size=1, max_size=8))
def test_any_records_get_one_result_each_and_none_is_counted_twice(settings, alice, batch):
    with connect(settings) as conn:
        before = conn.execute("SELECT count(*) FROM usage_events").fetchone()[0]
    first = _send(settings, alice, "usage_events", batch)
    second = _send(settings, alice, "usage_events", batch)
    for outcome in (first, second):
        assert [r.index for r in outcome.results] == list(range(len(batch)))
        assert all(r.status in records.STATUSES for r in outcome.results)
        assert all((r.reason is not None) == (r.status == "rejected") for r in outcome.results)
    assert second.counts()["accepted"] == 0
    with connect(settings) as conn:
        after = conn.execute("SELECT count(*) FROM usage_events").fetchone()[0]
        ledger = conn.execute(
            "SELECT lines, accepted + duplicate + pending + rejected FROM ingested_files "
            "WHERE id = %s",
            (first.file_id,),
        ).fetchone()
    assert after - before == first.counts()["accepted"]
    assert ledger == (len(batch), len(batch))
