"""Timing a marts build from outside: the hooks `refresh_marts(..., timer=...)` calls.

The builder reports each of its steps (`build`, `usage`, `billing`, …; a step run inside
another is reported inside it) and each DuckDB statement it runs, inside the step that runs it,
to the `StepTimer` it was given. Without one the hooks do nothing. The marts benchmark
(bench/marts_bench.py) times the builder so.
"""

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from functools import wraps
from typing import ParamSpec, Protocol, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


class StepTimer(Protocol):
    """What the builder tells a timer: two context managers, entered and exited around the work."""

    def step(self, name: str) -> AbstractContextManager[object]:
        """Around one step of the build (steps nest)."""
        ...

    def statement(self, sql: str) -> AbstractContextManager[object]:
        """Around one DuckDB statement of the current step; `sql` is its text, values bound apart."""
        ...


_timer: ContextVar[StepTimer | None] = ContextVar("marts_step_timer", default=None)


@contextmanager
def timed_by(timer: StepTimer | None) -> Iterator[None]:
    """Report the steps and statements run in this block (in this context) to `timer`."""
    token = _timer.set(timer)
    try:
        yield
    finally:
        _timer.reset(token)


def step(name: str) -> AbstractContextManager[object]:
    """The context of a step named `name`: timed when a timer is set, nothing otherwise."""
    timer = _timer.get()
    return nullcontext() if timer is None else timer.step(name)


def statement(sql: str) -> AbstractContextManager[object]:
    """The context of running the DuckDB statement `sql`: timed when a timer is set."""
    timer = _timer.get()
    return nullcontext() if timer is None else timer.statement(sql)


def timed(name: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator: each call of the function is the step `name`."""

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        @wraps(function)
        def call(*args: P.args, **kwargs: P.kwargs) -> R:
            with step(name):
                return function(*args, **kwargs)

        return call

    return decorate
