"""Progress lines for long work, at most one every few seconds: a history of thousands of files
reports how far it is without writing an event per file."""

import time
from collections.abc import Callable


class Throttled:
    """Pass a message on to `emit` at most once every `interval` seconds; drop the others."""

    def __init__(self, emit: Callable[[str], None], interval: float = 5.0):
        self.emit = emit
        self.interval = interval
        self.last = float("-inf")

    def __call__(self, message: str) -> None:
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            self.emit(message)
