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
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from sqlite_utils import Database

from accrochage.errors import StorageCorruptError, StorageFullError, StoreBusyError, StoreError
from accrochage.state.base import Reader, RefdataStorage, Store, StoreLocation, WriteHolder
from accrochage.state.sqlite.migrations import migrations
from accrochage.state.sqlite.reader import SqliteReader
from accrochage.state.sqlite.transaction import SqliteTransaction
from accrochage.state.sqlite.write_lock import (
    DEFAULT_WAIT_SECONDS,
    Holder,
    WriteLock,
    busy_error,
    holder,
    locked_message,
    sqlite_holder,
)

BUSY_TIMEOUT_MS = 30_000
CHECKPOINT_PAGES = 10_000
"""WAL pages before a checkpoint copies them into the database (SQLite's default: 1,000).

A page dirtied by many transactions between two checkpoints is copied once: ten times fewer
checkpoints cut ingest's bytes written by about a fifth (measured: 8.2 -> 6.7 KiB per event),
for a WAL of at most about 40 MiB. Durability is the WAL's, unchanged (`synchronous = FULL`).
"""
MIGRATION_WAIT_SECONDS = 600.0
"""How long opening a state that needs migrating waits for the write lock: another process
may be migrating it (a table rebuilt at 5,000,000 records takes a minute or more)."""
WAL_SWITCH_PAUSE = 0.01
"""Seconds between two attempts at switching a fresh database to WAL (`_write_ahead`)."""
WAL_KEPT_BYTES = 64 * 1024 * 1024
"""After a checkpoint, a WAL larger than this is truncated back (a long reader let it grow)."""


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    uri = f"file:{path}?mode=ro" if readonly else f"file:{path}"
    conn = sqlite3.connect(
        uri, uri=True, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000
    )
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    if not readonly:
        _write_ahead(conn)
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute(f"PRAGMA wal_autocheckpoint = {CHECKPOINT_PAGES}")
        conn.execute(f"PRAGMA journal_size_limit = {WAL_KEPT_BYTES}")
        # This build zeroes every freed page (SECURE_DELETE); FAST zeroes deleted rows in the
        # pages written anyway, without writing whole freed pages (dropped passages).
        conn.execute("PRAGMA secure_delete = FAST")
    return conn


