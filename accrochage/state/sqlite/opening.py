"""Opening a SQLite state: connect and check it, then migrate it (a writer) or refuse one
that needs migrating (a reader). The store (`store.py`) keeps the connection."""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

from sqlite_utils import Database

from accrochage.state.sqlite.connection import (
    BUSY_TIMEOUT_MS,
    QUICK_CHECK_MAX_BYTES,
    WAL_SWITCH_PAUSE,
    check_integrity,
    connect,
    file_size,
    is_busy,
    storage_error,
)
from accrochage.state.sqlite.migrations import migrations
from accrochage.state.sqlite.upgrade import (
    needs_migration,
    pending_migrations,
    serving_pid,
)
from accrochage.state.sqlite.write_lock import WriteLock

log = logging.getLogger("accrochage.state")
MIGRATION_WAIT_SECONDS = 600.0
"""How long opening a state that needs migrating waits for the write lock: another process
may be migrating it (a table rebuilt at 5,000,000 records takes a minute or more)."""


def open_for_writing(path: Path, always_check: bool, write_lock: WriteLock) -> sqlite3.Connection:
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
            if always_check or file_size(path) <= QUICK_CHECK_MAX_BYTES:
                check_integrity(conn, path)
            pending = pending_migrations(conn, path)
            if pending:
                serving = serving_pid(path)
                if serving is not None:
                    raise needs_migration(path, pending, serving)
                _migrate(conn, path, write_lock)
            return conn
        except sqlite3.Error as exc:
            if conn is not None:
                conn.close()
            # A fresh state opened by several processes at once answers `database is
            # locked` without the busy handler at more than one step: open it again.
            if is_busy(exc) and time.monotonic() < deadline:
                time.sleep(WAL_SWITCH_PAUSE)
                continue
            raise storage_error(exc, path, opening=True) from None
        except BaseException:
            if conn is not None:
                conn.close()
            raise


def open_for_reading(path: Path, always_check: bool) -> sqlite3.Connection:
    """Connect read-only, check; a state to migrate is refused (`StateNeedsMigration`)."""
    try:
        conn = connect(path, readonly=True)
    except sqlite3.Error as exc:
        raise storage_error(exc, path, opening=True) from None
    try:
        if always_check or file_size(path) <= QUICK_CHECK_MAX_BYTES:
            check_integrity(conn, path)
        pending = pending_migrations(conn, path)
        if pending:
            raise needs_migration(path, pending, serving_pid(path))
        return conn
    except sqlite3.Error as exc:
        conn.close()
        raise storage_error(exc, path, opening=True) from None
    except BaseException:
        conn.close()
        raise


def _migrate(conn: sqlite3.Connection, path: Path, write_lock: WriteLock) -> None:
    """The pending migrations (none left when another process applied them meanwhile);
    waiting up to `MIGRATION_WAIT_SECONDS` for another process migrating the same state."""
    held = write_lock.acquire(max(write_lock.wait_seconds, MIGRATION_WAIT_SECONDS))
    try:
        db = Database(conn)
        fresh = not migrations.applied(db)
        pending = pending_migrations(conn, path)
        migrations.apply(db)
    finally:
        write_lock.release(held)
    if pending and not fresh:  # an upgrade leaves a trace in the service's log
        log.info(
            "migrated the state %s: %d migration(s) applied (%s)",
            path,
            len(pending),
            ", ".join(pending),
        )
