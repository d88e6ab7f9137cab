"""Ingestion against the real PostgreSQL: every outcome of the contract, end state checked."""

import json
from datetime import date

from odavl_pipeline.ingest.landing import MAX_LINE_BYTES
from odavl_pipeline.ingest.run import ingest_days
from odavl_pipeline.ingest.writer import Counts

from .records import OTHER_ORG, attestation, audit, chain, error, usage, with_signature

DAY = "2026-11-03"


def ingest(conn, settings, source, day=DAY) -> Counts:
    report = ingest_days(conn, settings.landing_dir, source, [date.fromisoformat(day)])
    total = Counts()
    total.add(report.counts)
    return total


def quarantine(conn, source=None):
    return conn.execute(
        "SELECT q.reason, f.path, q.line_no, q.detail, q.raw FROM quarantine q "
        "JOIN ingested_files f ON f.id = q.file_id WHERE %(s)s::text IS NULL OR q.source::text = %(s)s "
        "ORDER BY f.id, q.line_no",
        {"s": source},
    ).fetchall()


def scalar(conn, query, *params):
    return conn.execute(query, params).fetchone()[0]


def test_usage_lines_are_accepted_and_counted(conn, settings, landing):
    landing.write("usage_events", DAY, "a.ndjson", [usage("u1"), "", usage("u2", quantity=5), "  "])
    counts = ingest(conn, settings, "usage_events")
    assert counts.as_dict() == {
        "files": 1,
        "lines": 2,
        "accepted": 2,
        "duplicate": 0,
        "pending": 0,
        "rejected": 0,
    }
    assert scalar(conn, "SELECT sum(quantity) FROM usage_events") == 6
    provenance = conn.execute("SELECT event_id, line_no FROM usage_events ORDER BY 1").fetchall()
    assert provenance == [("u1", 1), ("u2", 3)]  # blank lines keep the numbering


def test_every_rejection_reason_is_quarantined_with_its_line(conn, settings, landing):
    too_large = json.dumps(usage("big", padding="x" * (MAX_LINE_BYTES + 10)))
    landing.write(
        "usage_events",
        DAY,
        "bad.ndjson",
        [
            usage("ok"),
            "{not json",
            usage("s1", quantity=0),
            usage("o1", org="nobody-inc"),
            usage("p1", project="no-such-project"),
            usage("f1", occurred_at="2099-01-01T00:00:00Z"),
            too_large,
            usage("ok", quantity=2),
            "[1, 2]",
        ],
    )
    counts = ingest(conn, settings, "usage_events")
    assert (counts.lines, counts.accepted, counts.rejected) == (9, 1, 8)
    rows = quarantine(conn)
    assert [(reason, line) for reason, _, line, _, _ in rows] == [
        ("invalid_json", 2),
        ("schema_violation", 3),
        ("unknown_org", 4),
        ("unknown_project", 5),
        ("future_timestamp", 6),
        ("record_too_large", 7),
        ("conflicting_duplicate", 8),
        ("schema_violation", 9),
    ]
    assert all(path == f"usage_events/{DAY}/bad.ndjson" for _, path, _, _, _ in rows)
    assert rows[1][3].startswith("quantity:")
    assert rows[4][4] == json.dumps(usage("f1", occurred_at="2099-01-01T00:00:00Z"))
    assert len(rows[5][4]) == MAX_LINE_BYTES  # an over-long line keeps its first MiB
    assert "usage_events/2026-11-03/bad.ndjson:1" in rows[6][3]


def test_duplicates_within_and_across_files_count_once(conn, settings, landing):
    landing.write("usage_events", DAY, "a.ndjson", [usage("u1"), usage("u1"), usage("u2")])
    reordered = (
        '{"quantity": 1, "occurred_at": "2026-11-03T14:05:00Z", "event_type": '
        '"insight_analysis",   "org": "odavl-test-org", "event_id": "u2"}'
    )
    landing.write("usage_events", DAY, "b.ndjson", [reordered, usage("u3")])
    counts = ingest(conn, settings, "usage_events")
    assert (counts.accepted, counts.duplicate, counts.rejected) == (3, 2, 0)
    assert scalar(conn, "SELECT count(*) FROM usage_events") == 3


def test_the_same_event_id_in_two_organizations_is_two_records(conn, settings, landing):
    landing.write("usage_events", DAY, "a.ndjson", [usage("u1"), usage("u1", org=OTHER_ORG)])
    assert ingest(conn, settings, "usage_events").accepted == 2


def test_a_file_is_ingested_once_and_again_when_its_content_changes(conn, settings, landing):
    landing.write("usage_events", DAY, "a.ndjson", [usage("u1")])
    assert ingest(conn, settings, "usage_events").files == 1
    assert ingest(conn, settings, "usage_events").files == 0
    landing.write("usage_events", DAY, "a.ndjson", [usage("u1"), usage("u2")])
    counts = ingest(conn, settings, "usage_events")
    assert (counts.files, counts.accepted, counts.duplicate) == (1, 1, 1)


