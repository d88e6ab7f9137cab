"""Which landing files are new or changed since a point in time (for the sensor)."""

from dataclasses import dataclass
from pathlib import Path

from odavl_pipeline.ingest.landing import SOURCES, is_landing_file, parse_day


@dataclass(frozen=True)
class LandingChanges:
    partitions: dict[str, set[str]]  # source -> day keys with new or changed files
    newest_mtime_ns: int


def changes_since(root: Path, mtime_ns: int) -> LandingChanges:
    """Files whose modification time is after `mtime_ns` (a rename into place counts)."""
    partitions: dict[str, set[str]] = {}
    newest = mtime_ns
    for source in SOURCES:
        base = root / source
        if not base.is_dir():
            continue
        for folder in base.iterdir():
            if not folder.is_dir() or parse_day(folder.name) is None:
                continue
            for path in folder.iterdir():
                if not is_landing_file(path.name):
                    continue
                stamp = path.stat().st_mtime_ns
                if stamp > mtime_ns:
                    partitions.setdefault(source, set()).add(folder.name)
                    newest = max(newest, stamp)
    return LandingChanges(partitions, newest)
