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
import time
from dataclasses import dataclass, field
from pathlib import Path

from accrochage.errors import StoreBusyError, StoreError
from accrochage.state.sqlite.openers import has_open

DEFAULT_WAIT_SECONDS = 30.0
"""SQLite's busy timeout here (`store.BUSY_TIMEOUT_MS`): what a writer waited before the lock."""
INTERRUPT_CHECK_SECONDS = 0.25
"""How often a waiting writer looks whether its waits were interrupted (`WriteLock.interrupt`);
the lock's release wakes it at once whatever this is."""


@dataclass
class _Attempt:
    """A wait for the lock on a descriptor of its own, in a thread of its own.

    It outlives a writer that gives up: the next write of the process waits on it again
    (one thread and one descriptor however long the holder keeps the lock). When it takes
    the lock with no writer waiting, it lets go at once.
    """

    fd: int
    guard: threading.Lock = field(default_factory=threading.Lock)
    taken: threading.Event = field(default_factory=threading.Event)
    waiting: bool = False
    ended: bool = False
    """The thread is done: it handed the lock over, let go of it, or failed."""
    error: OSError | None = None

    def run(self) -> None:
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except OSError as exc:
            self.error = exc
        with self.guard:
            self.ended = True
            if self.waiting:
                self.taken.set()
                return
        _let_go(self.fd, locked=self.error is None)

    def wait(self, seconds: float, interrupted: threading.Event) -> bool:
        """True when this writer (`waiting` set) now holds the lock through `fd`; False after
        `seconds`, or sooner once `interrupted` is set."""
        deadline = time.monotonic() + seconds
        try:
            while not self.taken.wait(min(INTERRUPT_CHECK_SECONDS, seconds)):
                seconds = deadline - time.monotonic()
                if seconds <= 0 or interrupted.is_set():
                    break
        except BaseException:  # interrupted (Ctrl-C) as the lock came: not kept
            if self._stop_waiting():
                _let_go(self.fd, locked=self.error is None)
            raise
        return self._stop_waiting()

    def _stop_waiting(self) -> bool:
        with self.guard:
            self.waiting = False
            return self.taken.is_set()


def _let_go(fd: int, *, locked: bool) -> None:
    if locked:
        fcntl.flock(fd, fcntl.LOCK_UN)  # before the close: a forked copy would keep it
    os.close(fd)


class WriteLock:
    """`<state>.write-lock`, held by at most one writer of every process at a time."""

    SUFFIX = ".write-lock"  # another lock taken the same way names another (`cut_lock.py`)

    def __init__(
        self, state: Path, wait_seconds: float = DEFAULT_WAIT_SECONDS, *, read_only: bool = False
    ) -> None:
        """`read_only`: for a reader that only asks who holds the lock (`held`); it neither
        creates the file nor takes the lock."""
        self.state = state
        self.path = state.with_name(state.name + self.SUFFIX)
        self.wait_seconds = wait_seconds
        self.read_only = read_only
        self._fd = -1 if read_only else self._open()
        self._pending: _Attempt | None = None
        self._guard = threading.Lock()
        self._interrupted = threading.Event()

    def interrupted(self) -> bool:
        return self._interrupted.is_set()

    def interrupt(self) -> None:
        """A writer waiting for another one gives up now, and later writers that find the lock
        taken give up at once (`StoreBusyError`): a service being stopped does not wait for a
        command that holds the state. A free lock is still taken."""
        self._interrupted.set()

    def _open(self) -> int:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise StoreError(
                f"cannot open the state's write lock {self.path}: {exc.strerror}; check "
                "paths.state and that its folder is writable"
            ) from None

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)

    def acquire(self, seconds: float | None = None) -> int:
        """The descriptor now holding the lock, to give to `release`; `StoreBusyError` when
        another writer kept it for `seconds` (default: `wait_seconds`)."""
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return self._fd
        except BlockingIOError:
            pass
        if self._interrupted.is_set():
            raise busy_error(self.state, 0.0, holder(self.path))
        attempt = self._attempt()
        started = time.monotonic()
        if not attempt.wait(self.wait_seconds if seconds is None else seconds, self._interrupted):
            waited = max(self.wait_seconds, seconds or 0.0)  # a write's part of it, or more
            if self._interrupted.is_set():
                waited = round(time.monotonic() - started, 1)
            raise busy_error(self.state, waited, holder(self.path))
        with self._guard:
            self._pending = None
        if attempt.error is not None:
            os.close(attempt.fd)
            raise StoreError(f"cannot lock {self.path}: {attempt.error.strerror}") from None
        return attempt.fd

    def _attempt(self) -> _Attempt:
        """The wait still under way (a writer gave up on it), or a new one; this writer
        waiting on it (set before its thread can find nobody waiting and let go)."""
        with self._guard:
            pending = self._pending
            if pending is not None:
                with pending.guard:
                    if not pending.ended:
                        pending.waiting = True
                        return pending
            attempt = _Attempt(self._open(), waiting=True)
            self._pending = attempt
            threading.Thread(target=attempt.run, name="write-lock-wait", daemon=True).start()
            return attempt

    def held(self) -> bool:
        """True while a writer (of any process, this one's included) holds the lock: a try on
        a descriptor of its own that lets go at once. Never on `_fd`: a lock taken again
        through the descriptor a writer of this process holds it by would be released by it."""
        if self.read_only:
            try:
                fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:  # no writer ever ran, or this user may not look
                return False
        else:
            fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return True
        _let_go(fd, locked=True)
        return False

    def release(self, fd: int) -> None:
        if fd == self._fd:
            fcntl.flock(fd, fcntl.LOCK_UN)
        else:
            _let_go(fd, locked=True)


