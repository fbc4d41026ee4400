"""The state written again without its free space, alone on it (`accrochage compact`).

SQLite keeps the pages that deleted data leaves (a flood of unusable events dismissed and
forgotten) for its own later writes: the disk does not get them back, and events stay refused
while it has less than `state.keep_free_bytes` free. `VACUUM` writes the live pages again into
a file of their size. It runs alone (no service, no writer: it holds the write lock for as
long as it takes), through the WAL, so that a kill at any moment leaves the state as it was.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path

from accrochage.errors import StoreError
from accrochage.state.sqlite.alone import HeldAlone
from accrochage.state.sqlite.connection import connect, storage_error
from accrochage.state.sqlite.state_path import real_state_path
from accrochage.state.values import Compacted


def compact_state(state: Path) -> Compacted:
    """The state at `state` written again without its free pages; `StoreError` says what
    stopped it, the state unchanged then."""
    started = time.monotonic()
    state = real_state_path(state)
    if not state.is_file():
        raise StoreError(f"there is no state at {state}: check paths.state")
    before = files_size(state)
    with HeldAlone(state, "compact"):
        try:
            conn = connect(state)
        except sqlite3.Error as exc:
            raise storage_error(exc, state, opening=True) from None
        try:
            _room_for(state, live_bytes(conn))
            conn.execute("VACUUM")
            busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        except sqlite3.Error as exc:
            raise storage_error(exc, state) from None
        finally:
            conn.close()
    if busy:
        raise _still_read(state)
    return Compacted(state, before, files_size(state), time.monotonic() - started)


def _still_read(state: Path) -> StoreError:
    """The rewrite is committed in the WAL, but a reader of the old pages (a `backup` under
    way, a `sqlite3` shell) keeps the checkpoint from copying it into the state's file: the
    file keeps its size and the WAL adds the rewrite's. "compacted ... (0 given back)" after
    the busy timeout hid why."""
    return StoreError(
        f"the state {state} is written again without its free pages, but another process "
        "still reads it (a `backup` under way, a `sqlite3` shell?) and holds its old pages: "
        "the disk gets nothing back while it does; once it ends, run `accrochage compact` "
        "again (the state is whole either way)"
    )


def live_bytes(conn: sqlite3.Connection) -> int:
    """The bytes of the pages that hold data: what `VACUUM` writes again."""
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    size = conn.execute("PRAGMA page_size").fetchone()[0]
    return int((pages - free) * size)


def files_size(state: Path) -> int:
    return sum(
        path.stat().st_size
        for path in (state, state.with_name(state.name + "-wal"))
        if path.exists()
    )


def _room_for(state: Path, live: int) -> None:
    """`VACUUM` writes the live pages into the WAL beside the state (and into a temporary
    copy): with less free than that, it would fail with the disk full, after minutes."""
    free = shutil.disk_usage(state.parent).free
    if free < live:
        raise StoreError(
            f"compacting the state {state} writes its {live:,} bytes of data again beside it, "
            f"and its disk has {free:,} bytes free: free {live - free:,} bytes or more on that "
            "disk, then compact again (the state is unchanged)"
        )
