"""The one clock: every rule that needs "now" asks `now()`, and PostgreSQL asks `odavl_now()`.

In production both read the system clock. Tests move them together, in this process, in the
processes it starts (command-line runs, Dagster's step processes, servers) and in PostgreSQL,
with one test-only variable: `ODAVL_CLOCK_OFFSET_SECONDS`, a number of seconds added to the
system clock (docs/testing.md, "The clock"). Time still flows under an offset, so durations,
timeouts and the order of writes behave as they do in production. `time_machine` moves
`now()` in this process alone.
"""

from datetime import UTC, date, datetime, timedelta

from odavl_pipeline.settings import CLOCK_OFFSET_VARIABLE as OFFSET_VARIABLE
from odavl_pipeline.settings import clock_offset_text

# PostgreSQL's side of the offset: a setting of each connection, read by `odavl_now()`
DATABASE_SETTING = "odavl.clock_offset"
# the offsets the clock takes: every instant it can reach stays within datetime's years
LARGEST_OFFSET = timedelta(days=365 * 1000)


def now() -> datetime:
    """The current instant, in UTC."""
    return datetime.now(UTC) + offset()


def today() -> date:
    """The current UTC day."""
    return now().date()


def offset() -> timedelta:
    """How far the clock is moved from the system clock: zero unless a test moved it."""
    return _parse(clock_offset_text())


def offset_to(instant: datetime, system_now: datetime | None = None) -> timedelta:
    """The offset that makes the clock read `instant` at the system time `system_now`."""
    if instant.tzinfo is None:
        raise ValueError(f"the clock takes an instant with a time zone, not {instant}")
    return instant - (system_now or datetime.now(UTC))


def environment(delta: timedelta) -> dict[str, str]:
    """The variable that moves the clock by `delta` in a process started with it."""
    _check(delta)
    return {OFFSET_VARIABLE: repr(delta.total_seconds())}


def database_options() -> str | None:
    """The connection option that gives PostgreSQL's `odavl_now()` the same offset, or None."""
    delta = offset()
    if not delta:
        return None
    return f"--{DATABASE_SETTING}={delta.total_seconds()!r}"


_parsed: dict[str, timedelta] = {}


def _parse(text: str) -> timedelta:
    if text not in _parsed:
        try:
            delta = timedelta(seconds=float(text)) if text.strip() else timedelta()
        except (ValueError, OverflowError):
            raise ValueError(
                f"{OFFSET_VARIABLE} must be a number of seconds, not {text!r}"
            ) from None
        _parsed[text] = _check(delta)
    return _parsed[text]


def _check(delta: timedelta) -> timedelta:
    if abs(delta) > LARGEST_OFFSET:
        raise ValueError(
            f"{OFFSET_VARIABLE} must move the clock by at most {LARGEST_OFFSET.days} days"
        )
    return delta
