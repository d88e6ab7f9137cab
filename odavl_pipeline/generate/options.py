"""What to generate (the options) and what was generated (the summaries)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The producer named in each source's file names.
PRODUCERS = {
    "usage_events": "billing",
    "error_events": "insight",
    "fix_attestations": "autopilot",
    "audit_results": "guardian",
}
MALFORMED_KINDS = (
    "invalid_json",
    "schema_violation",
    "unknown_org",
    "unknown_project",
    "future_timestamp",
    "signature_mismatch",
    "hash_mismatch",
)


@dataclass(frozen=True, kw_only=True)
class GenerateOptions:
    """What to generate. Shares are per generated record (a probability each)."""

    seed: int = 7
    days: int = 30
    end_day: dt.date
    organizations: int = 5
    usage_per_day: int = 200
    errors_per_day: int = 40
    attestations_per_day: int = 5
    audits_per_day: int = 2
    duplicate_share: float = 0.02
    conflict_share: float = 0.002
    malformed_share: float = 0.005
    late_share: float = 0.02
    gzip_share: float = 0.2
    files_per_day: int = 2
    # No timestamp after this instant (except the deliberate year-2099 ones). Leave it
    # None for full days up to the end of `end_day`; a CLI generating up to "today"
    # should pass the current time so fresh data is not rejected as future.
    not_after: dt.datetime | None = None
    # (org, project, hash) of attestation chains that already exist (the demo seeds):
    # their generated attestations continue those chains instead of forking them.
    chain_heads: tuple[tuple[str, str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.days < 1:
            raise ValueError("days must be at least 1")
        if self.files_per_day < 1:
            raise ValueError("files_per_day must be at least 1")
        for name in (
            "organizations",
            "usage_per_day",
            "errors_per_day",
            "attestations_per_day",
            "audits_per_day",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        for name in (
            "duplicate_share",
            "conflict_share",
            "malformed_share",
            "late_share",
            "gzip_share",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.duplicate_share + self.conflict_share + self.malformed_share * 1.1 > 1.0:
            raise ValueError("duplicate_share + conflict_share + malformed_share must stay below 1")
        if self.not_after is not None and self.not_after.utcoffset() is None:
            raise ValueError("not_after must be timezone-aware")

    @property
    def first_day(self) -> dt.date:
        """The first of the `days` days that end with `end_day`."""
        return self.end_day - dt.timedelta(days=self.days - 1)


@dataclass(frozen=True)
class SourceSummary:
    """What was written for one source, and what ingesting all of it should give."""

    source: str
    files: int
    gzip_files: int
    lines: int  # non-blank lines written
    blank_lines: int
    records: int  # distinct valid records: ingestion accepts exactly these
    duplicates: int  # exact copies of a record: `duplicate`
    conflicts: int  # same key, different content: `conflicting_duplicate`
    malformed: int  # bad lines, rejected with the reasons in malformed_kinds
    malformed_kinds: Mapping[str, int] = field(default_factory=dict)
    forks: int = 0  # deliberate second child of a chain link: `chain_fork`
    late: int = 0  # records in a later day folder than their own timestamp

    @property
    def expected_rejected(self) -> int:
        """The lines ingestion should reject: conflicts, malformed lines and forks."""
        return self.conflicts + self.malformed + self.forks

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "gzip_files": self.gzip_files,
            "lines": self.lines,
            "blank_lines": self.blank_lines,
            "records": self.records,
            "duplicates": self.duplicates,
            "conflicts": self.conflicts,
            "malformed": self.malformed,
            "malformed_kinds": dict(self.malformed_kinds),
            "forks": self.forks,
            "late": self.late,
        }


@dataclass(frozen=True)
class GenerateSummary:
    """What one run wrote: its days, its reference data and each source's summary."""

    out: Path
    first_day: dt.date
    end_day: dt.date
    organizations: int
    projects: int
    sources: Mapping[str, SourceSummary]

    @property
    def files(self) -> int:
        return sum(source.files for source in self.sources.values())

    @property
    def lines(self) -> int:
        return sum(source.lines for source in self.sources.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "first_day": self.first_day.isoformat(),
            "end_day": self.end_day.isoformat(),
            "organizations": self.organizations,
            "projects": self.projects,
            "sources": {name: source.to_dict() for name, source in self.sources.items()},
        }
