"""One active worker per state file: the others wait on a lock and take over when it dies.

`flock` is released by the kernel when its holder dies, even by SIGKILL, so a standby never
needs to guess whether the active worker is still alive.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from pathlib import Path

log = logging.getLogger("accrochage.kafka")


class StateLock:
    def __init__(self, state: Path) -> None:
        self.path = state.with_name(state.name + ".lock")
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def wait(self, poll: float = 0.5) -> None:
        """Block until this process holds the lock: the standby's whole job."""
        if self.try_acquire():
            return
        log.info("another worker holds %s: waiting as a standby", self.path)
        while not self.try_acquire():
            time.sleep(poll)
        log.info("the active worker is gone: taking over")

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