def test_temporary_and_hidden_files_wait(conn, settings, landing):
    folder = settings.landing_dir / "usage_events" / DAY
    folder.mkdir(parents=True)
    (folder / "a.ndjson.tmp").write_text(json.dumps(usage("u1")) + "\n")
    (folder / ".b.ndjson").write_text(json.dumps(usage("u2")) + "\n")
    assert ingest(conn, settings, "usage_events").files == 0


def test_gzip_files_are_read_and_broken_ones_rejected_whole(conn, settings, landing):
    landing.write("usage_events", DAY, "a.ndjson.gz", [usage("u1"), usage("u2")], gz=True)
    landing.write_bytes("usage_events", DAY, "b.ndjson.gz", b"this is not gzip\n")
    landing.write_bytes(
        "usage_events",
        DAY,
        "c.ndjson",
        json.dumps(usage("u3")).encode() + b"\n" + b'{"caf\xe9": 1}\n',
    )
    counts = ingest(conn, settings, "usage_events")
    assert (counts.files, counts.lines, counts.accepted, counts.rejected) == (3, 4, 2, 2)
    rows = quarantine(conn)
    assert [(reason, path, line) for reason, path, line, _, _ in rows] == [
        ("unreadable_file", f"usage_events/{DAY}/b.ndjson.gz", None),
        ("unreadable_file", f"usage_events/{DAY}/c.ndjson", None),
    ]
    assert "not UTF-8 at line 2" in rows[1][3]
    assert scalar(conn, "SELECT count(*) FROM usage_events WHERE event_id = 'u3'") == 0


def test_unknown_org_records_are_accepted_once_the_org_exists(conn, settings, landing):
    landing.write(
        "usage_events", DAY, "a.ndjson", [usage("u1", org="newco"), usage("u2", org="newco")]
    )
    assert ingest(conn, settings, "usage_events").rejected == 2
    conn.execute(
        "INSERT INTO organizations (name, slug, tier, status) "
        "VALUES ('NewCo', 'newco', 'FREE', 'ACTIVE')"
    )
    conn.commit()
    report = ingest_days(conn, settings.landing_dir, "usage_events", [date(2026, 11, 3)])
    assert (report.retried.lines, report.retried.landed) == (2, 2)
    ledger = conn.execute("SELECT lines, accepted, rejected FROM ingested_files").fetchone()
    assert ledger == (2, 2, 0)  # the file's ledger row follows its lines
    assert quarantine(conn) == []
    rows = conn.execute("SELECT event_id, line_no FROM usage_events ORDER BY 1").fetchall()
    assert rows == [("u1", 1), ("u2", 2)]  # provenance survives the retry


def test_error_events_group_into_signatures(conn, settings, landing):
    landing.write(
        "error_events",
        DAY,
        "a.ndjson",
        [
            with_signature(
                error(
                    "e1",
                    message="Expected 2 arguments, got 3",
                    line=10,
                    occurred_at="2026-11-03T10:00:00Z",
                    severity="LOW",
                )
            ),
            error(
                "e2",
                message="Expected 4 arguments, got 1",
                line=12,
                occurred_at="2026-11-03T12:00:00+01:00",
                severity="CRITICAL",
            ),
            error(
                "e3",
                message="Expected 5 arguments, got 0",
                line=14,
                occurred_at="2026-11-03T09:00:00Z",
                severity="MEDIUM",
            ),
            error(
                "e1",
                message="Expected 2 arguments, got 3",
                line=10,
                occurred_at="2026-11-03T10:00:00Z",
                severity="LOW",
                signature="f" * 64,
            ),
        ],
    )
    counts = ingest(conn, settings, "error_events")
    assert (counts.accepted, counts.rejected) == (3, 1)
    assert quarantine(conn)[0][0] == "signature_mismatch"
    signature = conn.execute(
        "SELECT s.count, s.severity::text, s.message, s.line, s.first_seen, s.last_seen, s.status::text "
        "FROM error_signatures s JOIN projects p ON p.id = s.project_id WHERE p.slug = 'web-app'"
    ).fetchall()
    assert len(signature) == 1
    count, severity, message, line, first_seen, last_seen, status = signature[0]
    assert (count, severity, status) == (3, "CRITICAL", "open")
    assert (message, line) == ("Expected 4 arguments, got 1", 12)  # the latest occurrence
    assert first_seen.isoformat() == "2026-11-03T09:00:00+00:00"
    assert last_seen.isoformat() == "2026-11-03T11:00:00+00:00"


def test_the_same_signature_in_two_projects_is_two_rows(conn, settings, landing):
    landing.write(
        "error_events", DAY, "a.ndjson", [error("e1"), error("e1", project="api-backend")]
    )
    ingest(conn, settings, "error_events")
    assert scalar(conn, "SELECT count(*) FROM error_signatures") == 2


