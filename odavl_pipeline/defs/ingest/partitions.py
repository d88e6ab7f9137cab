"""The partitions are the landed days: one per UTC day folder that holds a landing file, registered
as days land (by `odavl-pipeline run`, the landing-zone sensor and the daily schedule), so the UI
shows what exists and a history of any age fits.

A run covers a range of partitions in their order of registration, which is the order of the days
as long as they land in order; days registered out of order (an older history landed later) make
more than one range, each a run of its own.
"""

from collections.abc import Iterable
from datetime import date

import dagster as dg

landed_days = dg.DynamicPartitionsDefinition(name="landed_days")


def register_days(instance: dg.DagsterInstance, days: Iterable[date]) -> list[str]:
    """Register the days not yet known, oldest first; return every registered key, in order."""
    keys = instance.get_dynamic_partitions(landed_days.name)
    missing = sorted({day.isoformat() for day in days} - set(keys))
    if not missing:
        return keys
    instance.add_dynamic_partitions(landed_days.name, missing)
    return instance.get_dynamic_partitions(landed_days.name)  # another process may add too


def contiguous_ranges(ordered_keys: list[str], wanted: Iterable[str]) -> list[dg.PartitionKeyRange]:
    """The fewest ranges of `ordered_keys` that cover exactly the keys of `wanted` among them."""
    wanted = set(wanted)
    ranges, start, previous = [], None, None
    for key in ordered_keys:
        if key in wanted:
            start = start or key
            previous = key
        elif start is not None:
            ranges.append(dg.PartitionKeyRange(start, previous))
            start = None
    if start is not None:
        ranges.append(dg.PartitionKeyRange(start, previous))
    return ranges


def day_ranges(instance: dg.DagsterInstance, days: Iterable[date]) -> list[dg.PartitionKeyRange]:
    """Register `days` and return the partition ranges that cover exactly them."""
    days = list(days)
    return contiguous_ranges(register_days(instance, days), {day.isoformat() for day in days})


def range_tags(key_range: dg.PartitionKeyRange) -> dict[str, str]:
    """The tags of a run over `key_range` (Dagster's own single-run backfill tags)."""
    return {
        "dagster/asset_partition_range_start": key_range.start,
        "dagster/asset_partition_range_end": key_range.end,
    }
