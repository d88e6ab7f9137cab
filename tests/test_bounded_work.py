"""Bounded work per byte (issue 21, case 7): a gzip file expands only so far before it is refused
whole, the identical rejected lines of a file are one quarantine row with all their line numbers
(every line still accounted for), blank lines cost what reading them costs, and the run's table
keeps its figures apart whatever their width."""

import gzip
import io
import json
import re
from datetime import date

import hypothesis
from hypothesis import given
from hypothesis import strategies as st

from odavl_pipeline.db import migrate
from odavl_pipeline.ingest.landing import (
    MAX_EXPANSION_RATIO,
    MAX_LINE_BYTES,
    MIN_EXPANSION_BYTES,
    UnreadableFile,
    expansion_limit,
    read_lines,
)
from odavl_pipeline.ingest.report import RejectFilter, list_rejects, reject_totals
from odavl_pipeline.ingest.run import ingest_days
from odavl_pipeline.orchestration import StepReport
from odavl_pipeline.output.stages import StageLines

from .commands import cli
from .records import usage

DAY = "2026-11-03"


def ingest(conn, settings, run_id=None):
    return ingest_days(
        conn, settings.landing_dir, "usage_events", [date.fromisoformat(DAY)], run_id=run_id
    )


def ledger(conn):
    return conn.execute(
        "SELECT lines, accepted, duplicate, rejected FROM ingested_files ORDER BY id"
    ).fetchall()


def quarantine(conn):
    return conn.execute(
        "SELECT reason, raw, line_no, more_line_nos, lines FROM quarantine ORDER BY id"
    ).fetchall()


# --- gzip files expand only so far ------------------------------------------------------


def test_a_tiny_gzip_of_two_million_lines_is_refused_whole(conn, settings, landing):
    bomb = gzip.compress(b"{}\n" * 2_000_000, compresslevel=9, mtime=0)  # the file
    assert len(bomb) < 6_000
    landing.write_bytes("usage_events", DAY, "bomb.ndjson.gz", bomb)
    counts = ingest(conn, settings).counts
    assert (counts.files, counts.lines, counts.rejected) == (1, 1, 1)
    [(reason, raw, line_no, more, lines)] = quarantine(conn)
    assert (reason, raw, line_no, more, lines) == ("unreadable_file", None, None, None, 1)
    [(detail,)] = conn.execute("SELECT detail FROM quarantine").fetchall()
    assert detail.startswith(f"gzip stream expands to more than {MIN_EXPANSION_BYTES:,} bytes")
    assert f"{MAX_EXPANSION_RATIO} times its {len(bomb):,} bytes" in detail
    assert "refused whole" in detail


def test_a_gzip_of_blank_lines_is_refused_once_past_its_limit(conn, settings, landing):
    padded = b"\n" * (64 << 20) + json.dumps(usage("u1")).encode() + b"\n"
    packed = gzip.compress(padded, compresslevel=9, mtime=0)
    assert len(padded) > expansion_limit(len(packed))
    landing.write_bytes("usage_events", DAY, "blank.ndjson.gz", packed)
    landing.write("usage_events", DAY, "fine.ndjson.gz", [usage("u2"), usage("u3")], gz=True)
    assert ledger(conn) == []
    ingest(conn, settings)
    assert ledger(conn) == [(1, 0, 0, 1), (2, 2, 0, 0)]
    assert [row[0] for row in quarantine(conn)] == ["unreadable_file"]


def test_a_gzip_stream_may_expand_exactly_to_its_limit():
    packed = gzip.compress(b"\n" * MIN_EXPANSION_BYTES, mtime=0)
    assert expansion_limit(len(packed)) == MIN_EXPANSION_BYTES
    assert list(read_lines(io.BytesIO(packed), True, len(packed))) == []
    over = gzip.compress(b"\n" * MIN_EXPANSION_BYTES + b"{}", mtime=0)
    try:
        list(read_lines(io.BytesIO(over), True, len(over)))
    except UnreadableFile as error:
        assert f"by line {MIN_EXPANSION_BYTES + 1:,}" in str(error)
    else:
        raise AssertionError("a gzip stream past its limit was read")
    large = b"x" * 1000 + b"\n"
    packed = gzip.compress(large * 5000, mtime=0)  # 5 MB in a few KB: over 100 times
    assert expansion_limit(len(packed)) == MAX_EXPANSION_RATIO * len(packed) < len(large) * 5000


