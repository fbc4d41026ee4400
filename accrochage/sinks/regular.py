"""Opening an input file safely: a regular file only, its size checked before a byte is read.

A path given by an operator may name a FIFO (opening it for reading waits for a writer, for
ever), a directory, a device (`/dev/zero` never ends) or a sparse file of gigabytes. Each is
refused from its `stat`, before it is opened; the opened descriptor is checked again, so a
file swapped in between is refused too.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

Refuse = Callable[[str], Exception]
"""Builds the caller's exception from a sentence saying what is wrong and what to do."""

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _kind(mode: int) -> str | None:
    """What a non-regular file is, or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _checked(info: os.stat_result, max_bytes: int, refuse: Refuse) -> None:
    kind = _kind(info.st_mode)
    if kind is not None:
        raise refuse(f"is {kind}, not a regular file; give the path of a file")
    if info.st_size > max_bytes:
        raise refuse(
            f"is {info.st_size} bytes, above the {max_bytes} byte limit; "
            "check that this is the right file"
        )


def open_regular(path: Path, *, max_bytes: int, refuse: Refuse) -> BinaryIO:
    """Open `path` for binary reading if it is a regular file of at most `max_bytes`."""
    try:
        _checked(os.stat(path), max_bytes, refuse)
        # O_NONBLOCK: should a FIFO replace the file after the stat, opening does not wait.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as exc:
        raise refuse(f"cannot be read ({exc.strerror}); check the path") from None
    try:
        _checked(os.fstat(fd), max_bytes, refuse)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: Path, *, max_bytes: int, refuse: Refuse) -> bytes:
    """The whole content of a regular file of at most `max_bytes` (it may grow meanwhile)."""
    with open_regular(path, max_bytes=max_bytes, refuse=refuse) as handle:
        try:
            data = handle.read(max_bytes + 1)
        except OSError as exc:
            raise refuse(f"cannot be read ({exc.strerror}); check the path") from None
    if len(data) > max_bytes:
        raise refuse(f"grew above the {max_bytes} byte limit while it was read")
    return data
