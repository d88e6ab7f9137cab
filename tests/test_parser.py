"""The parser process: batches of validated lines, and a file whose bytes changed."""

import hashlib
from datetime import date

import pytest

from odavl_pipeline.ingest.landing import LandedFile
from odavl_pipeline.ingest.parser import FileChanged, ParserProcess
from odavl_pipeline.ingest.writer import References

from .records import usage


def _landed(landing, records) -> tuple[LandedFile, str]:
    path = landing.write("usage_events", "2026-11-03", "a.ndjson", records)
    landed = LandedFile("usage_events", date(2026, 11, 3), path, "usage_events/2026-11-03/a.ndjson")
    return landed, hashlib.sha256(path.read_bytes()).hexdigest()


def test_batches_hold_staged_lines_repeats_and_rejects(landing):
    landed, digest = _landed(landing, [usage("u1"), usage("u1"), usage("u2", org="nobody"), "{x"])
    refs = References(orgs={"odavl-test-org": 1}, projects={})
    with ParserProcess() as parser:
        [batch] = list(parser.batches(landed, refs, file_id=9, sha256=digest))
    assert batch.lines == 4
    assert (batch.staged_lines, batch.repeat_lines) == ([(9, 1)], [(9, 2)])
    assert [(reject[2], reject[3]) for reject in batch.rejects] == [(3, "unknown_org"), (4, "invalid_json")]
    assert batch.staged.startswith(b'9,1,1,"u1",')


def test_bytes_other_than_those_hashed_are_refused(landing):
    landed, _ = _landed(landing, [usage("u1")])
    with ParserProcess() as parser, pytest.raises(FileChanged):
        list(parser.batches(landed, References({}, {}), file_id=1, sha256="0" * 64))
