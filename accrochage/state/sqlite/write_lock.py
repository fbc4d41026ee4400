"""The state's write lock: one writer at a time across processes, waited for within a bound.

Writers of every process take an exclusive `flock` on `<state>.write-lock` before `BEGIN
IMMEDIATE`: the kernel wakes a waiting writer the moment the lock is free, where SQLite's busy
handler would sleep up to 100 ms between retries. The kernel releases it when its holder
dies, even by SIGKILL; but a holder that is stopped (Ctrl-Z in a terminal), hung or slowed
to a crawl keeps it. A blocking `flock` cannot be given a timeout, so a writer that finds the
lock taken waits for it in a thread of its own on a descriptor of its own, for at most the
configured time (`state.lock_wait`), then gives up with `StoreBusyError` naming the holder:
a service answers 503 for that group instead of hanging every client with it.
"""

from __future__ import annotations

import fcntl
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from accrochage.errors import StoreBusyError, StoreError

DEFAULT_WAIT_SECONDS = 30.0
"""SQLite's busy timeout here (`store.BUSY_TIMEOUT_MS`): what a writer waited before the lock."""


@dataclass
class _Attempt:
    """One wait for the lock on a descriptor of its own, in a thread of its own."""

    fd: int
    guard: threading.Lock = field(default_factory=threading.Lock)
    taken: threading.Event = field(default_factory=threading.Event)
    abandoned: bool = False
    error: OSError | None = None

    def run(self) -> None:
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except OSError as exc:
            self.error = exc
        with self.guard:
            if self.abandoned:  # the writer gave up meanwhile: nobody else closes it
                os.close(self.fd)
                return
            self.taken.set()

    def give_up(self) -> bool:
        """True when the lock was not taken in time (the thread releases it if it ever is)."""
        with self.guard:
            if self.taken.is_set():
                return False
            self.abandoned = True
            return True


class WriteLock:
    """`<state>.write-lock`, held by at most one writer of every process at a time."""

    def __init__(self, state: Path, wait_seconds: float = DEFAULT_WAIT_SECONDS) -> None:
        self.state = state
        self.path = state.with_name(state.name + ".write-lock")
        self.wait_seconds = wait_seconds
        self._fd = self._open()

    def _open(self) -> int:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise StoreError(
                f"cannot open the state's write lock {self.path}: {exc.strerror}; check "
                "paths.state and that its folder is writable"
            ) from None

    def close(self) -> None:
        os.close(self._fd)

    def acquire(self) -> int:
        """The descriptor now holding the lock, to give to `release`; `StoreBusyError` when
        another writer kept it for `wait_seconds`."""
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return self._fd
        except BlockingIOError:
            pass
        attempt = _Attempt(self._open())
        threading.Thread(target=attempt.run, name="write-lock-wait", daemon=True).start()
        if not attempt.taken.wait(self.wait_seconds) and attempt.give_up():
            raise StoreBusyError(busy_message(self.state, self.wait_seconds, holder(self._fd)))
        if attempt.error is not None:
            os.close(attempt.fd)
            raise StoreError(f"cannot lock {self.path}: {attempt.error.strerror}") from None
        return attempt.fd

    def release(self, fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
        if fd != self._fd:
            os.close(fd)


@dataclass(frozen=True, slots=True)
class Holder:
    pid: int
    command: str
    """The holder's command line, shortened ("" when it could not be read)."""
    state: str
    """Its state letter in `/proc/<pid>/stat` (`T`: stopped), "" when unknown."""


def holder(fd: int) -> Holder | None:
    """Who holds the `flock` on the file open as `fd`, from `/proc/locks` (Linux)."""
    inode = str(os.fstat(fd).st_ino)
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as locks:
            lines = locks.read().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if "->" in fields:  # a waiter, not a holder
            continue
        # `maj:min:inode`: the device as the kernel names it may not be what stat() gives
        # (overlayfs), and this only names the holder in a message.
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5].rpartition(":")[2] == inode:
            pid = int(fields[4])
            return Holder(pid, _command(pid), _state(pid))
    return None


def _command(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return ""
    words = [os.path.basename(a.decode(errors="replace")) for a in argv[:4] if a]
    return " ".join(" ".join(words).split())[:120]


def _state(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(errors="replace")
    except OSError:
        return ""
    return stat.rpartition(")")[2].split()[0] if ")" in stat else ""


def busy_message(path: Path, seconds: float, found: Holder | None) -> str:
    waited = f"another writer has held the state {path} for {seconds:g} s"
    advice = (
        "nothing of this operation was stored: send or run it again once that writer is done "
        "(state.lock_wait sets how long to wait)"
    )
    if found is None:
        return f"{waited}; {advice}"
    who = f"process {found.pid}" + (f" ({found.command})" if found.command else "")
    if found.pid == os.getpid():
        who = f"this process (pid {found.pid}), through another connection"
    if found.state in {"T", "t"}:
        return (
            f"{waited}: {who} is stopped (Ctrl-Z?); resume it (`fg` in its terminal, or "
            f"`kill -CONT {found.pid}`) or end it; {advice}"
        )
    return f"{waited}: {who}; let it finish, or end it if it hangs; {advice}"
