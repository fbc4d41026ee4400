"""The state database's own path, whatever name the configuration gives it.

SQLite keeps a database's journal (`-wal`, `-shm`) beside the name it opens, and accrochage
its locks (`.lock`, `.write-lock`, `.cut-lock`, `.refdata-lock`) beside the state's: two
names of one file must not mean two sets of them. A symbolic link is resolved, so every name
shares the file's; a second hard link cannot be told apart from the file itself, and two
processes writing through two such names corrupted the database in seconds (each with its
own WAL, each holding "the" write lock): such a state is refused.
"""

from __future__ import annotations

import os
from pathlib import Path
from stat import S_ISDIR

from accrochage.errors import StoreError


def real_state_path(configured: Path) -> Path:
    """`configured` with its symbolic links resolved; `StoreError` when the database file
    has more than one hard link. A state not created yet is its future path."""
    real = Path(os.path.realpath(configured))
    try:
        stat = real.stat()
    except OSError:  # not there yet, or unreadable: opening it says so
        return real
    if S_ISDIR(stat.st_mode):  # a folder's links are its entries: not a second name
        raise StoreError(
            f"paths.state {configured} is a folder: name the state's file, such as "
            f"{configured / 'state.db'} (an empty paths.state is the configuration's folder)"
        )
    links = stat.st_nlink
    if links > 1:
        raise StoreError(
            f"the state database {configured} has {links} names (hard links): SQLite keeps a "
            "journal beside each name it is opened by, so two processes using two names "
            "corrupt it; keep one name (remove the other links, or make them symbolic links), "
            "then start again"
        )
    return real


def file_identity(path: Path) -> tuple[int, int]:
    """The device and inode of the file at `path`: which file the name holds now."""
    found = os.stat(path)
    return found.st_dev, found.st_ino


def same_file(path: Path, identity: tuple[int, int]) -> bool:
    try:
        return file_identity(path) == identity
    except OSError:
        return False


def replaced_error(path: Path) -> StoreError:
    """A backup restored under a command that had the state open (`accrochage restore` waits
    for no one's write lock between two transactions): its writes would go on into the state
    set aside, reported as stored."""
    return StoreError(
        f"the state {path} was replaced (a backup restored) or removed since this "
        "command opened it: nothing of this operation was stored; run the command again"
    )
