"""Which processes have a file open, read from `/proc` (Linux): `doctor` names those that
have the state open when a reader keeps its `-wal` from starting over, and the write lock
names who holds it (`write_lock.py`). Process ids only, never a command line (its file
names may name people)."""

from __future__ import annotations

import os
from pathlib import Path


def openers(state: Path) -> list[int] | None:
    """The processes other than this one that hold the state's `-shm` open (every connection
    to a WAL state does), by pid; [] when none does; None when `/proc` cannot tell. Another
    user's processes are seen only by root."""
    try:
        shm = os.stat(state.with_name(state.name + "-shm"))
    except FileNotFoundError:
        return []  # no connection open
    except OSError:
        return None
    try:
        pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return None
    this = os.getpid()
    return sorted(p for p in pids if p != this and _holds(p, (shm.st_dev, shm.st_ino)))


def has_open(pid: int, path: Path) -> bool:
    """Whether process `pid` has `path` open (False when `/proc` does not say)."""
    try:
        found = os.stat(path)
    except OSError:
        return False
    return _holds(pid, (found.st_dev, found.st_ino))


def _holds(pid: int, file: tuple[int, int]) -> bool:
    folder = f"/proc/{pid}/fd"
    try:
        entries = os.listdir(folder)
    except OSError:  # gone, or another user's
        return False
    for entry in entries:
        try:
            found = os.stat(f"{folder}/{entry}")
        except OSError:
            continue
        if (found.st_dev, found.st_ino) == file:
            return True
    return False
