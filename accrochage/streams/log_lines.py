"""One log line every few seconds for what may happen at every request: a refused
connection, a server error, a platform over its budget. A line per occurrence let a flood
write the log as fast as it came (into a log that may share the state's disk); each line
here says how many occurrences it stands for."""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class LinesEvery:
    """At most one line per key every `seconds`; not thread-safe (its callers hold theirs)."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._seconds = seconds
        self._clock = clock
        self._said_at: dict[str, float] = {}
        self._unsaid: dict[str, int] = {}

    def due(self, key: str, occurrences: int = 1) -> int | None:
        """None: not this time (counted); otherwise the occurrences this line is for."""
        count = self._unsaid.get(key, 0) + occurrences
        now = self._clock()
        if now - self._said_at.get(key, -math.inf) < self._seconds:
            self._unsaid[key] = count
            return None
        self._said_at[key], self._unsaid[key] = now, 0
        return count
