"""Helper processes that a killed one cannot take down with it.

`concurrent.futures.ProcessPoolExecutor` gives its processes one task queue and one result
queue, each behind a lock they share: a process killed (kill -9, the OOM killer) while it
held one of them, or halfway through writing its answer, left the others blocked on that
lock for ever and the executor waiting for them, so the next group's decoding, a flush or
the service's stop hung (CI once waited 90 minutes on the decode pool's kill test).

Here each helper has a pipe of its own, written and read by one thread of its starter: a dead
helper is an end of file on its own pipe, never a lock another helper waits on. The first
helper found dead breaks the pool: its task and every task not yet answered fail with
`HelperDied`, the other helpers are ended, and the pool refuses new work (its owner starts
a new one). A task that cannot be pickled fails alone, with the pickling error.
"""

from __future__ import annotations

import contextlib
import logging
import pickle
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from multiprocessing.reduction import ForkingPickler
from typing import Any, TypeVar

from accrochage.helper_main import HelperDied, RemoteTraceback, no_initializer, serve
from accrochage.processes import PRELOAD, helper_context

__all__ = ["HelperDied", "HelperPool", "RemoteTraceback"]

log = logging.getLogger("accrochage.pool")
T = TypeVar("T")
END_SECONDS = 5.0
"""How long a stopped helper has to end before it is killed."""
STOP_SECONDS = 120.0
"""How long a shutdown waits for the tasks already given to be answered."""
TASK_SECONDS = 600.0
"""How long a task may take, from its sending to its answer, before its helper is taken for
hung (stopped, deadlocked) and killed: a file at the CDC's limit renders in under 20 s, a
decode piece in milliseconds. Without it, a flush or a decode group waited for ever."""

_Work = tuple[Future[Any], Callable[..., Any], tuple[Any, ...]]


@dataclass(slots=True)
class _Helper:
    process: BaseProcess
    conn: Connection
    thread: threading.Thread | None = None


