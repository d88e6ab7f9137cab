"""Setting the clock in tests, and the calendar tier's instants (docs/testing.md, "The clock").

The clock (odavl_pipeline/clock.py) is moved by one variable that this process, the processes a
test starts and PostgreSQL's `odavl_now()` all read, so a test sets it before it starts anything.
Fixtures of a wider scope than a test set it with `clock_set_to`.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest

from odavl_pipeline import clock

# The calendar tier: a test that takes the fixture `calendar_now` runs once per instant, with the
# clock set there; None is the clock as it is (the system's, or ODAVL_TEST_NOW's).
CALENDAR_INSTANTS = (
    "2026-12-31T23:59:30Z",  # thirty seconds before a year ends: the grace crosses midnight
    "2027-01-01T00:00:00Z",  # the first instant of a year
    "2027-01-31T23:59:59Z",  # the last second of a 31-day month
    "2027-02-28T12:00:00Z",  # the last day of a 28-day February
    "2028-02-29T12:00:00Z",  # a leap day
    "2031-06-15T08:00:00Z",  # years ahead, mid-month
    None,  # the clock as it is
)


def instant(text: str) -> datetime:
    """An RFC 3339 instant with its offset (`2027-01-31T23:59:59Z`), in UTC."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"an instant needs its offset (Z or +hh:mm): {text!r}")
    return moment.astimezone(UTC)


class ClockSetter:
    """Moves the clock until `monkeypatch` is undone: after `setter(instant)` it reads `instant`,
    and time flows on from there."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.monkeypatch = monkeypatch

    def __call__(self, moment: datetime | str) -> datetime:
        moment = instant(moment) if isinstance(moment, str) else moment.astimezone(UTC)
        for key, value in clock.environment(clock.offset_to(moment)).items():
            self.monkeypatch.setenv(key, value)
        return moment


@contextmanager
def clock_set_to(moment: datetime | str) -> Iterator[datetime]:
    """The clock set to `moment` within the block (for fixtures of a module's or session's scope)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield ClockSetter(monkeypatch)(moment)
