"""The SQLite state's service guard: `<state>.lock` beside the database file, held with
`flock` while `accrochage run` or `worker` serves the state (`state/base/service.py`)."""

from __future__ import annotations

import fcntl
import logging
import os
import time
from contextlib import suppress
from pathlib import Path

from accrochage.errors import ServiceTaken, StoreError
from accrochage.state.base.service import ServiceGuard
from accrochage.state.sqlite.upgrade import service_lock_path

log = logging.getLogger("accrochage.service")


class ServiceLock(ServiceGuard):
    def __init__(self, state: Path) -> None:
        self.state = state
        self.path = service_lock_path(state)
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise StoreError(
                f"cannot open the service lock {self.path}: {exc.strerror}; check paths.state "
                "and that its folder is writable by the service's user (a lock file left by "
                "another user, root say, must be removed or given to it)"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        write_pid(fd)
        self._fd = fd
        return True

    def acquire_or_refuse(self) -> None:
        if not self.try_acquire():
            raise ServiceTaken(self._taken_message())

    def wait(self, poll: float = 0.5) -> None:
        if self.try_acquire():
            return
        log.info("another service holds %s: waiting as a standby", self.path)
        while not self.try_acquire():
            time.sleep(poll)
        log.info("the active service is gone: taking over")

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def holder_pid(self) -> int | None:
        """The pid the holder wrote in the lock file (None: unreadable, or not written yet)."""
        try:
            text = self.path.read_text(encoding="ascii", errors="replace").strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def _taken_message(self) -> str:
        pid = self.holder_pid()
        who = f"process {pid}" if pid is not None else "another process"
        return (
            f"another service runs on the state {self.state} ({who}: `accrochage run` or "
            f"`accrochage worker`, or a `restore` or `compact` under way, holding "
            f"{self.path.name}): one service per state; stop that one first (or wait for the "
            "restore or compact), or give this one a paths.state of its own"
        )


def write_pid(fd: int) -> None:
    """This process's id in the lock file it holds, for the messages of those it refuses. Only
    that: a full disk (where `compact` is run, or a service restarts) refuses it, without a
    traceback, and the lock is held all the same."""
    with suppress(OSError):
        os.write(fd, f"{os.getpid()}\n".encode())
