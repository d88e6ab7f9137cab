"""Hostile landing zones for the ingestion fuzz test (tests/test_fuzz_ingest.py).

Records of every source start valid (tests/records.py) and get fields replaced, added, removed
or repeated with hostile values, written as raw JSON text so that what Python's json would
refuse to write can be sent too (NaN, 1e1000000, lone surrogates, duplicate keys, deep
nesting). Lines that are no records, files that cannot be read, and files and folders that do
not fit the landing layout come with them. Everything is bytes: names need not be UTF-8.
"""

import gzip
import itertools
import json
from dataclasses import dataclass, field
from datetime import timedelta

from hypothesis import strategies as st

from odavl_pipeline import clock
from odavl_pipeline.domain.attestations import attestation_hash
from odavl_pipeline.domain.records import SOURCES
from odavl_pipeline.domain.signatures import error_signature
from odavl_pipeline.ingest.landing import MIN_EXPANSION_BYTES, expansion_limit

from .records import OTHER_ORG, attestation, audit, chain, error, usage, with_signature

MIB = 1024 * 1024
TODAY = clock.today()
LANDING_DAYS = ("1970-01-01", "2000-02-29", "2026-11-03", TODAY.isoformat())
NOT_DAYS = (
    b"2026-13-45",
    b"notes",
    b"1969-12-31",
    b"9999-12-31",
    b"2999-01-01",
    b"2026-02-30",
    b"2026-11-3",
    b"20261103",
    b"2026-11-03 ",
    "２０２６-１１-０３".encode(),
    b"\xff\xfe",
)
UNREAD = "unread"  # the event_id prefix of records in files that must never be read
PRISTINE = "pristine"  # the key prefix of valid records (no other record has it)

# --- values, as raw JSON text ---------------------------------------------------------------

BOUNDARY_INTEGERS = (
    0,
    -1,
    1,
    64,
    65,
    100,
    101,
    200,
    201,
    1_000_000,
    1_000_001,
    2**31 - 1,
    2**31,
    -(2**31),
    -(2**31) - 1,
    2**63 - 1,
    2**63,
    -(2**63),
    -(2**63) - 1,
    2**64,
    -(2**64),
    10**30,
    -(10**30),
)
NUMBER_TEXTS = (
    "1.0",
    "-0.0",
    "0.0",
    "1e308",
    "-1e308",
    "5e-324",
    "1e-400",
    "1E400",
    "1e2",
    "NaN",
    "-NaN",
    "Infinity",
    "-Infinity",
    "1e1000000",
    "-1e1000000",
    "1" + "0" * 400,
    "0.1",
    "01",
    "+1",
    ".5",
    "1.",
    "0x10",
    "9223372036854775807.0",
)
# JSON that PostgreSQL's jsonb refuses: NUL, lone surrogates, numbers beyond its numeric
UNSTORABLE_TEXTS = (
    '"\\u0000"',
    '"\\ud800"',
    '"x\\udfff"',
    "1e1000000",
    "-1e1000000",
    "1e131073",
    "0." + "0" * 16_384 + "1",
)
LITERAL_TEXTS = ("true", "false", "null", "[]", "{}", '""')
SPECIAL_STRING_TEXTS = (
    '"\\u0000"',
    '"a\\u0000b"',
    '"a\x00b"',
    '"\\ud800"',
    '"\\udfff"',
    '"x\\ud83d"',
    '"\\udc00\\ud800"',
    '"\\ud83d\\ude00"',
    '"\\\\u0000"',
    '"\\/"',
    '"\\x41"',
    '"\\u00e9"',
    '"unterminated',
    '"tab\there"',
)
EVERY_PLANE = (
    "\x7f",
    "\u00e9",
    "\u0301",
    "\u200b",
    "\u2028",
    "\u0085",
    "\u202e",
    "\ufeff",
    "\uffff",
    "\U0001f600",
    "\U00020000",
    "\U000e0001",
    "\U0010ffff",
    "\u0130",
    "ß",
)
LONG_STRINGS = tuple(
    text * count
    for text, count in (
        ("x", 200),
        ("x", 201),
        ("x", 10_000),
        ("x", 10_001),
        ("é", 10_000),
        ("\U0001d11e", 10_000),
        ("x", 100_000),
    )
)
WORDS = (
    "odavl-test-org",
    "ODAVL-TEST-ORG",
    OTHER_ORG,
    "web-app",
    "mobile-app",
    "api-backend",
    "nobody-inc",
    "HIGH",
    "high",
    " HIGH",
    "SUCCESS",
    "Success",
    "insight_analysis",
    "autopilot_job",
    "guardian_test_run",
    "api_call",
    "production",
    "mobile",
    "seo",
    "best_practices",
    "http://",
    "https://",
    "https://x.test/" + "a" * 300,
    "ftp://x.test",
    "HTTP://X.TEST",
    "javascript:alert(1)",
    "0" * 64,
    "F" * 64,
    "a" * 63,
    "a" * 65,
    "g" * 64,
    "٠" * 64,
    "2026-11-03T14:05:00Z",
    " ",
    "\t",
    "null",
    "true",
    "0",
)

