"""The partitions are the landed days: one per UTC day folder that holds a landing file, registered
as days land (by `odavl-pipeline run`, the landing-zone sensor and the daily schedule), so the UI
shows what exists and a history of any age fits.

Dagster lists a dynamic partition where it was added, and a run covers a range of partitions in
that order, so the days are kept in calendar order: days older than some registered ones (a
history landed later) are added together with the registered days after them, which are removed
first (Dagster cannot move a partition; its materializations stay, recorded by key).
"""

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

import dagster as dg

LANDED_DAYS = "landed_days"
landed_days = dg.DynamicPartitionsDefinition(name=LANDED_DAYS)


@dataclass(frozen=True)
class Registration:
    """How to bring the registered keys into calendar order with new ones: keep `kept` (the
    registered keys in place), remove `removed` (the others), then add `added` (those and the new
    keys, in order)."""

    kept: list[str]
    removed: list[str]
    added: list[str]

    @property
    def keys(self) -> list[str]:
        """Every key once the change is made, in order."""
        return [*self.kept, *self.added]


def registration(registered: Sequence[str], days: Iterable[str]) -> Registration:
    """What brings `registered` (keys in their order of registration) and `days` into one list in
    calendar order, removing as few registered keys as possible: those after the first place
    where the two orders part."""
    wanted = sorted(set(registered) | set(days))
    kept = 0
    while kept < len(registered) and registered[kept] == wanted[kept]:
        kept += 1
    return Registration(
        kept=list(registered[:kept]), removed=list(registered[kept:]), added=wanted[kept:]
    )


def register_days(instance: dg.DagsterInstance, days: Iterable[date]) -> list[str]:
    """Register the days not yet known, in calendar order; return every registered key, in order."""
    change = registration(
        instance.get_dynamic_partitions(LANDED_DAYS), (day.isoformat() for day in days)
    )
    for key in change.removed:
        instance.delete_dynamic_partition(LANDED_DAYS, key)
    if change.added:
        instance.add_dynamic_partitions(LANDED_DAYS, change.added)
    return list(instance.get_dynamic_partitions(LANDED_DAYS))  # another process may add too


def partition_requests(
    change: Registration,
) -> list[dg.AddDynamicPartitionsRequest | dg.DeleteDynamicPartitionsRequest]:
    """The requests that make `change` when a sensor returns them (the daemon applies them in
    order)."""
    requests: list[dg.AddDynamicPartitionsRequest | dg.DeleteDynamicPartitionsRequest] = []
    if change.removed:
        requests.append(landed_days.build_delete_request(change.removed))
    if change.added:
        requests.append(landed_days.build_add_request(change.added))
    return requests


def contiguous_ranges(
    ordered_keys: Sequence[str], wanted: Iterable[str]
) -> list[dg.PartitionKeyRange]:
    """The fewest ranges of `ordered_keys` that cover exactly the keys of `wanted` among them."""
    taken = set(wanted)
    return [
        dg.PartitionKeyRange(keys[0], keys[-1])
        for inside, run in itertools.groupby(ordered_keys, key=taken.__contains__)
        if inside
        for keys in [list(run)]
    ]


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
