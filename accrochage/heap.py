"""The cyclic garbage collector, set for processes that stream events.

CPython runs a young collection each time the tracked objects allocated outnumber those freed
by 700, and a full one, walking every tracked object, when enough have survived. A group of
events crossing a process (thousands of events, tens of thousands of objects that reference
counting frees once the group is stored) outgrew that threshold many times over: each group
in flight was collected young, then promoted, then walked again by full collections, for
about a tenth of `ingest`'s CPU time. With the young threshold above a group's size, a
process that streams only collects when garbage really accumulates.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_THRESHOLD = 50_000
"""Above the objects a process holds in flight while it streams (tens of thousands in
`ingest`'s main process); measured in bench/HISTORY.md (issue 13, session 8): 10,000 cost
3.5 % more CPU end to end, 200,000 saved 2.4 % more and lets cyclic garbage wait longer."""


def settle() -> None:
    """Called once by each process of the product when it has built what it keeps (the
    `accrochage` command, each helper process): the young generation collected less often."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)


class _Deferral:
    """The collector's automatic runs held back while any thread of the process is inside a
    `collections_deferred` block; re-enabled by the last one out, if they were on before."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._inside = 0
        self._was_enabled = False

    def enter(self) -> None:
        with self._guard:
            if self._inside == 0:
                self._was_enabled = gc.isenabled()
                gc.disable()
            self._inside += 1

    def leave(self) -> None:
        with self._guard:
            self._inside -= 1
            if self._inside == 0 and self._was_enabled:
                gc.enable()


_deferral = _Deferral()


@contextmanager
def collections_deferred() -> Iterator[None]:
    """No automatic collection inside the block; one that fell due meanwhile runs at the
    first allocation after it. For the state's write lock: a full collection of a process
    holding a large batch's plan walks millions of objects (40-80 ms), and inside the lock
    every other process's writer waited for it (bench/HISTORY.md, session 52). Reference
    counting still frees all but cyclic garbage meanwhile."""
    _deferral.enter()
    try:
        yield
    finally:
        _deferral.leave()