# every field name of the contract (section 3), and one derived field
FIELDS = (
    "event_id",
    "org",
    "event_type",
    "occurred_at",
    "quantity",
    "user",
    "project",
    "endpoint",
    "request_id",
    "duration_ms",
    "status",
    "files_analyzed",
    "lines_analyzed",
    "files_modified",
    "tests_run",
    "metadata",
    "detector",
    "severity",
    "message",
    "file",
    "line",
    "column",
    "code",
    "suggestion",
    "signature",
    "files_changed",
    "lines_added",
    "lines_removed",
    "risk_score",
    "recipes",
    "error",
    "undo_snapshot",
    "created_at",
    "prev_hash",
    "hash",
    "url",
    "environment",
    "device",
    "score_accessibility",
    "score_performance",
    "score_security",
    "score_seo",
    "lighthouse_performance",
    "lighthouse_accessibility",
    "lighthouse_best_practices",
    "lighthouse_seo",
    "issues",
    "suite",
    "recommendation",
    "element",
    "documentation",
    "total_issues",
)

STRINGS = st.one_of(
    st.sampled_from(WORDS + LONG_STRINGS),
    st.text(max_size=12),
    st.text(st.sampled_from(EVERY_PLANE), min_size=1, max_size=6),
)


def _text(value, ascii_only: bool) -> str:
    return json.dumps(value, ensure_ascii=ascii_only)


def string_texts() -> st.SearchStrategy[str]:
    return st.one_of(
        st.builds(_text, STRINGS, st.booleans()), st.sampled_from(SPECIAL_STRING_TEXTS)
    )


@st.composite
def timestamps(draw) -> str:
    """RFC 3339-ish timestamps at the edges: years 1 to 9999, impossible dates, every offset."""
    year = draw(st.sampled_from((1, 1969, 1970, 2026, 9999)) | st.integers(0, 9999))
    month, day = draw(st.sampled_from(((1, 1), (12, 31), (2, 29), (2, 30), (13, 1), (0, 0))))
    hour, minute, second = draw(
        st.sampled_from(((0, 0, 0), (23, 59, 59), (24, 0, 0), (23, 59, 60), (14, 5, 0)))
    )
    fraction = draw(st.sampled_from(("", ".0", ".999999", ".123456789", ".1234567891")))
    separator = draw(st.sampled_from("Tt "))
    offset = draw(
        st.sampled_from(
            (
                "Z",
                "z",
                "+00:00",
                "-00:00",
                "+23:59",
                "-23:59",
                "+24:00",
                "-24:00",
                "",
                "+0530",
                "+05:30",
                "-00:01",
                "+00:01",
            )
        )
    )
    return (
        f"{year:04d}-{month:02d}-{day:02d}{separator}{hour:02d}:{minute:02d}:{second:02d}"
        f"{fraction}{offset}"
    )


