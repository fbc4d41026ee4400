"""Connections to the state's SQLite database, and what its errors mean for the operator.

WAL, a busy timeout for other processes, `synchronous=FULL` so that an acknowledged event
survives a power cut; readers that never write, even where they may not.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from accrochage.errors import StorageCorruptError, StorageFullError, StoreBusyError, StoreError
from accrochage.private_files import create_private
from accrochage.state.sqlite.write_lock import locked_message, sqlite_holder

BUSY_TIMEOUT_MS = 30_000
CHECKPOINT_PAGES = 10_000
"""WAL pages before a checkpoint copies them into the database (SQLite's default: 1,000).

A page dirtied by many transactions between two checkpoints is copied once: ten times fewer
checkpoints cut ingest's bytes written by about a fifth (measured: 8.2 -> 6.7 KiB per event),
for a WAL of about 40 MiB. Durability is the WAL's, unchanged (`synchronous = FULL`). A store's
writer runs that checkpoint once it has let go of the write lock (`checkpoint.py`).
"""
WAL_SWITCH_PAUSE = 0.01
"""Seconds between two attempts at switching a fresh database to WAL (`_write_ahead`)."""
WAL_KEPT_BYTES = 64 * 1024 * 1024
"""After a checkpoint, a WAL larger than this is truncated back (a long reader let it grow)."""


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection to the state; `readonly`: one that never writes, also for a user who may
    not write in the state's folder (`_unshared_reading`)."""
    uri = f"file:{path}?mode=ro" if readonly else f"file:{path}"
    if not readonly:
        _private_if_new(path)
    conn = sqlite3.connect(
        uri, uri=True, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000
    )
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    if readonly:
        return _unshared_reading(conn, path)
    _write_ahead(conn)
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute(f"PRAGMA wal_autocheckpoint = {CHECKPOINT_PAGES}")
    conn.execute(f"PRAGMA journal_size_limit = {WAL_KEPT_BYTES}")
    # This build zeroes every freed page (SECURE_DELETE); FAST zeroes deleted rows in the
    # pages written anyway, without writing whole freed pages (dropped passages).
    conn.execute("PRAGMA secure_delete = FAST")
    return conn


def _private_if_new(path: Path) -> None:
    """A new state is created readable by its owner and group only (`private_files`); any
    failure here (no such folder) is left for SQLite to report as it always did."""
    with suppress(OSError):
        create_private(path)


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
            if not is_busy(exc) or time.monotonic() > deadline:
                raise
            time.sleep(WAL_SWITCH_PAUSE)


class UnsharedConnection(sqlite3.Connection):
    """A read-only connection to the database file read as it is (`immutable`): it sees no
    writer's lock, so a writer that changes the file meanwhile is found after the fact, by the
    file's identity, size and time (`changed_under`)."""

    path: Path
    seen: tuple[int, int, int]


def _unshared_reading(conn: sqlite3.Connection, path: Path) -> sqlite3.Connection:
    """A reader of a WAL database needs its `-shm` file; with no writer connected there is
    none, and a user who may not write in the state's folder (a monitoring user) cannot create
    it (`SQLITE_READONLY_DIRECTORY`). With no `-wal` either, the database file holds every
    commit: it is read as it is (`immutable`). A writer starting meanwhile writes its WAL
    first: the file read does not change unless that writer copies its WAL back (a checkpoint,
    at the latest when it closes) during the read; the reader then says the state changed
    while it read (`changed_under`), never that it is damaged."""
    try:
        conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        return conn
    except sqlite3.OperationalError as exc:
        code = primary_code(exc)
        wal = path.with_name(path.name + "-wal")
        if code not in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN) or wal.exists():
            conn.close()
            raise
    conn.close()
    seen = fingerprint(path)
    unshared = sqlite3.connect(
        f"file:{path}?mode=ro&immutable=1",
        uri=True,
        isolation_level=None,
        check_same_thread=False,
        factory=UnsharedConnection,
    )
    assert isinstance(unshared, UnsharedConnection)
    unshared.path, unshared.seen = path, seen
    unshared.row_factory = sqlite3.Row
    return unshared


def fingerprint(path: Path) -> tuple[int, int, int]:
    status = path.stat()
    return status.st_ino, status.st_size, status.st_mtime_ns


