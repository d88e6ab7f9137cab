"""Seeded random streams and the small sampling helpers every generator shares.

Every stream is a `random.Random` seeded with a string derived from the option seed, so
the same options give the same draws whatever the process or its string hashing.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterable

NAMESPACE = "odavl-synthetic/v1"


def seeded_random(seed: int, *purpose: str) -> random.Random:
    """The random stream for one purpose (e.g. "sites", org, project) under one seed."""
    return random.Random("/".join((NAMESPACE, str(seed), *purpose)))


def cumulative(weights: Iterable[float]) -> tuple[tuple[float, ...], float]:
    """Cumulative weights for bisect, the last one infinite so rounding never overflows."""
    running = list(itertools.accumulate(weights))
    total = running[-1]
    running[-1] = float("inf")
    return tuple(running), total


def stochastic_round(rng: random.Random, value: float) -> int:
    """`value` rounded down or up at random, so the mean stays `value`."""
    whole = int(value)
    return whole + (1 if rng.random() < value - whole else 0)


def uuid4(getrandbits: Callable[[int], int]) -> str:
    """A version-4 UUID string from the seeded stream (same bits as uuid.UUID(version=4))."""
    number = getrandbits(128)
    number = (number & ~(0xF000 << 64) | (0x4000 << 64)) & ~(0xC000 << 48) | (0x8000 << 48)
    digits = f"{number:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"