def _near_now() -> st.SearchStrategy[str]:
    """Around the five minutes a record may be ahead of ingestion, and the 1970 edge."""
    moments = st.sampled_from(
        (timedelta(minutes=4), timedelta(minutes=6), timedelta(days=1), -timedelta(days=1))
    )
    return st.one_of(
        moments.map(lambda delta: (clock.now() + delta).isoformat()),
        st.sampled_from(
            (
                "1970-01-01T00:00:00Z",
                "1969-12-31T23:59:59.999999Z",
                "1970-01-01T00:00:00+00:01",
                "1970-01-01T00:59:59+01:00",
            )
        ),
    )


def timestamp_texts() -> st.SearchStrategy[str]:
    return st.one_of(timestamps(), _near_now()).map(json.dumps)


def deep_texts() -> st.SearchStrategy[str]:
    depth = st.sampled_from((2, 100, 511, 512, 1023, 1024, 1025, 3000))
    return st.one_of(
        depth.map(lambda n: "[" * n + "]" * n),
        depth.map(lambda n: '{"a":' * n + "null" + "}" * n),
        depth.map(lambda n: "[" * n),
    )


def scalar_texts() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(BOUNDARY_INTEGERS).map(str),
        st.sampled_from(NUMBER_TEXTS),
        st.sampled_from(LITERAL_TEXTS),
        string_texts(),
        timestamp_texts(),
        st.sampled_from(UNSTORABLE_TEXTS),
    )


def value_texts() -> st.SearchStrategy[str]:
    """Any hostile JSON value: scalars, shallow arrays and objects of them, deep nests."""
    shallow = scalar_texts()
    return st.one_of(
        shallow,
        st.lists(shallow, max_size=4).map(lambda items: "[" + ",".join(items) + "]"),
        st.lists(st.tuples(key_texts(), shallow), max_size=3).map(_object_text),
        deep_texts(),
    )


def key_texts() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(FIELDS).map(json.dumps), string_texts())


def _object_text(pairs) -> str:
    return "{" + ",".join(f"{key}:{value}" for key, value in pairs) + "}"


# --- records --------------------------------------------------------------------------------

VALID = {
    "usage_events": lambda key: usage(key),
    "error_events": lambda key: with_signature(error(key)),
    "fix_attestations": lambda key: attestation(key),
    "audit_results": lambda key: audit(key),
}


RESEALED = ("fix_attestations", "error_events")  # sources whose records carry a hash of themselves


@st.composite
def hostile_issues(draw) -> str:
    """An `issues` array whose objects have hostile fields."""
    issues = []
    for _ in range(draw(st.integers(0, 3))):
        pairs = [
            (json.dumps(key), json.dumps(value))
            for key, value in audit("issue")["issues"][0].items()
        ]
        issues.append(_object_text(draw(_mutated(pairs))))
    return "[" + ",".join(issues) + "]"


INTEGER_FIELDS = (
    "quantity",
    "status",
    "duration_ms",
    "files_analyzed",
    "lines_analyzed",
    "files_modified",
    "tests_run",
    "line",
    "column",
    "files_changed",
    "lines_added",
    "lines_removed",
    "risk_score",
    *(name for name in FIELDS if "score" in name or name.startswith("lighthouse_")),
)


def integer_texts() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(BOUNDARY_INTEGERS), st.integers(-(2**65), 2**65)).map(str)


def typed_value_texts(key: str) -> st.SearchStrategy[str]:
    """A value of the type of the field named by the JSON text `key`, at the edges of it."""
    name = key.strip('"')
    if name in INTEGER_FIELDS:
        return integer_texts()
    if name in ("occurred_at", "created_at"):
        return timestamp_texts()
    if name == "recipes":
        return st.lists(string_texts(), max_size=3).map(lambda items: f"[{','.join(items)}]")
    if name == "issues":
        return hostile_issues()
    if name == "metadata":
        return st.lists(st.tuples(key_texts(), value_texts()), max_size=3).map(_object_text)
    return string_texts()


def field_value_texts(key: str) -> st.SearchStrategy[str]:
    """A hostile value for the field named by the JSON text `key`, half the time of its type."""
    return st.one_of(typed_value_texts(key), value_texts())


