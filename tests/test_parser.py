"""The parser process: batches of validated lines, and a file whose bytes changed."""

import hashlib
from datetime import date

import pytest

from odavl_pipeline.ingest.landing import LandedFile
from odavl_pipeline.ingest.parser import FileChanged, ParserProcess
from odavl_pipeline.ingest.staging import PreparedFile, References
from odavl_pipeline.ingest.zones import LocalZone

from .records import usage


def _prepared(landing, records, refs: References, sha256: str | None = None) -> PreparedFile:
    path = landing.write("usage_events", "2026-11-03", "a.ndjson", records)
    landed = LandedFile(
        "usage_events", date(2026, 11, 3), str(path), "usage_events/2026-11-03/a.ndjson"
    )
    status = path.stat()
    return PreparedFile(
        landed,
        sha256 or hashlib.sha256(path.read_bytes()).hexdigest(),
        9,
        refs,
        status.st_size,
        status.st_mtime_ns,
    )


def test_batches_hold_staged_lines_repeats_and_rejects(landing):
    refs = References(orgs={"odavl-test-org": 1}, projects={})
    prepared = _prepared(landing, [usage("u1"), usage("u1"), usage("u2", org="nobody"), "{x"], refs)
    with ParserProcess(LocalZone(landing.root)) as parser:
        parser.submit(prepared)
        [batch] = list(parser.batches(prepared))
    assert batch.lines == 4
    assert (batch.staged_lines, batch.repeat_lines) == ([(9, 1)], [(9, 2)])
    assert [(line_nos, reason) for _, line_nos, reason, *_ in batch.rejects.entries()] == [
        ([3], "unknown_org"),
        ([4], "invalid_json"),
    ]
    assert batch.staged.startswith(b'9,1,1,"u1",')


def test_bytes_other_than_those_hashed_are_refused(landing):
    prepared = _prepared(landing, [usage("u1")], References({}, {}), sha256="0" * 64)
    with ParserProcess(LocalZone(landing.root)) as parser, pytest.raises(FileChanged):
        parser.submit(prepared)
        list(parser.batches(prepared))