class HelperPool:
    """`processes` helper processes started through the fork server, each running
    `initializer(*initargs)` first; `submit` runs a function in the first free one. `preload`:
    the modules its helpers run, for a fork server this pool is the first to start.

    Futures are failed or cancelled outside the pool's lock: their done-callbacks may call
    the pool again (a decode group's callback shuts a broken pool down)."""

    def __init__(
        self,
        processes: int,
        *,
        initializer: Callable[..., None] = no_initializer,
        initargs: Sequence[Any] = (),
        name: str = "helper",
        task_seconds: float = TASK_SECONDS,
        preload: Sequence[str] = PRELOAD,
    ) -> None:
        self.task_seconds = task_seconds
        self._tasks: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._broken = False
        self._closed = False
        self._helpers: list[_Helper] = []
        try:
            for n in range(processes):
                self._helpers.append(_start(initializer, tuple(initargs), f"{name}-{n}", preload))
        except BaseException:
            for helper in self._helpers:
                helper.process.kill()
                _end(helper)
            raise
        for helper in self._helpers:
            helper.thread = threading.Thread(
                target=self._run, args=(helper,), name=helper.process.name, daemon=True
            )
            helper.thread.start()

    @property
    def pids(self) -> list[int]:
        return [h.process.pid for h in self._helpers if h.process.pid is not None]

    @property
    def broken(self) -> bool:
        return self._broken

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:
            if self._broken:
                raise HelperDied(_DIED)
            if self._closed:
                raise RuntimeError("the helper pool is shut down")
            self._tasks.put((future, fn, args))
        return future

    def shutdown(self, *, cancel_futures: bool = False) -> None:
        """Stop the helpers once the tasks already given are answered (`cancel_futures`:
        those not started yet are cancelled), and wait for them to end. From a task's
        done-callback (one of the pool's threads), the helpers are ended in the background."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            waiting = self._taken() if cancel_futures else []
            for _ in self._helpers:
                self._tasks.put(None)
        for work in waiting:
            work[0].cancel()
        if threading.current_thread() in {h.thread for h in self._helpers}:
            threading.Thread(target=self._wait_ended, name="helpers-end", daemon=True).start()
        else:
            self._wait_ended()

    def _wait_ended(self) -> None:
        """Each helper's thread ends once its last task is answered; a helper that answers
        nothing within `STOP_SECONDS` (hung, not dead) is killed, failing its task."""
        deadline = time.monotonic() + STOP_SECONDS
        here = threading.current_thread()
        for helper in self._helpers:
            thread = helper.thread
            if thread is None or thread is here:
                continue
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                log.error("a helper process did not finish its task in time; ending it")
                helper.process.kill()
                thread.join(END_SECONDS)
        for helper in self._helpers:
            _end(helper)

    def _run(self, helper: _Helper) -> None:
        """One helper's thread: hands it a task, waits for its answer, and so on."""
        work: _Work | None = None
        try:
            while (work := self._tasks.get()) is not None and self._one(helper, work):
                work = None  # an idle thread holds no task, its arguments nor its answer
        except BaseException as exc:  # never a future left running for ever
            log.critical("a helper pool's thread failed (%s)", type(exc).__name__)
            self._break()
            if work is not None and not work[0].done():
                work[0].set_exception(HelperDied(_DIED))
            raise
        with contextlib.suppress(OSError):
            helper.conn.send(None)

    def _one(self, helper: _Helper, work: _Work) -> bool:
        """Run one task in `helper`; False once the helper is gone (the pool is broken)."""
        future, fn, args = work
        if not future.set_running_or_notify_cancel():
            return True
        try:
            data = ForkingPickler.dumps((fn, args))
        except Exception as exc:  # this task's own arguments: it fails alone
            future.set_exception(exc)
            return True
        watch = _Watch(helper, self.task_seconds)
        try:
            helper.conn.send_bytes(data)
            del data
            answer = helper.conn.recv_bytes()
        except (EOFError, OSError):
            hung = watch.stop()
            self._break()  # before this task fails: its group's other tasks fail first
            why = _HUNG.format(seconds=self.task_seconds) if hung else _DIED
            future.set_exception(HelperDied(why))
            return False
        watch.stop()
        try:
            ok, value, told = pickle.loads(answer)
        except Exception as exc:
            future.set_exception(exc)
            return True
        if ok:
            future.set_result(value)
            return True
        if told is not None and isinstance(value, BaseException):
            value.__cause__ = RemoteTraceback(told)
        future.set_exception(value)
        return True

    def _break(self) -> None:
        """A helper died: the other helpers are killed (their unanswered work is lost
        anyway; each thread then finds its helper's pipe closed, or the end marker), and
        every task not taken fails."""
        with self._lock:
            if self._broken:
                return
            self._broken = True
            waiting = self._taken()
            for _ in self._helpers:
                self._tasks.put(None)
        for helper in self._helpers:
            if helper.process.is_alive():
                helper.process.kill()
        for future, _, _ in waiting:
            if future.set_running_or_notify_cancel():
                future.set_exception(HelperDied(_DIED))

    def _taken(self) -> list[_Work]:
        """The tasks no helper has taken yet, out of the queue (under the lock; their
        futures are settled after it is released)."""
        taken: list[_Work] = []
        while True:
            try:
                work = self._tasks.get_nowait()
            except queue.Empty:
                return taken
            if work is not None:
                taken.append(work)


def _start(
    initializer: Callable[..., None], initargs: tuple[Any, ...], name: str, preload: Sequence[str]
) -> _Helper:
    context = helper_context(preload)
    mine, theirs = context.Pipe()
    process = context.Process(
        target=serve, args=(theirs, initializer, initargs), name=name, daemon=True
    )
    try:
        process.start()
    finally:
        theirs.close()  # the helper's end lives in the helper only: its death is an EOF here
    return _Helper(process, mine)


class _Watch:
    """Kills `helper` if the task it was given is not answered within `seconds`."""

    def __init__(self, helper: _Helper, seconds: float) -> None:
        self.helper = helper
        self.lock = threading.Lock()
        self.finished = False
        self.hung = False
        self.timer = threading.Timer(seconds, self._fire)
        self.timer.daemon = True
        self.timer.start()

    def _fire(self) -> None:
        with self.lock:
            if self.finished:  # answered as the time ran out
                return
            self.hung = True
        log.error("a helper process gave no answer in time: it is ended")
        self.helper.process.kill()

    def stop(self) -> bool:
        """True when the helper was taken for hung and killed."""
        with self.lock:
            self.finished = True
        self.timer.cancel()
        return self.hung


def _end(helper: _Helper) -> None:
    process = helper.process
    if process.pid is not None:
        process.join(END_SECONDS)
        if process.exitcode is None:
            process.kill()
            process.join(END_SECONDS)
    helper.conn.close()


_HUNG = (
    "a helper process gave no answer within {seconds:g} s (stopped or hung) and was ended: "
    "nothing of its work was recorded; try again"
)
_DIED = (
    "a helper process ended before answering (killed, or out of memory): nothing of its work "
    "was recorded; try again"
)
