"""A backup of the state taken while it is in use: one consistent copy, checked, then released.

`cp` of a WAL database under a running service copies a file that lacks the commits still in
its `-wal`, or half of a checkpoint; SQLite's online backup copies one snapshot of the
database, WAL included, from a reader that never holds the writers back. The copy is a single
file (rollback journal, no `-wal` beside it), checked (`quick_check`) and made durable before
it takes its name: a backup found damaged the day it is needed is no backup.
"""

from __future__ import annotations

import os
import sqlite3
import time
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path

from sqlite_utils import Database

from accrochage.errors import StoreError
from accrochage.lifeline import gone
from accrochage.private_files import create_private, fsync_directory
from accrochage.state.sqlite.connection import (
    CORRUPT_CODES,
    FULL_CODES,
    check_integrity,
    connect,
    primary_code,
    storage_error,
    told_if_changed,
)
from accrochage.state.sqlite.migrations import migrations
from accrochage.state.values import BackupTaken

_BESIDE_THE_STATE = (
    "",
    "-wal",
    "-shm",
    "-journal",
    ".lock",
    ".write-lock",
    ".cut-lock",
    ".refdata-lock",
)
"""The state's own files: a backup never takes one of their names."""


def backup_name(state: Path, at: datetime) -> str:
    """The name of a backup made in a folder: the state's name and the time, in UTC."""
    return f"{state.stem}-{at.astimezone(UTC):%Y%m%dT%H%M%SZ}{state.suffix or '.db'}"


def destination(state: Path, dest: Path, at: datetime, *, overwrite: bool) -> Path:
    """Where the backup goes: `dest`, or a file named by the time in the folder `dest`; the
    state's own files, a missing folder and (unless `overwrite`) an existing file refused."""
    if dest.is_dir():
        dest = _free(dest / backup_name(state, at))
    if not dest.parent.is_dir():
        raise StoreError(
            f"cannot write the backup {dest}: its folder {dest.parent} does not exist; "
            "create it, or name a file in an existing folder"
        )
    if is_own_file(state, dest):
        raise StoreError(
            f"the backup {dest} would replace the state itself or one of its files: "
            "name a file elsewhere (another disk, ideally)"
        )
    if dest.exists() and not overwrite:
        raise StoreError(
            f"the backup {dest} already exists: choose another name (or a folder, where the "
            "backup is named by the time), or pass --overwrite to replace it"
        )
    return dest


def _free(timed: Path) -> Path:
    """A backup named by the time, or, taken in the same second as another one there, the
    first of `-2`, `-3`… that is free (two backups a second apart would otherwise fail)."""
    candidate, number = timed, 1
    while candidate.exists() and number < 1000:
        number += 1
        candidate = timed.with_name(f"{timed.stem}-{number}{timed.suffix}")
    return candidate


def is_own_file(state: Path, dest: Path) -> bool:
    """Whether `dest` is the state or one of its files, by any path: SQLite keeps `-wal` and
    `-shm` beside the real file, which a symlinked `paths.state` (or a bind mount) hides."""
    own = [
        base.with_name(base.name + end)
        for base in (state, state.resolve())
        for end in _BESIDE_THE_STATE
    ]
    if dest.resolve() in {path.resolve() for path in own}:
        return True
    if not dest.exists():
        return False
    return any(path.exists() and os.path.samefile(path, dest) for path in own)


def take_backup(state: Path, dest: Path, *, overwrite: bool = False) -> BackupTaken:
    """Copy the state to `dest` (a file, or a folder where it is named by the time) while
    writers go on; the state's folder is only read. `StoreError` says what stopped it; a
    partial copy never keeps the name."""
    started = time.monotonic()
    timed = dest.is_dir()
    target_path = destination(state, dest, datetime.now(UTC), overwrite=overwrite)
    partial = target_path.with_name(f".{target_path.name}{_PARTIAL}{os.getpid()}")
    sweep_abandoned(target_path.parent, _PARTIAL)
    try:
        taken = copy_checked(state, partial)
        make_durable(partial)
        target_path = _released(partial, target_path, overwrite=overwrite, timed=timed)
    finally:
        for leftover in (partial, *sqlite_files(partial)):
            with suppress(FileNotFoundError):
                leftover.unlink()
    return BackupTaken(
        path=target_path,
        bytes=target_path.stat().st_size,
        records=taken[0],
        batches=taken[1],
        migration=taken[2],
        last_change=taken[3],
        seconds=time.monotonic() - started,
    )


_PARTIAL = ".partial-"


ABANDONED_AFTER_SECONDS = 600


