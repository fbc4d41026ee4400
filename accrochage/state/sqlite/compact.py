"""The state written again without its free space, alone on it (`accrochage compact`).

SQLite keeps the pages that deleted data leaves (a flood of unusable events dismissed and
forgotten) for its own later writes: the disk does not get them back, and events stay refused
while it has less than `state.keep_free_bytes` free. `VACUUM` writes the live pages again into
a file of their size. It runs alone (no service, no writer: it holds the write lock for as
long as it takes), through the WAL, so that a kill at any moment leaves the state as it was.
"""

from __future__ import annotations

import os
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
    """`VACUUM` writes the live pages into a temporary copy, in SQLite's temporary folder,
    then into the WAL beside the state: with less free than that, it would fail with the disk
    full, after minutes. Both on one disk (`/var/tmp` beside `/var/lib`, the usual case),
    that disk needs room for both."""
    temp = sqlite_temp_folder()
    on_state = shutil.disk_usage(state.parent).free
    same_disk = _device(temp) in (None, _device(state.parent))
    need = 2 * live if same_disk else live
    copy = f" and a temporary copy of them in {temp}" if same_disk else ""
    if on_state < need:
        raise StoreError(
            f"compacting the state {state} writes its {live:,} bytes of data again beside "
            f"it{copy}, and its disk has {on_state:,} bytes free: free {need - on_state:,} "
            "bytes or more on that disk, then compact again (the state is unchanged)"
        )
    on_temp = shutil.disk_usage(temp).free
    if not same_disk and on_temp < live:
        raise StoreError(
            f"compacting the state {state} writes a temporary copy of its {live:,} bytes of "
            f"data in {temp}, SQLite's temporary folder, whose disk has {on_temp:,} bytes "
            "free: free room there, or name a folder on a disk with room in SQLITE_TMPDIR, "
            "then compact again (the state is unchanged)"
        )


def sqlite_temp_folder() -> Path:
    """The folder SQLite writes its temporary files in (its Unix search order)."""
    for folder in (os.environ.get("SQLITE_TMPDIR"), os.environ.get("TMPDIR"), *_SYSTEM_TEMP):
        if folder and os.path.isdir(folder) and os.access(folder, os.W_OK | os.X_OK):
            return Path(folder)
    return Path(".")


_SYSTEM_TEMP = ("/var/tmp", "/usr/tmp", "/tmp")


def _device(path: Path) -> int | None:
    try:
        return path.stat().st_dev
    except OSError:
        return None