@st.composite
def _mutated(draw, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Replace, add, remove or repeat (a duplicate key, before or after the first) one to three
    fields."""
    pairs = list(pairs)
    for _ in range(draw(st.integers(1, 3))):
        operation = draw(st.sampled_from(("replace", "replace", "add", "add", "remove", "repeat")))
        if operation == "add" or not pairs:
            key = draw(key_texts())
            pairs.insert(draw(st.integers(0, len(pairs))), (key, draw(value_texts())))
            continue
        index = draw(st.integers(0, len(pairs) - 1))
        key = pairs[index][0]
        if operation == "replace":
            pairs[index] = (key, draw(field_value_texts(key)))
        elif operation == "remove":
            del pairs[index]
        else:
            pairs.insert(draw(st.integers(0, len(pairs))), (key, draw(value_texts())))
    return pairs


def _resealed(source: str, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The record with its attestation hash or error signature computed again, when it can be."""
    try:
        record = json.loads(_object_text(pairs))
        if source == "fix_attestations":
            sealed = ("hash", attestation_hash(record))
        else:
            sealed = (
                "signature",
                error_signature(record["detector"], record["file"], record["message"]),
            )
    except (ValueError, RecursionError, TypeError, KeyError, AttributeError):
        return pairs
    name = json.dumps(sealed[0])
    return [pair for pair in pairs if pair[0] != name] + [(name, json.dumps(sealed[1]))]


@st.composite
def hostile_records(draw, source: str, key: str) -> str:
    """A valid record of `source` with hostile fields, resealed or not."""
    ascii_only = draw(st.booleans())
    pairs = draw(
        _mutated(
            [
                (json.dumps(name), _text(value, ascii_only))
                for name, value in VALID[source](key).items()
            ]
        )
    )
    if source in RESEALED and draw(st.booleans()):
        pairs = _resealed(source, pairs)
    return _object_text(pairs)


@st.composite
def edge_records(draw, source: str, key: str) -> str:
    """A valid record of `source` with one field, mostly one of its own, set to an edge of its
    type, then resealed: the kind of record that gets as far as PostgreSQL."""
    ascii_only = draw(st.booleans())
    pairs = [
        (json.dumps(name), _text(value, ascii_only)) for name, value in VALID[source](key).items()
    ]
    name = draw(
        st.sampled_from([name for name, _ in pairs]) | st.sampled_from(FIELDS).map(json.dumps)
    )
    value = draw(typed_value_texts(name))
    pairs = [pair for pair in pairs if pair[0] != name] + [(name, value)]
    return _object_text(_resealed(source, pairs) if source in RESEALED else pairs)


def sized_record(source: str, key: str, size: int) -> str:
    """A valid record of `source` padded to exactly `size` bytes of UTF-8."""
    head = json.dumps(VALID[source](key))[:-1] + ', "padding": "'
    return head + "x" * (size - len(head) - 2) + '"}'


# --- lines ----------------------------------------------------------------------------------

NOT_RECORDS = (
    "{not json",
    "[1, 2]",
    '"a string"',
    "42",
    "null",
    "{}",
    '{"a": 1} trailing',
    '{"a": 1}{"b": 2}',
    "{'single': 'quotes'}",
    '{"a": 1,}',
    "\ufeff{}",
    "\x00",
    "{\x00}",
    '{"a"\x00: 1}',
    "\u2028",
    "}",
    "[" * 100_000,
)
BLANKS = (b"", b" ", b"\t", b"\r", b"  \t \r")
NOT_UTF8 = (
    b"\xff",
    b'{"caf\xe9": 1}',
    b'{"s": "\xed\xa0\x80"}',
    b"\xc3",
    b"\x80abc",
    b'{"k": "\xf4\x90\x80\x80"}',
    b"\xef\xbb",
)


@dataclass(frozen=True)
class Line:
    """One line as written, without its newline."""

    data: bytes
    pristine: str | None = None  # the key of a valid record, whatever its formatting

    @property
    def blank(self) -> bool:
        return not self.data.strip(b" \t\r")

    @property
    def utf8(self) -> bool:
        try:
            self.data.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return True

    def __repr__(self) -> str:
        text = repr(self.data)
        return (
            f"Line({text[:160]}…{len(self.data):,} bytes)" if len(text) > 200 else f"Line({text})"
        )


@st.composite
def lines(draw, source: str, keys) -> Line:
    """One line for a file of `source`: mostly records, valid or hostile, or no record at all.

    Hostile records share a few keys, so that some repeat or conflict with others."""
    key = f"k{next(keys)}"
    kind = draw(
        st.sampled_from(
            (
                "pristine",
                "pristine",
                *("edge",) * 3,
                *("hostile",) * 4,
                "not_record",
                "garbage",
                "blank",
                "sized",
            )
        )
    )
    if kind == "pristine":
        key = f"{PRISTINE}-{key}"
        record = VALID[source](key)
        if source == "usage_events":
            record = usage(
                key,
                quantity=draw(st.integers(1, 1_000_000)),
                org=draw(st.sampled_from(("odavl-test-org", OTHER_ORG))),
                event_type=draw(
                    st.sampled_from(
                        ("insight_analysis", "autopilot_job", "guardian_test_run", "api_call")
                    )
                ),
            )
        return Line(_text(record, draw(st.booleans())).encode(), key)
    if kind == "hostile":
        return Line(draw(hostile_records(source, f"h{draw(st.integers(0, 5))}")).encode())
    if kind == "edge":
        return Line(draw(edge_records(source, f"e{draw(st.integers(0, 5))}")).encode())
    if kind == "not_record":
        return Line(draw(st.sampled_from(NOT_RECORDS)).encode())
    if kind == "garbage":
        text = draw(st.text(min_size=1, max_size=40).filter(lambda t: "\n" not in t and t.strip()))
        return Line(text.encode())
    if kind == "blank":
        return Line(draw(st.sampled_from(BLANKS)))
    size = draw(st.sampled_from((MIB - 1, MIB, MIB + 1, 3 * MIB)))
    return Line(sized_record(source, f"big-{key}", size).encode())


# --- files and folders ----------------------------------------------------------------------

EXTENSIONS = (b".ndjson", b".ndjson.gz")
OTHER_EXTENSIONS = (
    b".json",
    b".csv",
    b".NDJSON",
    b".ndjson.bak",
    b".ndjson.zip",
    b".gz",
    b".ndjson.GZ",
    b".ndjson ",
    b"",
)


@st.composite
def names(draw, extension: bytes) -> bytes:
    """A file name that is not in progress: spaces, any unicode, bytes that are not UTF-8,
    up to 255 bytes."""
    room = 255 - len(extension)
    stem = draw(
        st.one_of(
            st.text(
                st.characters(codec="utf-8", exclude_characters="/\x00"), min_size=1, max_size=20
            ).map(str.encode),
            st.binary(min_size=1, max_size=20),
            st.sampled_from(
                (
                    b"with  spaces ",
                    b" leading",
                    "caf\u00e9 \U0001f600".encode(),
                    b"quote'\"%_\\",
                    b"line\nbreak\r",
                    b"-rf",
                    b"CON",
                    b"\xed\xa0\x80",
                )
            ),
            st.sampled_from((b"n", "é".encode(), "\U0001f600".encode())).map(
                lambda unit: (unit * 255)[:room]
            ),
        )
    )
    stem = stem.replace(b"/", b"_").replace(b"\x00", b"_")[:room]
    if stem.startswith(b"."):
        stem = b"_" + stem[1:]
    return stem + extension


def other_names() -> st.SearchStrategy[bytes]:
    """Names that are neither landing files nor in progress."""
    return (
        st.sampled_from(OTHER_EXTENSIONS)
        .flatmap(names)
        .filter(lambda name: not name.endswith((b".ndjson", b".ndjson.gz", b".tmp")))
    )


@dataclass(frozen=True)
class Planted:
    """One entry written into the landing zone.

    kind: `landed` (in the layout: to ingest), `misplaced`, `in_progress`, or `outside_link` (a
    link to the file or folder `target` outside the root).
    """

    path: tuple[bytes, ...]  # relative to the landing root
    kind: str
    lines: tuple[Line, ...] = ()
    gzipped: bool = False
    # no_final_newline, not_utf8 (a line), truncated (gzip), expanding (gzip: a run of blank lines
    # past what it may expand to), mislabelled
    damage: str | None = None
    target: str | None = None

    @property
    def source(self) -> str | None:
        """The source folder it is in, if any."""
        folder = self.path[0].decode("utf-8", "replace")
        return folder if folder in SOURCES and len(self.path) > 1 else None

    def plain(self) -> bytes:
        """Its lines, as they are read."""
        plain = b"".join(line.data + b"\n" for line in self.lines)
        if self.damage == "no_final_newline":
            plain = plain.removesuffix(b"\n")
        if self.damage == "expanding":
            plain += b"\n" * MIN_EXPANSION_BYTES
        return plain

    def data(self) -> bytes:
        plain = self.plain()
        if self.damage == "mislabelled":
            return plain if self.gzipped else gzip.compress(plain, mtime=0)
        if not self.gzipped:
            return plain
        packed = gzip.compress(plain, mtime=0)
        return packed[: len(packed) // 2] if self.damage == "truncated" else packed

    @property
    def readable(self) -> bool:
        """Whether its lines can be read: gzip whole, as named and expanding at most to its
        limit (long runs of one byte, as in padded records, go far beyond), every line UTF-8."""
        if self.damage == "truncated":
            return False
        if self.damage == "mislabelled":
            return self.gzipped and not self.data()  # an empty file is empty gzip too
        if self.gzipped and len(self.plain()) > expansion_limit(len(self.data())):
            return False
        return all(line.utf8 for line in self.lines)

    def line_numbers(self) -> list[int]:
        """The 1-based numbers of the non-blank lines."""
        return [number for number, line in enumerate(self.lines, 1) if not line.blank]

    def relative_path(self) -> str:
        """The path as the contract shows it: odd bytes escaped as \\xNN."""
        return b"/".join(self.path).decode("utf-8", "backslashreplace")

    def __repr__(self) -> str:
        details = "".join(
            f", {name}={value}"
            for name, value in (
                ("gzipped", self.gzipped),
                ("damage", self.damage),
                ("target", self.target),
            )
            if value
        )
        return f"Planted({self.kind} {b'/'.join(self.path)!r}{details}, lines={list(self.lines)})"


def _days() -> st.SearchStrategy[bytes]:
    return st.sampled_from(LANDING_DAYS).map(str.encode)


def _sources() -> st.SearchStrategy[bytes]:
    return st.sampled_from(SOURCES).map(str.encode)


@st.composite
def landed_files(draw, source: str, keys) -> Planted:
    gzipped = draw(st.booleans())
    damage = draw(
        st.sampled_from(
            (None,) * 8
            + ("no_final_newline", "mislabelled", "not_utf8")
            + (("truncated", "expanding") if gzipped else ())
        )
    )
    path = (source.encode(), draw(_days()), draw(names(EXTENSIONS[gzipped])))
    written = draw(st.lists(lines(source, keys), min_size=2, max_size=8))
    if damage == "not_utf8":
        written.insert(draw(st.integers(0, len(written))), Line(draw(st.sampled_from(NOT_UTF8))))
    return Planted(path, "landed", tuple(written), gzipped, damage)


def _unread_lines(keys) -> tuple[Line, ...]:
    return (Line(json.dumps(usage(f"{UNREAD}-{next(keys)}")).encode()),)


@st.composite
def stray_files(draw, keys) -> Planted:
    """A file outside the layout: not in a real day's folder, at the wrong depth, outside every
    source's folder, with another extension, or where a day folder belongs."""
    source, day, name = draw(_sources()), draw(_days()), draw(names(b".ndjson"))
    where = draw(
        st.sampled_from(
            (
                "not_a_day",
                "in_source",
                "too_deep",
                "root",
                "unknown_source",
                "extension",
                "day_as_file",
            )
        )
    )
    path = {
        "not_a_day": lambda: (source, draw(st.sampled_from(NOT_DAYS)), name),
        "in_source": lambda: (source, name),
        "too_deep": lambda: (source, day, b"nested", name),
        "root": lambda: (name,),
        "unknown_source": lambda: (b"clickstream", day, name),
        "extension": lambda: (source, day, draw(other_names())),
        "day_as_file": lambda: (source, b"2001-01-01"),
    }[where]()
    return Planted(path, "misplaced", _unread_lines(keys) if draw(st.booleans()) else ())


@st.composite
def in_progress_files(draw, keys) -> Planted:
    plain, temporary = draw(names(b".ndjson")), draw(names(b".ndjson.tmp"))
    name = draw(st.sampled_from((b"." + plain[1:], temporary, b"." + temporary[1:])))
    folder = draw(
        st.sampled_from(
            (
                (),
                (b"usage_events",),
                (b"usage_events", b"notes"),
                (b".staging",),
                (b"usage_events", b".2026-11-03"),
            )
        )
        | st.tuples(_sources(), _days())
        | st.tuples(_sources(), _days(), st.just(b".partial"))
    )
    return Planted((*folder, name), "in_progress", _unread_lines(keys))


@st.composite
def outside_links(draw, keys) -> Planted:
    path = (draw(_sources()), draw(_days()), draw(names(b".ndjson")))
    return Planted(
        path, "outside_link", _unread_lines(keys), target=draw(st.sampled_from(("file", "folder")))
    )


@dataclass
class HostileLanding:
    """What one example writes: entries at distinct paths, none in a folder that is another's
    file."""

    entries: list[Planted] = field(default_factory=list)

    def add(self, planted: Planted) -> None:
        for other in self.entries:
            shorter = min(len(other.path), len(planted.path))
            if other.path[:shorter] == planted.path[:shorter]:
                return
        self.entries.append(planted)

    def _repr_pretty_(self, printer, cycle) -> None:
        printer.text(repr(self))

    def __repr__(self) -> str:
        return "HostileLanding([\n" + "".join(f"  {entry!r},\n" for entry in self.entries) + "])"

    def of_kind(self, *kinds: str) -> list[Planted]:
        return [planted for planted in self.entries if planted.kind in kinds]


def repeats(line: Line) -> st.SearchStrategy[Line]:
    """The line again: as it was, or (a valid record) with its keys in another order and other
    white space, which is the same JSON value."""
    if not line.pristine:
        return st.just(line)
    record = json.loads(line.data)
    return st.sampled_from(
        (
            line,
            Line(
                json.dumps(
                    dict(reversed(record.items())), separators=(" , ", " :\t"), ensure_ascii=False
                ).encode(),
                line.pristine,
            ),
        )
    )


@st.composite
def hostile_landings(draw) -> HostileLanding:
    """Up to three files of up to 8 lines per source, a file repeating some of those lines, a
    chain landed child first; stray, in-progress and linked entries around them."""
    keys = itertools.count(1)
    landing = HostileLanding()
    for source in SOURCES:
        files = draw(st.lists(landed_files(source, keys), min_size=1, max_size=3))
        written = [line for planted in files for line in planted.lines]
        if written and draw(st.booleans()):
            repeated = draw(
                st.lists(st.sampled_from(written).flatmap(repeats), min_size=1, max_size=4)
            )
            files.append(
                Planted(
                    (source.encode(), draw(_days()), draw(names(b".ndjson"))),
                    "landed",
                    tuple(repeated),
                )
            )
        if source == "fix_attestations" and draw(st.booleans()):
            records = reversed(chain(f"chain-{next(keys)}", 3))
            files.append(
                Planted(
                    (source.encode(), draw(_days()), b"chain.ndjson"),
                    "landed",
                    tuple(Line(json.dumps(record).encode()) for record in records),
                )
            )
        for planted in files:
            landing.add(planted)
    for planted in draw(
        st.lists(
            stray_files(keys) | in_progress_files(keys) | outside_links(keys),
            min_size=1,
            max_size=6,
        )
    ):
        landing.add(planted)
    return landing
