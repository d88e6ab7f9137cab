"""Which landing files are new or changed since the last look (for the sensor).

The cursor keeps the newest modification time seen and the files seen within the coarsest clock
a store keeps (S3 stamps whole seconds): a file landing in the same second as the newest one
seen is still new, and a look with nothing new finds nothing.
"""

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from odavl_pipeline.ingest.landing import scan_landing
from odavl_pipeline.ingest.zones import LandingZone

CLOCK_SLACK_NS = 2_000_000_000  # S3 and GCS stamp whole seconds, FAT two


@dataclass(frozen=True)
class LandingChanges:
    partitions: dict[str, set[str]]  # source -> day keys with new or changed files
    cursor: str  # what has been seen, for the next look

    @property
    def digest(self) -> str:
        """A short name for what has been seen: a run key for the files new since last time."""
        return hashlib.sha256(self.cursor.encode()).hexdigest()[:16]


def changes_since(landing: LandingZone | Path | str, cursor: str | None) -> LandingChanges:
    """Files new or changed (another size or modification time) since the look that gave
    `cursor`; every file when there was none."""
    newest, recent = _read(cursor)
    seen = {tuple(file) for file in recent}
    files = scan_landing(landing).files
    partitions: dict[str, set[str]] = {}
    for landed in files:
        stamp = landed.mtime_ns
        known = (landed.relative_path, landed.size, stamp) in seen
        if stamp > newest or (stamp >= newest - CLOCK_SLACK_NS and not known):
            partitions.setdefault(landed.source, set()).add(landed.day.isoformat())
    newest = max([newest, *(landed.mtime_ns for landed in files)])
    recent = sorted(
        [landed.relative_path, landed.size, landed.mtime_ns]
        for landed in files
        if landed.mtime_ns >= newest - CLOCK_SLACK_NS
    )
    return LandingChanges(partitions, json.dumps({"newest_mtime_ns": newest, "recent": recent}))


def _read(cursor: str | None) -> tuple[int, list]:
    """The newest time and the recent files of a cursor (a bare time from before they were kept)."""
    if not cursor:
        return -1, []
    if cursor.lstrip("-").isdigit():
        return int(cursor), []
    state = json.loads(cursor)
    return state["newest_mtime_ns"], state["recent"]
