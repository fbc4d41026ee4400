"""The copy of each CDC report imported, kept beside the state under its digest and name: the
CDC's word as it came, which `evidence` hands over."""

from __future__ import annotations

import errno
import hashlib
import os
from contextlib import suppress
from pathlib import Path

from accrochage.errors import StorageFullError, StoreError
from accrochage.private_files import PRIVATE_MODE, fsync_directory

KEPT_NAME_CHARACTERS = 100


def kept_name(name: str) -> str:
    """The report's name, safe in a path and at most `KEPT_NAME_CHARACTERS`, its extension
    kept: cut from the end, a long portal name lost its `.xml` (`…_20261210`)."""
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)
    if len(safe) <= KEPT_NAME_CHARACTERS:
        return safe
    stem, dot, extension = safe.rpartition(".")
    if not dot or len(extension) > 10:
        return safe[:KEPT_NAME_CHARACTERS]
    return f"{stem[: KEPT_NAME_CHARACTERS - len(extension) - 1]}.{extension}"


def keep_copy(folder: Path, data: bytes, name: str) -> Path:
    """The report's bytes under `folder`, named by its digest and name, written atomically;
    private as the files for the CDC are (a CDC message may quote what a passage held)."""
    target = folder / f"{hashlib.sha256(data).hexdigest()[:16]}_{kept_name(name)}"
    temporary = target.with_name(f".{target.name}.partial")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with os.fdopen(os.open(temporary, flags, PRIVATE_MODE), "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)
        fsync_directory(folder)
    except OSError as exc:  # said, not a traceback; nothing applied yet
        with suppress(OSError):  # `folder` no folder, or one this user may not search
            temporary.unlink(missing_ok=True)
        raise not_kept(exc, name, folder) from None
    return target


FULL_DISK = frozenset({errno.ENOSPC, errno.EDQUOT})


def not_kept(exc: OSError, name: str, folder: Path) -> StoreError:
    """A full disk (507) apart from a folder that cannot hold the copy (500): each says its
    own remedy."""
    said = f"cannot keep a copy of the report {name} in {folder} ({exc.strerror or exc})"
    if exc.errno in FULL_DISK:
        return StorageFullError(
            f"{said}: free space on that disk, then import it again (nothing was applied)"
        )
    return StoreError(
        f"{said}: make that path (beside the state) a folder this user may write in, then "
        "import it again (nothing was applied)"
    )
