"""The SQLite store: the source of truth, including how far each input was read.

One writer connection per process, and one writer at a time across processes; readers open
their own connections so that queries never wait behind ingestion. WAL, a busy timeout for
other processes, `synchronous=FULL` so that an acknowledged event survives a power cut.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlite_utils import Database

from accrochage.errors import StoreError
from accrochage.state.base import Reader, Store, StoreLocation
from accrochage.state.sqlite.migrations import migrations
from accrochage.state.sqlite.reader import SqliteReader
from accrochage.state.sqlite.transaction import SqliteTransaction

BUSY_TIMEOUT_MS = 30_000


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    uri = f"file:{path}?mode=ro" if readonly else f"file:{path}"
    conn = sqlite3.connect(
        uri, uri=True, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000
    )
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    if not readonly:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
    return conn


@dataclass(frozen=True, slots=True)
class SqliteLocation(StoreLocation):
    path: Path

    def open_reader(self) -> Reader:
        return SqliteReader(connect(self.path, readonly=True))


class SqliteStore(Store):
    def __init__(self, path: Path) -> None:
        self.path = path
        self.location = SqliteLocation(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = connect(path)
            migrations.apply(Database(self._conn))
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(
                f"cannot open the state database {path}: {exc}; check paths.state"
            ) from None
        self._lock = threading.RLock()
        lock_path = path.with_name(path.name + ".write-lock")
        self._write_lock = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def close(self) -> None:
        self._conn.close()
        os.close(self._write_lock)

    @contextmanager
    def transaction(self) -> Iterator[SqliteTransaction]:
        """One write transaction (BEGIN IMMEDIATE ... COMMIT), one writer at a time.

        Writers of every process first take an exclusive `flock` on `<state>.write-lock`: the
        kernel wakes a waiting writer the moment the lock is free, where SQLite's busy handler
        would sleep up to 100 ms between retries (a service's writer behind a flush in
        another process lost half its time so). Readers never take it.
        """
        with self._lock:
            fcntl.flock(self._write_lock, fcntl.LOCK_EX)
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield SqliteTransaction(self._conn)
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
            finally:
                fcntl.flock(self._write_lock, fcntl.LOCK_UN)
