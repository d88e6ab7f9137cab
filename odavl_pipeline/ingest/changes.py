"""Which landing files are new or changed since a point in time (for the sensor)."""

from dataclasses import dataclass
from pathlib import Path

from odavl_pipeline.ingest.landing import scan_landing


@dataclass(frozen=True)
class LandingChanges:
    partitions: dict[str, set[str]]  # source -> day keys with new or changed files
    newest_mtime_ns: int


def changes_since(root: Path, mtime_ns: int) -> LandingChanges:
    """Files whose modification time is after `mtime_ns` (a rename into place counts)."""
    partitions: dict[str, set[str]] = {}
    newest = mtime_ns
    for landed in scan_landing(root).files:
        try:
            stamp = landed.path.stat().st_mtime_ns
        except OSError:  # gone since the scan
            continue
        if stamp > mtime_ns:
            partitions.setdefault(landed.source, set()).add(landed.day.isoformat())
            newest = max(newest, stamp)
    return LandingChanges(partitions, newest)