def _write_ahead(conn: sqlite3.Connection) -> None:
    """WAL mode, waiting for it within the busy timeout. Switching a fresh database to WAL
    returns `database is locked` at once, without SQLite's busy handler, while another
    process switches it too: of processes started together on a new state, one in about
    seventy-five failed to open it."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if not _busy(exc) or time.monotonic() > deadline:
                raise
            time.sleep(WAL_SWITCH_PAUSE)


def _busy(exc: sqlite3.Error) -> bool:
    return (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF == sqlite3.SQLITE_BUSY


@dataclass(frozen=True, slots=True)
class SqliteLocation(StoreLocation):
    path: Path

    def open_reader(self) -> Reader:
        return SqliteReader(connect(self.path, readonly=True))


class SqliteStore(Store):
    def __init__(
        self,
        path: Path,
        *,
        always_check: bool = False,
        lock_wait_seconds: float = DEFAULT_WAIT_SECONDS,
    ) -> None:
        """`lock_wait_seconds`: how long a write waits for another process's writer before
        failing with `StoreBusyError` (`state.lock_wait`; `state/sqlite/write_lock.py`)."""
        self.path = path
        self.location = SqliteLocation(path)
        self._lock = threading.RLock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot open the state database {path}: {exc.strerror}; check paths.state "
                "and that its folder is writable"
            ) from None
        self._write_lock = WriteLock(path, lock_wait_seconds)
        try:
            self._conn = self._open(path, always_check)
        except BaseException:
            self._write_lock.close()
            raise

    def _open(self, path: Path, always_check: bool) -> sqlite3.Connection:
        """Connect, check, migrate. The integrity check is a read (a snapshot of the WAL
        database: writers go on meanwhile; it takes 30 s and more on a large state whose
        pages are not cached); only migrating takes the write lock, so that processes started
        together on a fresh state do not each try to create the tables, and an up-to-date
        state is opened without waiting for anyone."""
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            conn: sqlite3.Connection | None = None
            try:
                conn = connect(path)
                if always_check or _size(path) <= QUICK_CHECK_MAX_BYTES:
                    check_integrity(conn, path)
                if migrations.pending(Database(conn)):
                    self._migrate(conn)
                return conn
            except sqlite3.Error as exc:
                if conn is not None:
                    conn.close()
                # A fresh state opened by several processes at once answers `database is
                # locked` without the busy handler at more than one step: open it again.
                if _busy(exc) and time.monotonic() < deadline:
                    time.sleep(WAL_SWITCH_PAUSE)
                    continue
                raise storage_error(exc, path, opening=True) from None
            except BaseException:
                if conn is not None:
                    conn.close()
                raise

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """The pending migrations (none left when another process applied them meanwhile);
        waiting up to `MIGRATION_WAIT_SECONDS` for another process migrating the same state."""
        held = self._write_lock.acquire(max(self._write_lock.wait_seconds, MIGRATION_WAIT_SECONDS))
        try:
            migrations.apply(Database(conn))
        finally:
            self._write_lock.release(held)

    def write_holder(self) -> WriteHolder | None:
        if not self._write_lock.held():
            return None
        found = holder(self._write_lock.path)
        if found is None:
            return WriteHolder(None, stopped=False)
        return WriteHolder(found.pid, stopped=found.stopped)

    def stop_waiting(self) -> None:
        self._write_lock.interrupt()

    def close(self) -> None:
        self._conn.close()
        self._write_lock.close()

    @contextmanager
    def reading(self) -> Iterator[Reader]:
        """A reader for one block of queries; a SQLite error in the block surfaces as the
        storage error it means (a damaged file, a disk that cannot be read), as in a
        transaction."""
        try:
            with super().reading() as reader:
                yield reader
        except sqlite3.Error as exc:
            raise storage_error(exc, self.path) from None

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
        Readers never take it.

        A full disk, a read-only or damaged database surfaces as `StorageFullError` or
        `StorageCorruptError`; nothing of the transaction is kept.
        """
        wait = self._write_lock.wait_seconds
        deadline = time.monotonic() + wait
        if not self._lock.acquire(timeout=wait):
            raise busy_error(self.path, wait, Holder(os.getpid(), ""))
        try:
            held = self._write_lock.acquire(max(0.0, deadline - time.monotonic()))
            try:
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
        finally:
            self._lock.release()

    def _rollback(self) -> None:
        """SQLite may already have rolled back (a full disk does): then there is nothing to do."""
        if self._conn.in_transaction:
            with suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")


QUICK_CHECK_MAX_BYTES = 32 * 1024 * 1024
"""`quick_check` reads the whole file (about 0.8 s for 224 MB, 100,000 records): the services
run it at start, a one-off command only up to this size (a command's cost stays flat in the
state's size); beyond, damage is still found when a statement meets it."""


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def check_integrity(conn: sqlite3.Connection, path: Path) -> None:
    """`PRAGMA quick_check` at start: a damaged database is refused before anything uses it."""
    rows = conn.execute("PRAGMA quick_check(3)").fetchall()
    problems = [str(row[0]) for row in rows if row[0] != "ok"]
    if problems:
        raise StorageCorruptError(_corrupt_message(path, "; ".join(problems)[:300]))


_FULL = {sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_READONLY}
_CORRUPT = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}


def storage_error(exc: sqlite3.Error, path: Path, *, opening: bool = False) -> StoreError:
    """What a SQLite error means for the operator: a full or unwritable disk, a damaged file,
    or (anything else) a store error; each message says what to do."""
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    if code in _CORRUPT:
        return StorageCorruptError(_corrupt_message(path, str(exc)))
    if code in _FULL:
        return StorageFullError(
            f"the state database {path} cannot be written ({exc}): free disk space on its "
            "volume, or make it and its folder writable by this user; nothing of the "
            "interrupted operation was stored, run it again once fixed"
        )
    if code == sqlite3.SQLITE_BUSY and (stopped := sqlite_holder(path)) is not None:
        return StoreBusyError(locked_message(path, BUSY_TIMEOUT_MS / 1000, stopped))
    if opening:
        return StoreError(f"cannot open the state database {path}: {exc}; check paths.state")
    return StoreError(f"the state database {path} refused an operation: {exc}")


def _corrupt_message(path: Path, detail: str) -> str:
    return (
        f"the state database {path} is damaged ({detail}): stop every accrochage process, "
        "keep a copy of the file, and restore the last backup (or try `sqlite3 STATE "
        "'.recover'` on the copy)"
    )
