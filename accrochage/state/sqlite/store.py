"""The SQLite store: the source of truth, including how far each input was read.

One writer connection per process, and one writer at a time across processes; readers open
their own connections so that queries never wait behind ingestion. WAL, a busy timeout for
other processes, `synchronous=FULL` so that an acknowledged event survives a power cut.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from pathlib import Path

from accrochage.errors import StoreError
from accrochage.heap import collections_deferred
from accrochage.state.base import (
    Reader,
    RefdataStorage,
    Store,
    WriteHolder,
    WriteTime,
)
from accrochage.state.sqlite.checkpoint import Checkpoints
from accrochage.state.sqlite.connection import connect, storage_error, told_if_changed
from accrochage.state.sqlite.cut_lock import CutLock
from accrochage.state.sqlite.location import SqliteLocation
from accrochage.state.sqlite.opening import open_for_reading, open_for_writing
from accrochage.state.sqlite.reader import SqliteReader
from accrochage.state.sqlite.state_path import (
    file_identity,
    real_state_path,
    replaced_error,
    same_file,
)
from accrochage.state.sqlite.transaction import SqliteTransaction
from accrochage.state.sqlite.write_lock import (
    DEFAULT_WAIT_SECONDS,
    Holder,
    WriteLock,
    busy_error,
    holder,
)

LET_IN_SECONDS = 0.002


class SqliteStore(Store):
    def __init__(
        self,
        path: Path,
        *,
        always_check: bool = False,
        lock_wait_seconds: float = DEFAULT_WAIT_SECONDS,
        read_only: bool = False,
    ) -> None:
        """`lock_wait_seconds`: how long a write waits for another process's writer before
        failing with `StoreBusyError` (`state.lock_wait`; `state/sqlite/write_lock.py`).
        `read_only`: for a command that only reads; it writes nothing, not even the lock file,
        so a user who may only read the state's folder runs it, and never migrates."""
        path = real_state_path(path)
        self.path = path
        self.location = SqliteLocation(path)
        self._lock = threading.RLock()
        self.read_only = read_only
        self._cut_lock = CutLock(path, lock_wait_seconds)
        if read_only:
            self._write_lock = WriteLock(path, lock_wait_seconds, read_only=True)
            self._conn = open_for_reading(path, always_check)
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot open the state database {path}: {exc.strerror}; check paths.state "
                "and that its folder is writable"
            ) from None
        self._write_lock = WriteLock(path, lock_wait_seconds)
        try:
            self._conn = open_for_writing(path, always_check, self._write_lock)
            self._file = file_identity(path)
            self._checkpoints = Checkpoints(self._conn, path)
        except BaseException:
            self._write_lock.close()
            raise

    def write_holder(self) -> WriteHolder | None:
        if not self._write_lock.held():
            return None
        found = holder(self._write_lock.path)
        if found is None:
            return WriteHolder(None, stopped=False)
        return WriteHolder(found.pid, stopped=found.stopped)

    def let_writers_in(self) -> None:
        # `flock` is not fair: the writer its release wakes may still be off a core when this
        # process takes the lock again, and wait a second part (318 ms instead of 160 in
        # `bench.cut`'s supersession). Sleeping gives it the core and the lock first.
        time.sleep(LET_IN_SECONDS)

    def stop_waiting(self) -> None:
        self._write_lock.interrupt()
        self._cut_lock.interrupt()

    def cutting(self) -> AbstractContextManager[None]:
        return nullcontext() if self.read_only else self._cut_lock.held()

    @property
    def waiting_stopped(self) -> bool:
        return self._write_lock.interrupted()

    def close(self) -> None:
        self._conn.close()
        self._write_lock.close()
        self._cut_lock.close()

    @contextmanager
    def reading(self) -> Iterator[Reader]:
        """A reader for one block of queries; a SQLite error in the block surfaces as the
        storage error it means (a damaged file, a disk that cannot be read), as in a
        transaction. A reader of the file as it is (a user who may not write in the state's
        folder) that a writer changed meanwhile fails as such, never as a damaged state."""
        try:
            conn = connect(self.path, readonly=True)
        except sqlite3.Error as exc:
            raise storage_error(exc, self.path) from None
        reader = SqliteReader(conn)
        try:
            with told_if_changed(conn, self.path):
                yield reader
        except sqlite3.Error as exc:
            raise storage_error(exc, self.path) from None
        finally:
            reader.close()

    def refdata(self) -> RefdataStorage:
        from accrochage.state.sqlite.refdata import SqliteRefdata

        return SqliteRefdata(self.path, self.transaction)

    @contextmanager
    def transaction(self) -> Iterator[SqliteTransaction]:
        """One write transaction (BEGIN IMMEDIATE ... COMMIT), one writer at a time.

        Writers of every process first take the state's write lock (`write_lock.py`: the
        kernel wakes a waiting writer the moment it is free, where SQLite's busy handler
        would sleep up to 100 ms between retries; a service's writer behind a flush in
        another process lost half its time so), for at most `lock_wait_seconds` in all,
        the wait for this process's other threads included (`StoreBusyError` beyond).
        Readers never take it. Inside it, the collector waits (`heap.collections_deferred`);
        the WAL is copied back into the file after it (`checkpoint.py`). The observer
        (`observe_writes`) is told how long it waited and held the lock, once it let go.

        A full disk, a read-only or damaged database surfaces as `StorageFullError` or
        `StorageCorruptError`; nothing of the transaction is kept.
        """
        if self.read_only:
            raise StoreError(
                f"the state database {self.path} was opened for reading only: this command "
                "does not write"
            )
        wait = self._write_lock.wait_seconds
        asked = time.monotonic()
        if not self._lock.acquire(timeout=wait):
            self._tell(asked, None)
            raise busy_error(self.path, wait, Holder(os.getpid(), ""))
        try:
            with collections_deferred():  # from before the lock: entering it may collect
                try:
                    held = self._write_lock.acquire(max(0.0, asked + wait - time.monotonic()))
                except BaseException:
                    self._tell(asked, None)
                    raise
                taken = time.monotonic()
                try:
                    self._still_the_state()
                    self._checkpoints.before_begin()
                    self._conn.execute("BEGIN IMMEDIATE")
                    try:
                        yield SqliteTransaction(self._conn)
                        self._conn.execute("COMMIT")
                    except BaseException:
                        self._rollback()
                        raise
                except sqlite3.Error as exc:
                    raise storage_error(exc, self.path) from None
                finally:
                    self._write_lock.release(held)
                    self._tell(asked, taken)
            self._checkpoints.after_commit()
        finally:
            self._lock.release()

    def _tell(self, asked: float, taken: float | None) -> None:
        """The write's `WriteTime` to the observer: asked for the state at `asked`, held it
        from `taken` (None: never) to now."""
        if self.write_observer is None:
            return
        now = time.monotonic()
        if taken is None:
            self.write_observer(WriteTime(now - asked, None))
        else:
            self.write_observer(WriteTime(taken - asked, now - taken))

    def _still_the_state(self) -> None:
        """Refuse to write once the file at `path` is no longer the one this store opened
        (`state_path.replaced_error`); checked under the write lock, which `restore` holds
        while it swaps the files."""
        if not same_file(self.path, self._file):
            raise replaced_error(self.path)

    def _rollback(self) -> None:
        """SQLite may already have rolled back (a full disk does): then there is nothing to do."""
        if self._conn.in_transaction:
            with suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")
