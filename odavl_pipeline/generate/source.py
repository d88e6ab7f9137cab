"""What every landing source has in common: its day's records, and how to spoil them.

A source yields `(t, record, fork_role)` in time order; `fork_role` is None, or "pinned"
and "fork" for the two children of a deliberate attestation chain fork.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Callable, Iterator
from typing import Any

import orjson

from odavl_pipeline.generate.options import GenerateOptions
from odavl_pipeline.generate.randomness import cumulative, uuid4
from odavl_pipeline.generate.world import Clock, World

Record = dict[str, Any]
Generated = Iterator[tuple[int, Record, str | None]]
# A schema violation: (field, value), the value DELETE, a constant or a function of the record.
Violation = tuple[str, Any]

DELETE = object()
_UNKNOWN_ORG_PREFIXES = ("ghost", "legacy", "trial", "deleted", "sandbox")
_UNKNOWN_ORG_SUFFIXES = ("labs", "corp", "studio", "tenant")
_UNKNOWN_PROJECT_PREFIXES = ("retired", "prototype", "old", "poc")


class Source:
    """Records of one source: the day's stream plus its conflicting and malformed variants."""

    name: str
    key: str  # the field that identifies a record
    time_field: str
    millis: bool = True  # whether timestamps carry milliseconds
    malformed_weights: tuple[tuple[str, float], ...]  # (malformed kind, weight)
    violations: tuple[Violation, ...]

    def __init__(self, world: World, options: GenerateOptions) -> None:
        self.world = world
        self.options = options
        self._kind_names = tuple(kind for kind, _ in self.malformed_weights)
        self._kind_cumulative, self._kind_total = cumulative(
            weight for _, weight in self.malformed_weights
        )

    def records(self, clock: Clock, rng: random.Random) -> Generated:
        """The day's records in time order."""
        raise NotImplementedError

    def conflict(self, rec: Record, rng: random.Random) -> Record:
        """A copy of the record with the same key and different content."""
        raise NotImplementedError

    def schema_violation(self, rec: Record, rng: random.Random) -> None:
        """Break the record's schema with one of the source's violations."""
        apply_violation(rec, rng, self.violations)

    def mismatch(self, rec: Record, rng: random.Random) -> None:
        """Make the record's signature or hash disagree with its content."""
        raise NotImplementedError

    def finish(self, rec: Record) -> None:
        """Hook for attestations to recompute the hash of a mutated copy."""

    def malformed(self, rec: Record, rng: random.Random) -> tuple[str, bytes]:
        """A malformed line made from the record (under a new key), and its kind."""
        draw = rng.random() * self._kind_total
        kind = self._kind_names[bisect.bisect(self._kind_cumulative, draw)]
        bad = dict(rec)
        bad[self.key] = uuid4(rng.getrandbits)
        if kind == "invalid_json":
            self.finish(bad)
            return kind, _invalid_json(bad, rng)
        if kind == "schema_violation":
            self.schema_violation(bad, rng)
        elif kind in ("signature_mismatch", "hash_mismatch"):
            self.mismatch(bad, rng)
        else:
            self._misplace(kind, bad, rng)
            self.finish(bad)
        return kind, orjson.dumps(bad)

    def _misplace(self, kind: str, rec: Record, rng: random.Random) -> None:
        """An unknown organization or project, or a time in the future."""
        if kind == "unknown_org":
            rec["org"] = _unknown_org(rng, self.world.known_orgs)
        elif kind == "unknown_project":
            prefix = rng.choice(_UNKNOWN_PROJECT_PREFIXES)
            rec["project"] = f"{prefix}-{rec['project']}-{rng.getrandbits(12):03x}"
        else:
            rec[self.time_field] = _future(rec[self.time_field])


def apply_violation(rec: Record, rng: random.Random, violations: tuple[Violation, ...]) -> None:
    """Apply one schema violation: delete a required field or give it a bad value."""
    field_name, value = violations[rng.randrange(len(violations))]
    if value is DELETE:
        rec.pop(field_name, None)
    elif callable(value):
        rec[field_name] = value(rec)
    else:
        rec[field_name] = value


def _future(stamp: str) -> str:
    """The same wall-clock time in 2099: in the future whatever the day."""
    return "2099" + stamp[4:].replace("-02-29T", "-02-28T", 1)


def without_offset(field_name: str) -> Callable[[Record], str]:
    """A violation value: the record's timestamp without its `Z` or UTC offset."""

    def strip(rec: Record) -> str:
        stamp = rec[field_name]
        return stamp[:-1] if stamp.endswith("Z") else stamp[:-6]

    return strip


def _invalid_json(rec: Record, rng: random.Random) -> bytes:
    """The record as a line that is not JSON, spoiled in one of four ways."""
    text = orjson.dumps(rec).decode()
    style = rng.randrange(4)
    if style == 0:  # cut off mid-write
        return text[: rng.randrange(1, len(text) - 1)].encode()
    if style == 1:  # a Python repr instead of JSON
        return repr(rec).encode()
    if style == 2:  # two records glued together
        return (text + text).encode()
    return (text[:-1] + ",}").encode()  # trailing comma


def _unknown_org(rng: random.Random, known: set[str]) -> str:
    """An organization slug that is not in the reference data."""
    while True:
        slug = (
            f"{rng.choice(_UNKNOWN_ORG_PREFIXES)}-"
            f"{rng.choice(_UNKNOWN_ORG_SUFFIXES)}-{rng.getrandbits(16):04x}"
        )
        if slug not in known:
            return slug
