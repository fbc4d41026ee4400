"""WAL checkpoints run by a writer once it has let go of the state's write lock.

SQLite copies the WAL back into the database file (a checkpoint) inside the `COMMIT` that
takes the WAL past `wal_autocheckpoint` pages, so the writer that crosses it holds the state's
write lock through the copy and its fsync, and every other process's writer waits for it: the
longest wait of a service's writer beside a batch cut in parts was that checkpoint (91-155 ms
against 42-52 without, bench/HISTORY.md, session 51).

Here a writer with a large transaction runs the same PASSIVE checkpoint itself, after its
`COMMIT`, once it has let go of the write lock (`after_commit`): another process's writer
goes on meanwhile, since a PASSIVE checkpoint never blocks writers. What they commit
during the copy is left in the WAL, which SQLite starts over only from a transaction that
begins with every frame copied; so the next writer copies that rest under the write lock
before its `BEGIN` (`before_begin`), when it is small: a few of its pages, not ten thousand.
SQLite's own checkpoint in the `COMMIT` stays, at `BACKSTOP_PAGES`, for a WAL that the
writers cannot bring back (another program writing, a reader holding old pages).

Python's `sqlite3` has no `wal_hook`, so the WAL's length is read from its index, the `-shm`
file, whose header SQLite documents (https://www.sqlite.org/walformat.html, 2.2: `mxFrame`,
the WAL's last frame, and `nBackfill`, the frames copied back), through SQLite's own
descriptor (`WalIndex`). A header that cannot be read that way (no `/proc`) leaves SQLite's
checkpoint in the `COMMIT`, as it was.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import struct
from dataclasses import dataclass
from pathlib import Path

from accrochage.state.sqlite.connection import CHECKPOINT_PAGES, primary_code

log = logging.getLogger("accrochage.state")

BACKSTOP_PAGES = 4 * CHECKPOINT_PAGES
"""WAL pages at which SQLite checkpoints in the `COMMIT` all the same (about 160 MiB)."""
REST_PAGES = CHECKPOINT_PAGES // 10
"""The most WAL pages a writer copies under the write lock (`before_begin`): more is a copy
that another writer's `after_commit` is making, or is about to make, outside it."""

_WAL_INDEX_VERSION = 3007000
_HEADER = struct.Struct("=IIIBBHI")
"""iVersion, unused, iChange, isInit, bigEndCksum, szPage, mxFrame: the first fields of the
wal-index header, in the machine's byte order."""
_HEADER_BYTES = 48
_BACKFILL = struct.Struct("=I")
_BACKFILL_AT = 2 * _HEADER_BYTES
_READ_BYTES = _BACKFILL_AT + _BACKFILL.size


@dataclass(frozen=True)
class WalFrames:
    """The WAL's frames (`log`) and how many of them are copied into the database file."""

    log: int
    backfilled: int

    @property
    def to_copy(self) -> int:
        """The frames not copied yet of a WAL long enough to be checkpointed; 0 otherwise."""
        return self.log - self.backfilled if self.log >= CHECKPOINT_PAGES else 0


def wal_frames(state: Path) -> WalFrames | None:
    """The WAL's frame counts of the state at `state` (`WalIndex.frames`)."""
    return WalIndex(state).frames()


class WalIndex:
    """The state's `-shm`, read through the descriptor SQLite holds on it in this process.

    It is never opened here: SQLite holds POSIX locks on it, and closing any descriptor of a
    file drops every such lock the process holds on it. A reader of this process lost its
    read lock so, and another process then reset the WAL under it (`test_checkpoints.py`)."""

    def __init__(self, state: Path) -> None:
        self._target = os.path.realpath(state.with_name(state.name + "-shm"))
        self._descriptor: int | None = None

    def frames(self) -> WalFrames | None:
        """None when SQLite has no descriptor on it in this process, or its header cannot be
        read as documented, or a writer was changing it as it was read (its copies differ)."""
        data = self.header()
        return None if data is None else frames_in(data)

    def header(self) -> bytes | None:
        descriptor = self._sqlite_descriptor()
        if descriptor is None:
            return None
        try:
            return os.pread(descriptor, _READ_BYTES, 0)
        except OSError:
            return None

    def _sqlite_descriptor(self) -> int | None:
        if self._descriptor is not None and self._names(self._descriptor):
            return self._descriptor
        try:
            descriptors = [int(name) for name in os.listdir(_OPEN_FILES)]
        except OSError:
            return None
        self._descriptor = next((d for d in descriptors if self._names(d)), None)
        return self._descriptor

    def _names(self, descriptor: int) -> bool:
        try:
            return os.readlink(f"{_OPEN_FILES}/{descriptor}") == self._target
        except OSError:
            return False


_OPEN_FILES = "/proc/self/fd"


def frames_in(data: bytes) -> WalFrames | None:
    """The frame counts in a wal-index header, or None when it is not one as documented."""
    if len(data) < _READ_BYTES or data[:_HEADER_BYTES] != data[_HEADER_BYTES:_BACKFILL_AT]:
        return None
    version, _, _, initialised, _, _, log = _HEADER.unpack_from(data)
    if version != _WAL_INDEX_VERSION or initialised != 1:
        return None
    (backfilled,) = _BACKFILL.unpack_from(data, _BACKFILL_AT)
    if backfilled > log:
        return None
    return WalFrames(log, backfilled)


class Checkpoints:
    """The checkpoints of one writer connection, run outside the write lock (`after_commit`)."""

    def __init__(self, conn: sqlite3.Connection, state: Path) -> None:
        self._conn = conn
        self._state = state
        self._index = WalIndex(state)
        self._log_before: int | None = None
        self.outside_lock = self._index.frames() is not None
        if self.outside_lock:
            conn.execute(f"PRAGMA wal_autocheckpoint = {BACKSTOP_PAGES}")

    def before_begin(self) -> None:
        """Under the write lock: the rest of a long WAL copied, when it is small, so that the
        transaction about to begin starts the WAL over."""
        frames = self._index.frames() if self.outside_lock else None
        self._log_before = None if frames is None else frames.log
        if frames is not None and 0 < frames.to_copy <= REST_PAGES:
            self._checkpoint()

    def after_commit(self) -> None:
        """Outside the write lock: a PASSIVE checkpoint of a long WAL not all copied, by a
        writer whose transaction added `REST_PAGES` or more to it (a batch cut, `ingest`). A
        small one (a service's writer, a few pages) would pay the copy in its own wait, which
        is what this module avoids: it leaves the copy to a large one, unless the WAL grew
        `REST_PAGES` past the threshold without one (a service writing alone)."""
        frames = self._index.frames() if self.outside_lock else None
        if frames is None or frames.to_copy == 0:
            return
        if self._added(frames.log) >= REST_PAGES or frames.to_copy >= CHECKPOINT_PAGES + REST_PAGES:
            self._checkpoint()

    def _added(self, log: int) -> int:
        """The frames this transaction added to the WAL (all of it, when SQLite started the
        WAL over for it; unknown, as if many, when the index could not be read before)."""
        before = self._log_before
        if before is None or log < before:
            return log
        return log - before

    def _checkpoint(self) -> None:
        """Its failure is logged, not raised: the transactions before it are committed and
        durable in the WAL, and a disk that cannot take the copy fails the next `COMMIT` that
        tries it (`BACKSTOP_PAGES`), where it can be told to the operator."""
        try:
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as exc:
            log.warning(
                "could not copy the WAL of %s into it (SQLite code %d): the state is whole, "
                "the next commit tries again",
                self._state,
                primary_code(exc),
            )
