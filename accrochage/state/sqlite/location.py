"""Where a SQLite state lives, as a picklable value: other processes open readers from it,
back it up, restore it, plan its upgrade and look at its disk's free space."""

from __future__ import annotations

import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from accrochage.state.base import (
    BackupTaken,
    Compacted,
    Reader,
    Restored,
    ServiceGuard,
    StoreLocation,
    UpgradePlan,
)
from accrochage.state.sqlite.backup import take_backup
from accrochage.state.sqlite.compact import compact_state
from accrochage.state.sqlite.connection import connect, storage_error
from accrochage.state.sqlite.openers import openers
from accrochage.state.sqlite.reader import SqliteReader
from accrochage.state.sqlite.restore import restore_backup
from accrochage.state.sqlite.service_lock import ServiceLock
from accrochage.state.sqlite.upgrade import serving_pid, upgrade_plan


@dataclass(frozen=True, slots=True)
class SqliteLocation(StoreLocation):
    path: Path

    def open_reader(self) -> Reader:
        try:
            return SqliteReader(connect(self.path, readonly=True), self.path)
        except sqlite3.Error as exc:
            raise storage_error(exc, self.path, opening=True) from None

    def service_guard(self) -> ServiceGuard:
        return ServiceLock(self.path)

    def backup(self, dest: Path, *, overwrite: bool = False) -> BackupTaken:
        return take_backup(self.path, dest, overwrite=overwrite)

    def restore(self, backup: Path) -> Restored:
        return restore_backup(backup, self.path)

    def compact(self) -> Compacted:
        return compact_state(self.path)

    def upgrade_plan(self) -> UpgradePlan:
        return upgrade_plan(self.path)

    def free_bytes(self) -> int | None:
        try:
            return shutil.disk_usage(self.path.parent).free
        except OSError:  # the folder gone: the write that follows says so
            return None

    def served_by(self) -> int | None:
        return serving_pid(self.path)

    def openers(self) -> list[int] | None:
        return openers(self.path)

    def log_bytes(self) -> int | None:
        """The `-wal`'s size: SQLite starts it over once its pages are copied back
        (`checkpoint.py`), and cuts a longer one back to `WAL_KEPT_BYTES`; a reader that
        keeps old pages (a long backup) lets it grow until it ends."""
        try:
            return self.path.with_name(self.path.name + "-wal").stat().st_size
        except FileNotFoundError:  # the last connection closed took it away
            return 0
        except OSError:
            return None
