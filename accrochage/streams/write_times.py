"""A writer process's write-lock times, held until its next answer carries them to the process
that serves `/metrics` (as its events' tallies travel: `streams/metrics.py`).

The store tells each transaction's `WriteTime` (`Store.observe_writes`); every transaction of
a writer process stores groups it then answers, so the buffer empties at each answer. A
bound keeps it finite should answers stop (a serving end gone): what is over it is counted,
and told as one line of the log when the buffer next empties."""

from __future__ import annotations

import logging
import threading

from accrochage.state.base import WriteTime

log = logging.getLogger("accrochage.writer")
KEPT = 10_000
"""Times held at most between two answers (a few a second are made)."""

Shipped = list[tuple[float, float | None]]
"""`WriteTime`s as plain tuples: cheaper to pickle with an answer."""


class WriteTimes:
    """The buffer: `add` is the store's observer, `ship` empties it into an answer."""

    def __init__(self, kept: int = KEPT) -> None:
        self._kept = kept
        self._times: Shipped = []
        self._over = 0
        self._lock = threading.Lock()

    def add(self, time: WriteTime) -> None:
        with self._lock:
            if len(self._times) < self._kept:
                self._times.append((time.waited, time.held))
            else:
                self._over += 1

    def ship(self) -> Shipped:
        with self._lock:
            times, self._times = self._times, []
            over, self._over = self._over, 0
        if over:
            log.warning("%d write-lock time(s) were not counted: no answer took them", over)
        return times
