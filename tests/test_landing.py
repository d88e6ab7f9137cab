"""Reading landing files: names that wait, line numbering, the size limit, gzip."""

import gzip
import io
from datetime import date

import pytest

from odavl_pipeline.ingest.landing import (
    MAX_LINE_BYTES,
    UnreadableFile,
    read_lines,
    scan_landing,
)


@pytest.mark.parametrize(
    "name, found",
    [
        ("a.ndjson", "landed"),
        ("a.ndjson.gz", "landed"),
        (".a.ndjson", "waits"),
        ("a.ndjson.tmp", "waits"),
        ("notes.txt", "misplaced"),
    ],
)
def test_which_names_are_landing_files(tmp_path, name, found):
    path = f"usage_events/2026-01-30/{name}"
    (tmp_path / path).parent.mkdir(parents=True)
    (tmp_path / path).write_bytes(b"")
    scan = scan_landing(tmp_path, today=date(2026, 1, 31))
    landed = [file.relative_path for file in scan.files]
    misplaced = [file.relative_path for file in scan.misplaced]
    assert (landed, misplaced) == {
        "landed": ([path], []),
        "waits": ([], []),  # a producer is still writing it
        "misplaced": ([], [path]),
    }[found]


def test_lines_are_numbered_as_an_editor_shows_them():
    data = b'{"a":1}\r\n\n   \n{"b":2}\n{"c":3}'
    assert [(no, line) for no, line, _ in read_lines(io.BytesIO(data), False)] == [
        (1, b'{"a":1}'),
        (4, b'{"b":2}'),
        (5, b'{"c":3}'),
    ]


def test_an_over_long_line_is_truncated_with_its_full_length_and_reading_goes_on():
    long_line = b"x" * (MAX_LINE_BYTES + 5)
    data = b"first\n" + long_line + b"\nlast\n"
    lines = list(read_lines(io.BytesIO(data), False))
    assert [(no, len(line), length) for no, line, length in lines] == [
        (1, 5, 5),
        (2, MAX_LINE_BYTES, MAX_LINE_BYTES + 5),
        (3, 4, 4),
    ]


def test_a_line_of_exactly_the_limit_is_kept_whole():
    exact = b"y" * MAX_LINE_BYTES
    [(no, line, length)] = read_lines(io.BytesIO(exact + b"\n"), False)
    assert (no, line == exact, length) == (1, True, MAX_LINE_BYTES)


def test_gzip_is_streamed_and_a_truncated_stream_is_unreadable():
    packed = gzip.compress(b'{"a":1}\n{"b":2}\n' * 1000)
    assert sum(1 for _ in read_lines(io.BytesIO(packed), True)) == 2000
    with pytest.raises(UnreadableFile):
        list(read_lines(io.BytesIO(packed[: len(packed) // 2]), True))
