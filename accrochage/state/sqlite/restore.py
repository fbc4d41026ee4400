"""A backup put back in the state's place, with nothing else able to write meanwhile.

By hand, a restore went wrong in three ways: copied under a running service (which went on
writing to the file it had open), beside the old `-wal` (SQLite replayed the old state's
commits over the backup: "damaged"), or over the only copy of a state that was not damaged
after all. Here the backup is copied into the state's folder and checked first (SQLite's
backup, as `backup` takes one); then, holding the service's lock and the write lock, the
state it replaces is moved aside with its `-wal` and `-shm`, never deleted, and the checked
copy takes the state's name, durably.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import time
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path

from accrochage.errors import StorageCorruptError, StoreError
from accrochage.private_files import fsync_directory
from accrochage.state.sqlite.alone import HeldAlone
from accrochage.state.sqlite.backup import (
    copy_checked,
    is_own_file,
    make_durable,
    sqlite_files,
    sweep_abandoned,
)
from accrochage.state.sqlite.connection import connect, storage_error
from accrochage.state.sqlite.state_path import real_state_path
from accrochage.state.sqlite.upgrade import pending_migrations
from accrochage.state.values import Restored

_RESTORING = ".restoring-"
_STATE_FILES = ("", "-wal", "-shm")


def restore_backup(backup: Path, state: Path) -> Restored:
    """Put `backup` in the place of the state at `state`; `StoreError` says what stopped it,
    the state unchanged then."""
    started = time.monotonic()
    state = real_state_path(state)
    if not backup.is_file():
        raise StoreError(f"the backup {backup} is not a file: name a file `backup` wrote")
    if is_own_file(state, backup):
        raise StoreError(
            f"{backup} is the state itself or one of its files: name a backup kept elsewhere"
        )
    if not state.parent.is_dir():
        raise StoreError(
            f"the state's folder {state.parent} does not exist: create it (paths.state), "
            "then restore again"
        )
    _orphan_wal(state)
    sweep_abandoned(state.parent, _RESTORING)
    partial = state.with_name(f".{state.name}{_RESTORING}{os.getpid()}")
    try:
        records, batches, migration, last_change = _copied(backup, partial)
        pending = _pending(partial, backup)
        _new_changes_epoch(partial)
        make_durable(partial)
        with HeldAlone(state, "restore"):
            _checkpoint(state)
            aside = _set_aside(state)
            os.replace(partial, state)
            fsync_directory(state.parent)
    finally:
        for leftover in (partial, *sqlite_files(partial)):
            with suppress(FileNotFoundError):
                leftover.unlink()
    return Restored(
        backup=backup,
        state=state,
        replaced=aside,
        records=records,
        batches=batches,
        migration=migration,
        last_change=last_change,
        pending=tuple(pending),
        seconds=time.monotonic() - started,
    )


def _copied(backup: Path, partial: Path) -> tuple[int, int, str, str | None]:
    """The backup copied beside the state and checked: its records, batches, schema and
    last change."""
    refused = f"the backup {backup} cannot be restored: it is no"
    again = "name a file `accrochage backup` wrote (the state is unchanged)"
    try:
        records, batches, migration, last_change = copy_checked(backup, partial)
    except StorageCorruptError:
        raise StoreError(
            f"{refused} readable SQLite database (damaged, or no backup); {again}"
        ) from None
    except StoreError as exc:
        raise StoreError(f"{refused} state of accrochage ({exc}); {again}") from None
    if migration is None:
        raise StoreError(f"{refused} state of accrochage (no migration applied); {again}")
    return records, batches, migration, last_change


def _orphan_wal(state: Path) -> None:
    """A `-wal` with commits beside no state: a restore killed after it set the state aside
    and before it moved its `-wal`. Removed, those commits would be lost; kept, they would be
    replayed over the backup."""
    wal = state.with_name(state.name + "-wal")
    if not state.exists() and wal.exists() and wal.stat().st_size > 0:
        raise StoreError(
            f"{wal} holds commits and its state is gone (a restore interrupted?): move it "
            f"beside the latest {state.name}.replaced-… file (as that name + -wal), or aside "
            "if none is, then restore again"
        )


def _checkpoint(state: Path) -> None:
    """The state's commits moved from its `-wal` into its file, so that the copy set aside
    holds them even if a kill stops the renames between the two. A damaged state (why one
    restores) may refuse: it is set aside as it is."""
    if not state.exists():
        return
    try:
        conn = sqlite3.connect(state, isolation_level=None, timeout=5)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
    except sqlite3.Error:
        pass


def _pending(copy: Path, backup: Path) -> list[str]:
    """The migrations the next writer applies to the restored state; `StoreError` for a
    backup a newer version wrote."""
    try:
        conn = connect(copy, readonly=True)
    except sqlite3.Error as exc:
        raise storage_error(exc, backup, opening=True) from None
    try:
        return pending_migrations(conn, backup)
    except sqlite3.Error as exc:
        raise storage_error(exc, backup, opening=True) from None
    finally:
        conn.close()


def _new_changes_epoch(copy: Path) -> None:
    """A new name for the restored state's numbering of changes (m260): the changes stored
    after the backup are gone and new ones take their numbers again, so a platform's mark of
    the old numbering (`GET /changes`) must be told. A backup older than m260 gets its first
    epoch from the migration, new as well."""
    conn = sqlite3.connect(copy, isolation_level=None)
    try:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'state_identity'").fetchone():
            conn.execute(
                "UPDATE state_identity SET value = ? WHERE key = 'changes_epoch'",
                (secrets.token_hex(4),),
            )
    except sqlite3.Error as exc:
        raise storage_error(exc, copy) from None
    finally:
        conn.close()


def _set_aside(state: Path) -> Path | None:
    """The state's files renamed `<state>.replaced-<UTC time>` (with its `-wal` and `-shm`,
    so that it can still be opened as it was); None when there was no state."""
    if not state.exists():
        for end in _STATE_FILES[1:]:  # empty (`_orphan_wal`): nothing to replay them over
            with suppress(FileNotFoundError):
                state.with_name(state.name + end).unlink()
        return None
    at = datetime.now(UTC)
    aside = state.with_name(f"{state.name}.replaced-{at:%Y%m%dT%H%M%SZ}")
    number = 1
    while aside.exists():
        number += 1
        aside = state.with_name(f"{state.name}.replaced-{at:%Y%m%dT%H%M%SZ}-{number}")
    for end in _STATE_FILES:
        with suppress(FileNotFoundError):
            os.rename(state.with_name(state.name + end), aside.with_name(aside.name + end))
    return aside
