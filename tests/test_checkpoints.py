"""The WAL is copied back into the state outside the write lock (`state/sqlite/checkpoint.py`).

SQLite checkpoints inside the `COMMIT` that takes the WAL past its threshold, and the state's
write lock was held through that copy: every other process's writer waited for it. A writer
now runs the checkpoint once it has let go of the write lock, copies under the lock only a
small rest, and the WAL still starts over as it did.
"""

from __future__ import annotations

import logging
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from accrochage.errors import StoreBusyError
from accrochage.state.sqlite import SqliteStore
from accrochage.state.sqlite import checkpoint as checkpoint_module
from accrochage.state.sqlite.checkpoint import WalFrames, WalIndex, frames_in, wal_frames
from accrochage.state.sqlite.connection import CHECKPOINT_PAGES, connect
from accrochage.state.sqlite.write_lock import WriteLock
from accrochage.state.values import DeadLetter

THRESHOLD = 40
"""WAL pages before a checkpoint, in these tests (10,000 in the product)."""


@pytest.fixture
def small_wal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checkpoint_module, "CHECKPOINT_PAGES", THRESHOLD)
    monkeypatch.setattr(checkpoint_module, "REST_PAGES", THRESHOLD // 4)
    monkeypatch.setattr(checkpoint_module, "BACKSTOP_PAGES", THRESHOLD * 4)


def fresh_state(path: Path) -> Path:
    """A state whose WAL is empty: its tables' creation was copied back as it closed."""
    SqliteStore(path).close()
    return path


@pytest.fixture
def store(tmp_path: Path, small_wal: None) -> Iterator[SqliteStore]:
    opened = SqliteStore(fresh_state(tmp_path / "state.db"))
    yield opened
    opened.close()


def write_pages(store: SqliteStore, topic: str, pages: int) -> None:
    """At least `pages` pages of the WAL: a rejected event of most of a page's size each."""
    with store.transaction() as tx:
        tx.queue_dead_letters(DeadLetter(topic, None, "x" * 3000) for _ in range(pages))


def frames(store: SqliteStore) -> WalFrames:
    found = wal_frames(store.path)
    assert found is not None
    return found


def traced_checkpoints(store: SqliteStore) -> list[bool]:
    """For each checkpoint the store's writer runs from now on: True when the state's write
    lock was held as it began (another writer could not take it), False when it was free."""
    seen: list[bool] = []

    def trace(statement: str) -> None:
        if "wal_checkpoint" in statement:
            other = WriteLock(store.path, 0.0)
            try:
                taken = other.acquire(0.0)
                other.release(taken)
                seen.append(False)
            except StoreBusyError:
                seen.append(True)
            finally:
                other.close()

    store._conn.set_trace_callback(trace)
    return seen


def test_the_wal_index_reads_as_sqlite_counts_it(tmp_path: Path) -> None:
    """The frame counts read from the `-shm` are those SQLite's own checkpoint returns, with a
    reader holding old pages so that part of the WAL stays to copy."""
    state = tmp_path / "state.db"
    conn = connect(state)
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    conn.execute("CREATE TABLE t (x)")
    conn.executemany("INSERT INTO t VALUES (randomblob(3000))", [()] * 20)
    before = wal_frames(state)
    reader = connect(state, readonly=True)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM t").fetchall()
    conn.executemany("INSERT INTO t VALUES (randomblob(3000))", [()] * 5)
    busy, log, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    after = wal_frames(state)
    reader.rollback()
    reader.close()
    conn.close()
    assert before is not None and before.backfilled == 0 and before.log > 20
    assert (busy, after) == (0, WalFrames(log, copied))
    assert 0 < copied < log


def test_a_wal_index_that_is_not_sqlite_s_is_not_read(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    assert wal_frames(state) is None  # no connection of this process has it open
    conn = connect(state)
    conn.execute("CREATE TABLE t (x)")
    header = WalIndex(state).header()
    conn.close()
    assert header is not None and frames_in(header) is not None
    torn = bytearray(header)
    torn[16] ^= 0xFF  # mxFrame of the first copy, as a writer leaves it halfway
    other_version = bytearray(header)
    other_version[0] ^= 0xFF
    other_version[48] ^= 0xFF
    for data in (bytes(torn), bytes(other_version), header[:-1], b"\x01" * 200):
        assert frames_in(data) is None


def test_the_writer_copies_the_wal_once_it_let_go_of_the_write_lock(store: SqliteStore) -> None:
    """The transaction that takes the WAL past the threshold leaves it whole to copy at its
    `COMMIT`; the writer copies it right after, with the write lock free for another writer,
    and the next transaction starts the WAL over."""
    assert store._conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == THRESHOLD * 4
    seen = traced_checkpoints(store)
    write_pages(store, "small", 2)
    assert seen == []
    write_pages(store, "large", THRESHOLD + 5)
    copied = frames(store)
    assert seen == [False]
    assert copied.log > THRESHOLD and copied.backfilled == copied.log
    write_pages(store, "next", 1)
    assert frames(store).log < THRESHOLD
    assert seen == [False]


def another_program(store: SqliteStore) -> sqlite3.Connection:
    """A connection to the state that is no store: it never copies the WAL back itself."""
    other = connect(store.path)
    other.execute("PRAGMA wal_autocheckpoint = 0")
    other.execute("CREATE TABLE filler (x)")
    return other


def test_a_rest_committed_meanwhile_is_copied_under_the_lock_and_the_wal_starts_over(
    store: SqliteStore,
) -> None:
    """Another writer committed after the copy: the next writer copies that small rest before
    its `BEGIN`, under the write lock, so that its transaction starts the WAL over. Without it
    the WAL grew on while writers took turns."""
    seen = traced_checkpoints(store)
    other = another_program(store)
    other.executemany("INSERT INTO filler VALUES (randomblob(3000))", [()] * THRESHOLD)
    other.execute("BEGIN IMMEDIATE")  # begun before the copy: its commit cannot start the WAL over
    other.execute("INSERT INTO filler VALUES (1)")
    copying = connect(store.path)
    copying.execute("PRAGMA wal_checkpoint(PASSIVE)")
    copying.close()
    other.execute("COMMIT")
    other.close()
    rest = frames(store)
    assert rest.log > THRESHOLD and 0 < rest.log - rest.backfilled <= THRESHOLD // 4
    write_pages(store, "next", 1)
    assert seen == [True]
    assert frames(store).log < THRESHOLD


def left_long(store: SqliteStore) -> None:
    """A WAL past the threshold and not copied, left by another writer (another program)."""
    other = another_program(store)
    other.execute("BEGIN")
    other.executemany("INSERT INTO filler VALUES (randomblob(3000))", [()] * (THRESHOLD + 2))
    other.execute("COMMIT")
    other.close()
    assert THRESHOLD < frames(store).log < THRESHOLD + THRESHOLD // 4


def test_a_small_writer_leaves_the_copy_to_a_large_one(store: SqliteStore) -> None:
    """A service's writer committing a few pages after a batch cut made the WAL long does not
    copy it: it would wait for the copy itself. The next large transaction copies it."""
    seen = traced_checkpoints(store)
    left_long(store)
    write_pages(store, "small", 1)
    assert seen == []
    assert frames(store).backfilled == 0
    write_pages(store, "large", THRESHOLD // 4 + 2)
    assert seen == [False]
    assert frames(store).backfilled == frames(store).log


def test_a_small_writer_alone_copies_the_wal_a_little_later(store: SqliteStore) -> None:
    seen = traced_checkpoints(store)
    left_long(store)
    for turn in range(THRESHOLD // 4 + 2):
        write_pages(store, f"s{turn}", 1)
        if seen:
            break
    assert seen == [False]
    assert frames(store).log >= THRESHOLD + THRESHOLD // 4
    assert frames(store).backfilled == frames(store).log
    write_pages(store, "next", 1)
    assert frames(store).log < THRESHOLD


def test_writers_taking_turns_keep_the_wal_short(tmp_path: Path, small_wal: None) -> None:
    """Two stores (two writers, as two processes) writing in turns: the WAL never grows much
    past the threshold and one transaction, as when SQLite checkpointed in the `COMMIT`."""
    state = fresh_state(tmp_path / "state.db")
    first, second = SqliteStore(state), SqliteStore(state)
    longest = 0
    try:
        for turn in range(60):
            write_pages(first if turn % 2 else second, f"s{turn}", 7)
            longest = max(longest, frames(first).log)
    finally:
        first.close()
        second.close()
    assert THRESHOLD <= longest <= THRESHOLD + 2 * 12


def test_an_unreadable_wal_index_leaves_the_checkpoint_to_sqlite(
    tmp_path: Path, small_wal: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpoint_module.WalIndex, "frames", lambda index: None)
    opened = SqliteStore(fresh_state(tmp_path / "state.db"))
    try:
        seen = traced_checkpoints(opened)
        assert opened._conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == CHECKPOINT_PAGES
        write_pages(opened, "large", THRESHOLD + 5)
        assert seen == []
    finally:
        opened.close()


class FailingConnection:
    """A disk that fails the copy: what cannot be made to happen on this machine's disk."""

    def execute(self, statement: str) -> sqlite3.Cursor:
        raise sqlite3.OperationalError("disk I/O error")


def test_a_copy_that_fails_leaves_the_transaction_committed(
    store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    store._checkpoints._conn = FailingConnection()  # type: ignore[assignment]
    with caplog.at_level(logging.WARNING, logger="accrochage.state"):
        write_pages(store, "large", THRESHOLD + 5)
    with store.reading() as reader:
        assert len(reader.dead_letters(1000)) == THRESHOLD + 5
    assert "could not copy the WAL" in caplog.text
    assert frames(store).backfilled < frames(store).log


def test_reading_the_wal_index_keeps_this_process_s_locks_on_it(tmp_path: Path) -> None:
    """A reader of this process holds old pages: another process's checkpoint must leave them
    in the WAL after the index was read. Opening and closing the `-shm` to read it dropped
    every lock SQLite held on it in this process (POSIX locks go with any close): the other
    process copied over the reader's pages, and a flush died of SIGBUS in the CI."""
    state = tmp_path / "state.db"
    conn = connect(state)
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    conn.execute("CREATE TABLE t (x)")
    conn.execute("INSERT INTO t VALUES (1)")
    reader = connect(state, readonly=True)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM t").fetchall()
    conn.execute("INSERT INTO t VALUES (2)")
    for _ in range(3):
        assert wal_frames(state) is not None
    other = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1], isolation_level=None); "
            "c.execute('INSERT INTO t VALUES (3)'); "
            "print(*c.execute('PRAGMA wal_checkpoint(PASSIVE)').fetchone())",
            str(state),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    busy, log, copied = (int(n) for n in other.stdout.split())
    assert (reader.execute("SELECT count(*) FROM t").fetchone()[0], busy) == (1, 0)
    assert copied < log
    reader.rollback()
    reader.close()
    conn.close()


KILLED_WRITER = """
import os, signal, sys, threading, time
from pathlib import Path
from accrochage.state.sqlite import SqliteStore, checkpoint
from accrochage.state.values import DeadLetter

checkpoint.CHECKPOINT_PAGES, checkpoint.REST_PAGES = 200, 50
delay = float(sys.argv[2])
store = SqliteStore(Path(sys.argv[1]))

def kill_soon(statement):
    if "wal_checkpoint" in statement:  # traced once the COMMIT has returned
        threading.Timer(delay, os.kill, (os.getpid(), signal.SIGKILL)).start()

store._conn.set_trace_callback(kill_soon)
with store.transaction() as tx:
    tx.queue_dead_letters(DeadLetter("killed", None, "x" * 3000) for _ in range(3000))
time.sleep(30)
"""


@pytest.mark.parametrize("delay", [0.0, 0.002, 0.01, 0.03])
def test_a_writer_killed_while_it_copies_the_wal_loses_nothing(
    tmp_path: Path, delay: float
) -> None:
    """kill -9 at some point of the copy that follows a commit (before it, in it, after it):
    the state opens whole, with every row of the committed transaction."""
    state = fresh_state(tmp_path / "state.db")
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_WRITER, str(state), str(delay)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    opened = SqliteStore(state, always_check=True)
    try:
        with opened.reading() as reader:
            assert len(reader.dead_letters(5000)) == 3000
    finally:
        opened.close()