def changed_under(conn: sqlite3.Connection) -> bool:
    """Whether a connection that read the file as it is (`UnsharedConnection`) may have read
    it while a writer changed it: what it read then may mix two states, or look damaged."""
    if not isinstance(conn, UnsharedConnection):
        return False
    try:
        return fingerprint(conn.path) != conn.seen
    except OSError:
        return True


@contextmanager
def told_if_changed(conn: sqlite3.Connection, path: Path) -> Iterator[None]:
    """A block of reads on `conn`: when it read the file as it is and a writer changed the
    file meanwhile, the block fails with `changed_error`, whatever SQLite said or did not."""
    try:
        yield
    except sqlite3.Error:
        if changed_under(conn):
            raise changed_error(path) from None
        raise
    if changed_under(conn):
        raise changed_error(path)


def changed_error(path: Path) -> StoreError:
    return StoreError(
        f"the state database {path} changed while this command read it: this user may not "
        "write in the state's folder, so it reads the file without the writers' coordination "
        "when no writer has it open, and one started meanwhile; nothing is wrong with the "
        "state: run the command again (while the service runs, it reads as any reader)"
    )


def primary_code(exc: sqlite3.Error) -> int:
    """The SQLite result code of an error, without its extended part (0: none given)."""
    return (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF


def is_busy(exc: sqlite3.Error) -> bool:
    return primary_code(exc) == sqlite3.SQLITE_BUSY


QUICK_CHECK_MAX_BYTES = 32 * 1024 * 1024
"""`quick_check` reads the whole file (about 0.8 s for 224 MB, 100,000 records): the services
run it at start, a one-off command only up to this size (a command's cost stays flat in the
state's size); beyond, damage is still found when a statement meets it."""


def file_size(path: Path) -> int:
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


FULL_CODES = {sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_READONLY}
"""A disk full, or a file or folder that cannot be written."""
CORRUPT_CODES = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}


def storage_error(exc: sqlite3.Error, path: Path, *, opening: bool = False) -> StoreError:
    """What a SQLite error means for the operator: a full or unwritable disk, a damaged file,
    or (anything else) a store error; each message says what to do."""
    code = primary_code(exc)
    if code in CORRUPT_CODES:
        return StorageCorruptError(_corrupt_message(path, str(exc)))
    if code in FULL_CODES:
        situation = (
            f"the state database {path} cannot be written ({exc}): free disk space on its "
            "volume, or make it and its folder writable by this user"
        )
        full = StorageFullError(
            f"{situation}; nothing of the interrupted operation was stored, run it again once fixed"
        )
        full.situation = situation
        return full
    if code == sqlite3.SQLITE_BUSY:
        if (stopped := sqlite_holder(path)) is not None:
            return StoreBusyError(locked_message(path, BUSY_TIMEOUT_MS / 1000, stopped))
        return _foreign_lock(path, BUSY_TIMEOUT_MS / 1000)
    if opening:
        return StoreError(f"cannot open the state database {path}: {exc}; check paths.state")
    return StoreError(f"the state database {path} refused an operation: {exc}")


def _foreign_lock(state: Path, seconds: float) -> StoreBusyError:
    """What a process says whose statement waited `seconds` for SQLite's own lock on the
    state, held by a running program that is no accrochage writer (those take the write lock
    first, and wait there): a `sqlite3` shell left in a transaction, say. Another process's
    fault, over once it lets go: busy (503, try again), not a failure of this one."""
    situation = (
        f"the state database {state} stayed locked for {seconds:g} s by a program that holds "
        "SQLite's own lock on it and is no accrochage writer (a `sqlite3` shell left in a "
        "transaction, a tool writing the state?): end its transaction or close it"
    )
    error = StoreBusyError(
        f"{situation}; nothing of this operation was stored: send or run it again once it let go"
    )
    error.situation = situation
    return error


def _corrupt_message(path: Path, detail: str) -> str:
    said = (
        f"the state database {path} is damaged ({detail}): stop every accrochage process, "
        "keep a copy of the file, and restore the last backup (or try `sqlite3 STATE "
        "'.recover'` on the copy)"
    )
    wal = path.with_name(path.name + "-wal")
    try:
        replayed = wal.stat().st_size > 0
    except OSError:
        replayed = False
    if replayed:
        said += (
            f". If a backup was just copied over it, the old {wal.name} beside it was replayed "
            f"onto the backup: stop every process, remove {wal} and "
            f"{path.name}-shm, then copy the backup again"
        )
    return said
