"""When a process tries again to write a batch whose file failed.

A file fails the XSD for what its batch holds (a record, the certifier's identifiers, the
configured XSD): written again from the same batch in the same process, it fails the same
way. The service's batch timer wrote each failed batch again at every tick: a batch at the
CDC's size took seconds of CPU every few seconds, forever, and other certifiers' new files
waited behind it. A failed batch is tried again after `FIRST_WAIT`, then twice as long each
time up to `LONGEST_WAIT`, and after the batches never tried. A new process (`flush`, a
restart after a configuration change) tries it at once; a record that changes takes it out
(the batch is superseded and the record cut again).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from accrochage.models.batch import FrozenBatch

FIRST_WAIT = 60.0
LONGEST_WAIT = 900.0


class FailedRetries:
    def __init__(self, seconds: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._next: dict[str, tuple[float, float]] = {}
        """batch id -> (when it may be tried again, the wait after its next failure)."""
        self._errors: dict[str, str] = {}

    def to_try(self, batches: Sequence[FrozenBatch]) -> tuple[list[FrozenBatch], list[FrozenBatch]]:
        """The batches to write now: those this process never saw fail, and, to write after
        every other (the ones cut now included), the failed ones whose wait is over.

        `batches` are all those still to write: a failed batch not among them is gone
        (superseded by a correction, excluded from, written by another process) and is
        forgotten, or the batch timer would say it failing for as long as this process runs."""
        present = {b.batch_id for b in batches}
        for gone in [batch_id for batch_id in self._next if batch_id not in present]:
            self.written(gone)
        now = self.seconds()
        fresh = [b for b in batches if b.batch_id not in self._next]
        again = [
            b for b in batches if b.batch_id in self._next and self._next[b.batch_id][0] <= now
        ]
        return fresh, again

    def failed(self, batch_id: str, error: str) -> None:
        wait = self._next.get(batch_id, (0.0, FIRST_WAIT))[1]
        self._next[batch_id] = (self.seconds() + wait, min(wait * 2, LONGEST_WAIT))
        self._errors[batch_id] = error

    def written(self, batch_id: str) -> None:
        self._next.pop(batch_id, None)
        self._errors.pop(batch_id, None)

    def held(self) -> dict[str, str]:
        """The failed batches held back now, with their last error: still failing (the
        batch timer says a failure once while it lasts, not at each try)."""
        now = self.seconds()
        return {b: self._errors[b] for b, (at, _) in self._next.items() if at > now}

    def waiting(self) -> int:
        """Failed batches held back now."""
        now = self.seconds()
        return sum(1 for at, _ in self._next.values() if at > now)
