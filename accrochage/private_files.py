"""Files that hold personal data: created so that no other user of the machine may read them.

The state (names, birth dates, NIRs), its backups and the files for the CDC hold the
holders' personal data. Under the usual umask (022) a new file is readable by every user;
these are created with `PRIVATE_MODE` instead: their owner writes, their group reads (a
backup or monitoring account given that group), no one else. A stricter umask still applies.
SQLite gives a database's `-wal` and `-shm` files the database file's own mode.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_MODE = 0o640


def create_private(path: Path) -> bool:
    """Create `path` empty with `PRIVATE_MODE` if it does not exist (an empty file is an
    empty SQLite database); True if this call created it. An existing file keeps its mode."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE_MODE)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def open_to_others(path: Path) -> bool:
    """Whether users other than the file's owner and group may read or write it."""
    return bool(path.stat().st_mode & (stat.S_IROTH | stat.S_IWOTH))


def fsync_directory(path: Path) -> None:
    """Make a rename or a new file in `path` durable (the folder's entry, not the file)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