# --- lines, blank ones skipped by the stretch ----------------------------------------------


class ShortReads(io.RawIOBase):
    """A stream that answers each read with fewer bytes than asked, as pipes and sockets do."""

    def __init__(self, data: bytes, sizes):
        self.data, self.position, self.sizes = data, 0, sizes

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        size = len(self.data) if size < 0 else size
        piece = self.data[self.position : self.position + min(size, next(self.sizes))]
        self.position += len(piece)
        return piece


def expected_lines(data: bytes) -> list[tuple[int, bytes, int]]:
    """What the contract says of these bytes, one line at a time."""
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return [
        (number, line[:MAX_LINE_BYTES], len(line))
        for number, line in enumerate((raw.rstrip(b"\r") for raw in lines), 1)
        if line.strip()
    ]


PIECES = st.sampled_from(
    (b"{", b"}", b"x", b" ", b"\t", b"\r", b"\n", b"\x0b", b"\x0c", b"\n" * 200, b" " * 100)
    + (b'{"a": 1}', b"\r\n", b"\n\r\n", b"y" * 150)
)


@hypothesis.settings(max_examples=300, deadline=None)
@given(st.lists(PIECES, max_size=80).map(b"".join), st.randoms(use_true_random=False))
def test_lines_are_numbered_and_blank_ones_skipped_however_the_bytes_arrive(data, random):
    sizes = iter(lambda: random.choice((1, 2, 3, 7, 64, 300, 1 << 20)), None)
    assert list(read_lines(ShortReads(data, sizes), False)) == expected_lines(data)


def test_long_lines_are_cut_to_their_first_mib_across_reads():
    data = b"".join(
        (
            b"a" * (MAX_LINE_BYTES - 1) + b"\r\n",
            b" " * (3 * MAX_LINE_BYTES) + b"\n",  # blank, however long
            b"b" * MAX_LINE_BYTES + b"\r\r\n",
            b"\n" * 5,
            b"c" * (MAX_LINE_BYTES + 1) + b"\n",
            b" " * MAX_LINE_BYTES + b"d" * (2 * MAX_LINE_BYTES),
        )
    )
    for size in (4096, 1 << 20, 3 << 20):
        got = list(read_lines(ShortReads(data, iter(lambda size=size: size, None)), False))
        assert got == expected_lines(data)
    assert [(number, length) for number, _, length in got] == [
        (1, MAX_LINE_BYTES - 1),
        (3, MAX_LINE_BYTES),
        (9, MAX_LINE_BYTES + 1),
        (10, 3 * MAX_LINE_BYTES),
    ]


def test_a_line_after_millions_of_blank_ones_keeps_its_number():
    data = b"\n" * 3_000_000 + b" \t\r\n" * 1_000_000 + b'{"a": 1}\n' + b"\n" * 10
    assert list(read_lines(io.BytesIO(data), False)) == [(4_000_001, b'{"a": 1}', 8)]


# --- identical rejected lines: one row, every line -----------------------------------------


