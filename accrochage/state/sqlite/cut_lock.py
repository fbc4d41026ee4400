"""`<state>.cut-lock`: no batch is read to be written while a flusher is still cutting it.

A batch of more members than `streams.cut_group.CUT_PER_TRANSACTION` is cut in several write
transactions, so that the writer of a service (HTTP, Kafka) waits for one part at most, never
for the whole batch. Between two of them the batch is in the state, `cut`, with part of its
members. A flusher of another process that read it then would write its file without the
others, which would stay `batched` in a written batch: never sent. So the flusher cutting such a
batch holds this lock from the batch's first transaction to its last, and every flusher holds
it while it reads the batches to write. A flusher killed midway lets go with its death (the
kernel's `flock`): what it had cut is a whole batch, whose file the next flush writes, and the
members it had not reached are still pending, cut at the next tick.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from accrochage.state.sqlite.write_lock import Holder, WriteLock, busy_error


class CutFileLock(WriteLock):
    """The `flock` on `<state>.cut-lock`, waited for as the write lock's is."""

    SUFFIX = ".cut-lock"


class CutLock:
    """Held by one thread of every process at a time; its file created at the first use
    (a state only read, or never flushed, has none)."""

    def __init__(self, state: Path, wait_seconds: float) -> None:
        self.state = state
        self.wait_seconds = wait_seconds
        self._threads = threading.Lock()
        self._lock: CutFileLock | None = None
        self._interrupted = False

    @contextmanager
    def held(self) -> Iterator[None]:
        """`StoreBusyError` after `wait_seconds` behind another flusher (a stopped one)."""
        deadline = time.monotonic() + self.wait_seconds
        if not self._threads.acquire(timeout=self.wait_seconds):
            raise busy_error(self.state, self.wait_seconds, Holder(os.getpid(), ""))
        try:
            lock = self._opened()
            fd = lock.acquire(max(0.0, deadline - time.monotonic()))
            try:
                yield
            finally:
                lock.release(fd)
        finally:
            self._threads.release()

    def _opened(self) -> WriteLock:
        if self._lock is None:
            self._lock = CutFileLock(self.state, self.wait_seconds)
            if self._interrupted:
                self._lock.interrupt()
        return self._lock

    def interrupt(self) -> None:
        """As `WriteLock.interrupt`: a service being stopped waits for no other flusher."""
        self._interrupted = True
        if self._lock is not None:
            self._lock.interrupt()

    def close(self) -> None:
        if self._lock is not None:
            self._lock.close()
