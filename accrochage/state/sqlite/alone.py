"""The state held by this process alone: the service's lock, the write lock and the cut lock,
taken without waiting, for what must not run beside any other process (`restore`,
`compact`): a flush cutting a batch in parts holds no write lock between two."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from accrochage.errors import StoreBusyError, StoreError
from accrochage.state.sqlite.cut_lock import CutFileLock
from accrochage.state.sqlite.service_lock import write_pid
from accrochage.state.sqlite.upgrade import service_lock_path
from accrochage.state.sqlite.write_lock import WriteLock


class HeldAlone:
    """A service or a writer at work on the state refuses `action`, named by its pid, and
    leaves the state unchanged."""

    def __init__(self, state: Path, action: str) -> None:
        self.state = state
        self.action = action
        self._service = -1
        self._held: list[tuple[WriteLock, int]] = []

    def __enter__(self) -> None:
        path = service_lock_path(self.state)
        self._service = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(self._service, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.read(self._service, 32).decode("ascii", "replace").strip() or "?"
            self._close()
            raise StoreError(
                f"a service (process {pid}) serves the state {self.state}, or a restore or a "
                f"compact holds it: stop every accrochage process, then {self.action} again "
                "(the state is unchanged)"
            ) from None
        # Its own pid where a service writes its own: a `run` started meanwhile, or a
        # command that finds the state held, names this process, not the last service's.
        os.ftruncate(self._service, 0)
        write_pid(self._service)
        try:
            for kind in (WriteLock, CutFileLock):
                lock = kind(self.state, 0.0)
                try:
                    self._held.append((lock, lock.acquire(0.0)))
                except BaseException:
                    lock.close()
                    raise
        except StoreBusyError as exc:
            self._close()
            raise StoreError(
                f"{exc.situation or exc}; {self.action} again once it is done (the state is "
                "unchanged)"
            ) from None
        except BaseException:
            self._close()
            raise

    def __exit__(self, *_: object) -> None:
        self._close()

    def _close(self) -> None:
        while self._held:
            lock, fd = self._held.pop()
            lock.release(fd)
            lock.close()
        if self._service >= 0:
            os.close(self._service)
            self._service = -1