def test_identical_rejected_lines_are_one_row_with_all_their_line_numbers(conn, settings, landing):
    lines: list = []
    for i in range(12_000):  # several batches
        lines += ["{}", "", usage(f"u{i}")]
    lines += ["[1, 2]", usage("u0", quantity=2), "[1, 2]", usage("u0", quantity=2), "[1, 2]"]
    landing.write("usage_events", DAY, "a.ndjson", lines)
    counts = ingest(conn, settings).counts
    assert (counts.lines, counts.accepted, counts.rejected) == (24_005, 12_000, 12_005)
    assert ledger(conn) == [(24_005, 12_000, 0, 12_005)]
    braces = list(range(1, 36_000, 3))
    rows = quarantine(conn)
    assert [(reason, raw, line_no, lines) for reason, raw, line_no, _, lines in rows] == [
        ("schema_violation", "{}", 1, 12_000),
        ("schema_violation", "[1, 2]", 36_001, 3),
        ("conflicting_duplicate", json.dumps(usage("u0", quantity=2)), 36_002, 2),
    ]
    assert [more for _, _, _, more, _ in rows] == [braces[1:], [36_003, 36_005], [36_004]]

    listed = list_rejects(conn)  # the contract's listing: every line of a row, in order
    assert len(listed) == 12_005
    assert [row["line"] for row in listed] == sorted(
        braces + [36_001, 36_002, 36_003, 36_004, 36_005]
    )
    assert listed[0] == {
        "source": "usage_events",
        "file": f"usage_events/{DAY}/a.ndjson",
        "line": 1,
        "reason": "schema_violation",
        "detail": "event_id: required field is missing",
    }
    assert [row["line"] for row in list_rejects(conn, limit=3)] == [1, 4, 7]
    assert reject_totals(conn) == [
        ("usage_events", "conflicting_duplicate", 2),
        ("usage_events", "schema_violation", 12_003),
    ]
    conflicts = RejectFilter(reason="conflicting_duplicate")
    assert [row["line"] for row in list_rejects(conn, conflicts)] == [36_002, 36_004]
    printed = json.loads(cli("rejects", "--json").stdout)
    assert printed == listed


def test_grouped_lines_of_an_unknown_org_are_retried_each(conn, settings, landing):
    newco = [usage("n1", org="newco")] * 3 + [usage("n2", org="newco")] + [usage("n1", org="newco")]
    landing.write("usage_events", DAY, "a.ndjson", newco)
    ingest(conn, settings)
    assert [(line_no, more, lines) for _, _, line_no, more, lines in quarantine(conn)] == [
        (1, [2, 3, 5], 4),
        (4, None, 1),
    ]
    conn.execute(
        "INSERT INTO organizations (name, slug, tier, status) "
        "VALUES ('NewCo', 'newco', 'FREE', 'ACTIVE')"
    )
    conn.commit()
    retried = ingest(conn, settings).retried
    assert (retried.lines, retried.landed, retried.duplicate, retried.rejected) == (5, 2, 3, 0)
    assert ledger(conn) == [(5, 2, 3, 0)]
    assert quarantine(conn) == []
    rows = conn.execute("SELECT event_id, line_no FROM usage_events ORDER BY 1").fetchall()
    assert rows == [("n1", 1), ("n2", 4)]


def test_downgrade_gives_each_grouped_line_its_row_back(conn, settings, database_url, landing):
    landing.write("usage_events", DAY, "a.ndjson", ["{}", usage("u1"), "{}", "{}"])
    ingest(conn, settings)
    assert [row[2:] for row in quarantine(conn)] == [(1, [3, 4], 3)]
    conn.commit()
    migrate.downgrade(database_url, "0011")
    rows = conn.execute("SELECT line_no, raw FROM quarantine ORDER BY line_no").fetchall()
    assert rows == [(1, "{}"), (3, "{}"), (4, "{}")]
    assert ledger(conn) == [(4, 1, 0, 3)]  # what the code of before counts: one row a line
    conn.commit()
    migrate.upgrade(database_url)
    assert [row[2:] for row in quarantine(conn)] == [(1, None, 1), (3, None, 1), (4, None, 1)]


# --- the run's table ------------------------------------------------------------------------


def test_the_run_table_keeps_its_figures_apart(conn, settings, landing):
    landing.write_bytes("usage_events", DAY, "a.ndjson", b"{}\n" * 100_000)
    ingest(conn, settings, run_id="run-1")
    step = StepReport("run-1", "usage_events", 0.0, seconds=2.5, succeeded=True)
    line = StageLines(settings).line(step)
    assert re.fullmatch(
        r"usage_events +1 files +0 rows accepted +100,000 rejected +2\.5 s", line
    ), line