@dataclass(frozen=True, slots=True)
class Holder:
    pid: int
    state: str
    """Its state letter in `/proc/<pid>/stat` (`T`: stopped), "" when unknown."""

    @property
    def stopped(self) -> bool:
        return self.state in {"T", "t"}


def holder(lock: Path) -> Holder | None:
    """Who holds the `flock` on `lock`, from `/proc/locks` (Linux), when that process is seen
    to have the file open (a pid is only named, and advice only given, when it is sure)."""
    found = _holders([lock], "FLOCK")
    return found[0] if found else None


def sqlite_holder(state: Path) -> Holder | None:
    """A stopped process holding one of SQLite's own locks on the state (the database, its
    WAL index): what keeps readers out when the database stays locked (a command stopped with
    Ctrl-Z as it closed the state, its last checkpoint under way). None: no stopped one."""
    paths = [state, state.with_name(state.name + "-shm")]
    stopped = [h for h in _holders(paths, "POSIX") if h.stopped and h.pid != os.getpid()]
    return stopped[0] if stopped else None


def _holders(paths: list[Path], kind: str) -> list[Holder]:
    inodes: dict[str, Path] = {}
    for path in paths:
        try:
            inodes[str(os.stat(path).st_ino)] = path
        except OSError:
            continue
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as locks:
            lines = locks.read().splitlines()
    except OSError:
        return []
    found: dict[int, Holder] = {}
    for line in lines:
        fields = line.split()
        # `N: FLOCK ADVISORY WRITE pid maj:min:inode ...`; a waiter's line has `->` after N:.
        # The device as the kernel names it may not be what stat() gives (overlayfs): the
        # inode, then the process's open files, tell.
        if len(fields) < 6 or fields[1] != kind:
            continue
        locked = inodes.get(fields[5].rpartition(":")[2])
        pid = int(fields[4]) if fields[4].isdigit() else 0
        if locked is not None and pid > 0 and pid not in found and has_open(pid, locked):
            found[pid] = Holder(pid, _state(pid))
    return list(found.values())


def _state(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(errors="replace")
    except OSError:
        return ""
    after = stat.rpartition(")")[2].split()  # the command in parentheses may hold anything
    return after[0] if after else ""


def locked_message(state: Path, seconds: float, found: Holder) -> str:
    """What a process that could not read the state for `seconds` says of the stopped
    process holding SQLite's lock on it (its pid, never its command line)."""
    return (
        f"the state database {state} stayed locked for {seconds:g} s: process {found.pid} "
        f"(`ps -o args= -p {found.pid}` shows it) is stopped (Ctrl-Z?) while it holds it; "
        f"resume it (`fg` in its terminal, or `kill -CONT {found.pid}`) or end it, then run "
        "this again"
    )


def busy_error(state: Path, seconds: float, found: Holder | None) -> StoreBusyError:
    """What the writer that gave up says: who holds the state and how to free it, then that
    nothing was stored (`situation`: the first part alone, for a writer that waits on). The
    holder's command line is not quoted (its file names may name people): its pid is."""
    situation = busy_situation(state, seconds, found)
    error = StoreBusyError(
        f"{situation}; nothing of this operation was stored: send or run it again once that "
        "writer is done (state.lock_wait sets how long to wait)"
    )
    error.situation = situation
    return error


def busy_situation(state: Path, seconds: float, found: Holder | None) -> str:
    waited = f"another writer has held the state {state} for {seconds:g} s"
    if found is None:
        return waited
    if found.pid == os.getpid():
        return f"{waited}: this process (pid {found.pid}), another of its writers"
    who = f"process {found.pid} (`ps -o args= -p {found.pid}` shows it)"
    if found.stopped:
        return (
            f"{waited}: {who} is stopped (Ctrl-Z?); resume it (`fg` in its terminal, or "
            f"`kill -CONT {found.pid}`) or end it"
        )
    return f"{waited}: {who}; let it finish, or end it if it hangs"