def sweep_abandoned(folder: Path, marker: str) -> None:
    """The partial copies (named `.NAME<marker><pid>`) of backups or restores killed in this
    folder (kill -9, the OOM killer): their process is gone, and nothing else would ever
    remove them. One written to in the last ten minutes is left alone: a copy of another host
    (a shared folder, another PID namespace) may be writing it."""
    now = time.time()
    for found in folder.glob(f".*{marker}*"):
        pid = found.name.rsplit(marker, 1)[1].split("-", 1)[0]
        with suppress(OSError):
            recent = now - found.stat().st_mtime < ABANDONED_AFTER_SECONDS
            if pid.isdigit() and gone(int(pid)) and not recent:
                found.unlink()


def sqlite_files(path: Path) -> list[Path]:
    """What SQLite writes beside a database while it copies into it or settles its journal:
    left behind by a copy that failed (a full disk), they would pile up in the folder."""
    return [path.with_name(path.name + end) for end in ("-journal", "-wal", "-shm")]


def copy_checked(state: Path, partial: Path) -> tuple[int, int, str | None, str | None]:
    try:
        source = connect(state, readonly=True)
    except sqlite3.Error as exc:
        raise storage_error(exc, state, opening=True) from None
    try:
        create_private(partial)
        target = sqlite3.connect(partial, isolation_level=None)
    except (sqlite3.Error, OSError) as exc:
        source.close()
        raise _unwritable(partial, exc) from None
    try:
        with told_if_changed(source, state):
            try:
                source.backup(target)
            except sqlite3.Error as exc:
                raise _backup_error(exc, state, partial) from None
        return _settled(target, state, partial)
    finally:
        target.close()
        source.close()


def _settled(
    target: sqlite3.Connection, state: Path, partial: Path
) -> tuple[int, int, str | None, str | None]:
    """The copy on its own (no `-wal`), checked; its records, batches, last migration and
    when its last change of a record was stored (what a restore does not have is after it)."""
    try:
        target.execute("PRAGMA journal_mode = DELETE")
        check_integrity(target, state)
        records = target.execute("SELECT count(*) FROM records").fetchone()[0]
        batches = target.execute("SELECT count(*) FROM batches").fetchone()[0]
        applied = [m.name for m in migrations.applied(Database(target))]
        last = target.execute("SELECT at FROM history ORDER BY id DESC LIMIT 1").fetchone()
    except sqlite3.Error as exc:
        raise _backup_error(exc, state, partial) from None
    change = None if last is None else str(last[0])
    return int(records), int(batches), applied[-1] if applied else None, change


def _backup_error(exc: sqlite3.Error, state: Path, partial: Path) -> StoreError:
    """A damaged state is the state's error; anything else failing to write is the backup's."""
    code = primary_code(exc)
    if code in CORRUPT_CODES:
        return storage_error(exc, state)
    if code in FULL_CODES:
        return _unwritable(partial, exc)
    return storage_error(exc, state)


def _unwritable(partial: Path, exc: BaseException) -> StoreError:
    return StoreError(
        f"cannot write the backup in {partial.parent}: {exc}; free space on that disk or "
        "make the folder writable by this user (the state is unchanged)"
    )


def make_durable(partial: Path) -> None:
    try:
        fd = os.open(partial, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise _unwritable(partial, exc) from None


def _released(partial: Path, target: Path, *, overwrite: bool, timed: bool) -> Path:
    """The name the checked copy took: `target`, or, named by the time in a folder where
    another backup took that name meanwhile (two started in the same second: a cron job and
    an operator's), the next free one."""
    named = target
    for _ in range(100):
        try:
            _release(partial, target, overwrite=overwrite)
            return target
        except FileExistsError:
            if not timed:
                raise StoreError(
                    f"the backup {target} was created meanwhile by another process: choose "
                    "another name, or pass --overwrite to replace it"
                ) from None
            target = _free(named)
    raise StoreError(f"no free name for the backup in {target.parent}: remove old backups")


def _release(partial: Path, target: Path, *, overwrite: bool) -> None:
    """The checked copy takes its name at once, and keeps it across a power cut;
    `FileExistsError` when the name was taken meanwhile."""
    try:
        if overwrite:
            os.replace(partial, target)
        else:
            _link(partial, target)
        fsync_directory(target.parent)
    except FileExistsError:
        raise
    except OSError as exc:
        raise _unwritable(partial, exc) from None


def _link(partial: Path, target: Path) -> None:
    """The name taken only if free (`os.link` fails when it exists); a file system without
    hard links gets the same check, then a rename."""
    try:
        os.link(partial, target)
    except FileExistsError:
        raise
    except OSError:
        if target.exists():
            raise FileExistsError(target) from None
        os.replace(partial, target)