def test_a_resolved_signature_regresses_on_a_later_occurrence(conn, settings, landing):
    landing.write(
        "error_events", DAY, "a.ndjson", [error("e1", occurred_at="2026-11-03T10:00:00Z")]
    )
    ingest(conn, settings, "error_events")
    conn.execute(
        "UPDATE error_signatures SET status = 'resolved', resolved_at = '2026-11-03T12:00:00Z'"
    )
    conn.commit()
    landing.write(
        "error_events", DAY, "b.ndjson", [error("e2", occurred_at="2026-11-03T11:00:00Z")]
    )
    ingest(conn, settings, "error_events")
    assert (
        scalar(conn, "SELECT status::text FROM error_signatures") == "resolved"
    )  # older: no regression
    landing.write(
        "error_events", "2026-11-04", "c.ndjson", [error("e3", occurred_at="2026-11-04T08:00:00Z")]
    )
    ingest(conn, settings, "error_events", "2026-11-04")
    assert conn.execute("SELECT status::text, count FROM error_signatures").fetchone() == (
        "regressed",
        3,
    )


def test_a_chain_delivered_out_of_order_across_two_runs_is_linked(conn, settings, landing):
    links = chain("fix", 4)
    landing.write("fix_attestations", DAY, "late.ndjson", [links[3], links[2]])
    first = ingest(conn, settings, "fix_attestations")
    assert (first.accepted, first.pending) == (0, 2)
    landing.write("fix_attestations", "2026-11-04", "early.ndjson", [links[0], links[1]])
    second = ingest(conn, settings, "fix_attestations", "2026-11-04")
    assert (second.accepted, second.pending) == (2, 0)
    statuses = conn.execute(
        "SELECT request_id, chain_status::text FROM fix_attestations ORDER BY 1"
    ).fetchall()
    assert statuses == [(f"fix-{i}", "verified") for i in range(4)]


def test_a_fork_keeps_the_verified_link_and_rejects_the_other(conn, settings, landing):
    links = chain("fix", 2)
    rival = attestation("rival", links[0]["hash"], created_at="2026-11-03T13:00:00Z")
    landing.write("fix_attestations", DAY, "a.ndjson", [links[0], links[1], rival])
    counts = ingest(conn, settings, "fix_attestations")
    # Within one run the earlier created_at wins: the rival (13:00) beats fix-1 (14:01).
    assert (counts.accepted, counts.pending, counts.rejected) == (2, 0, 1)
    rows = quarantine(conn)
    assert [(reason, line) for reason, _, line, _, _ in rows] == [("chain_fork", 2)]
    assert "rival" in rows[0][3]
    late_rival = attestation("late-rival", links[0]["hash"], created_at="2026-11-03T12:00:00Z")
    landing.write("fix_attestations", DAY, "b.ndjson", [late_rival])
    assert ingest(conn, settings, "fix_attestations").rejected == 1  # the verified one stays
    assert (
        scalar(conn, "SELECT count(*) FROM fix_attestations WHERE chain_status = 'verified'") == 2
    )


def test_a_wrong_attestation_hash_is_rejected(conn, settings, landing):
    record = attestation("a1")
    landing.write("fix_attestations", DAY, "a.ndjson", [{**record, "risk_score": 99}])
    assert ingest(conn, settings, "fix_attestations").rejected == 1
    assert quarantine(conn)[0][0] == "hash_mismatch"


def test_audits_keep_their_issues_and_derived_counts(conn, settings, landing):
    landing.write(
        "audit_results",
        DAY,
        "a.ndjson",
        [audit("r1"), audit("r1"), audit("r1", score_accessibility=12)],
    )
    counts = ingest(conn, settings, "audit_results")
    assert (counts.accepted, counts.duplicate, counts.rejected) == (1, 1, 1)
    assert conn.execute(
        "SELECT total_issues, high_issues, low_issues FROM audit_results"
    ).fetchone() == (2, 1, 1)
    issues = conn.execute(
        "SELECT position, suite::text, severity::text, element FROM audit_issues ORDER BY position"
    ).fetchall()
    assert issues == [(0, "accessibility", "HIGH", None), (1, "seo", "LOW", "head")]


def test_unknown_fields_are_kept_in_the_payload(conn, settings, landing):
    landing.write(
        "usage_events", DAY, "a.ndjson", [usage("u1", metadata={"plan": "beta"}, extra=1)]
    )
    ingest(conn, settings, "usage_events")
    payload = scalar(conn, "SELECT payload FROM usage_events")
    assert payload["metadata"] == {"plan": "beta"} and payload["extra"] == 1


def test_the_first_line_of_a_key_wins_over_later_conflicting_lines(conn, settings, landing):
    lines = []
    for index in range(300):
        lines += [usage(f"k{index}", quantity=1), usage(f"k{index}", quantity=2)]
    landing.write("usage_events", DAY, "a.ndjson", lines)
    counts = ingest(conn, settings, "usage_events")
    assert (counts.accepted, counts.rejected) == (300, 300)
    assert scalar(conn, "SELECT sum(quantity) FROM usage_events") == 300
    assert scalar(conn, "SELECT count(*) FROM usage_events WHERE line_no %% 2 = 0") == 0
