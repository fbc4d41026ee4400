"""Whether this version may use a state as it is, or migrate it, and when it must not.

A state migrated by a newer accrochage is refused (the older code would misread it); a state
that needs migrating is migrated only by a writer that no other version is serving: a newer
command run beside an older service changed the tables under it (a large migration also held
the write lock for minutes, failing the service's writes). A read-only command never migrates.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from pathlib import Path

from sqlite_utils import Database

from accrochage.errors import StateNeedsMigration, StoreError
from accrochage.state.sqlite.connection import connect, storage_error
from accrochage.state.sqlite.migrations import migrations
from accrochage.state.sqlite.state_path import real_state_path
from accrochage.state.values import UpgradePlan


def service_lock_path(state: Path) -> Path:
    """`<state>.lock`, held by the service (`run`, `worker`) serving the state (beside the
    database file itself, whatever name the configuration gives it)."""
    real = real_state_path(state)
    return real.with_name(real.name + ".lock")


def pending_migrations(conn: sqlite3.Connection, path: Path) -> list[str]:
    """The migrations this version would apply; `StoreError` for a state a newer version
    migrated (names this version does not know)."""
    db = Database(conn)
    known = {m.name for m in migrations._migrations}
    unknown = [m.name for m in migrations.applied(db) if m.name not in known]
    if unknown:
        raise StoreError(
            f"the state database {path} was migrated by a newer accrochage ({unknown[-1]}): "
            "this version cannot use it; run the newer version (downgrading needs the backup "
            "taken before the upgrade)"
        )
    return [m.name for m in migrations.pending(db)]


def upgrade_plan(path: Path) -> UpgradePlan:
    """The migrations pending on the state and who serves it, read only (`StoreError` for a
    state a newer version migrated)."""
    try:
        conn = connect(path, readonly=True)
    except sqlite3.Error as exc:
        raise storage_error(exc, path, opening=True) from None
    try:
        pending = pending_migrations(conn, path)
        applied = tuple(m.name for m in migrations.applied(Database(conn)))
    except sqlite3.Error as exc:
        raise storage_error(exc, path, opening=True) from None
    finally:
        conn.close()
    return UpgradePlan(pending=tuple(pending), applied=applied, serving=serving_pid(path))


def serving_pid(state: Path) -> int | None:
    """The process serving the state (holding `<state>.lock`) when it is not this one."""
    path = service_lock_path(state)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.read(fd, 32).decode("ascii", "replace").strip()
            pid = int(text) if text.isdigit() else -1
            return None if pid == os.getpid() else pid
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _names(pending: list[str]) -> str:
    """The migrations to apply, the first and last named when they are many."""
    if len(pending) <= 3:
        return ", ".join(pending)
    return f"{pending[0]}, ... {pending[-1]}"


def needs_migration(path: Path, pending: list[str], serving: int | None) -> StateNeedsMigration:
    """Why this process leaves the state as it is, and what upgrades it."""
    what = (
        f"the state database {path} was written by an older accrochage: this version applies "
        f"{len(pending)} migration(s) to it ({_names(pending)})"
    )
    if serving is not None:
        who = f"process {serving}" if serving > 0 else "a process starting now"
        return StateNeedsMigration(
            f"{what}, and a service ({who}) serves it, perhaps of the older "
            "version: stop that service, run `accrochage upgrade --backup FOLDER` with this "
            "version, then start the service with it"
        )
    return StateNeedsMigration(
        f"{what}, and this command only reads: run `accrochage upgrade --backup FOLDER` with "
        "this version first (or start the service with it, which migrates the state)"
    )
