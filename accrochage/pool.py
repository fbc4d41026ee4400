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
import pickle
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from multiprocessing.reduction import ForkingPickler
from typing import Any, TypeVar

from accrochage.errors import AccrochageError
from accrochage.processes import helper_context

T = TypeVar("T")
END_SECONDS = 5.0
"""How long a stopped helper has to end before it is terminated, then killed."""

_Work = tuple[Future[Any], Callable[..., Any], tuple[Any, ...]]


class HelperDied(AccrochageError):
    """A helper process ended before answering (killed, or out of memory)."""

    code = "helper_died"
    status = 500


def _serve(conn: Connection, initializer: Callable[..., None], initargs: Sequence[Any]) -> None:
    """A helper's life: its initializer, then one task at a time until told to end, or
    until its starter's end of the pipe closes."""
    initializer(*initargs)
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):  # the starter is gone, or closed its end
            return
        if task is None:
            return
        fn, args = task
        try:
            answer: tuple[bool, Any] = (True, fn(*args))
        except BaseException as exc:  # the starter raises it where the result is awaited
            answer = (False, exc)
        try:
            conn.send_bytes(_pickled(answer))
        except OSError:  # the starter is gone: no one to answer, nothing to report
            return


def _pickled(answer: tuple[bool, Any]) -> memoryview:
    """The answer, or the error of pickling it (a result nested too deep: the starter may do
    the work itself), or at least that error's name."""
    try:
        return ForkingPickler.dumps(answer)
    except Exception as exc:
        try:
            return ForkingPickler.dumps((False, exc))
        except Exception:
            what = "result" if answer[0] else f"{type(answer[1]).__name__}"
            failure = f"the helper's {what} could not be sent back ({type(exc).__name__})"
            return ForkingPickler.dumps((False, RuntimeError(failure)))


def _no_initializer() -> None:
    pass


@dataclass(slots=True)
class _Helper:
    process: BaseProcess
    conn: Connection
    thread: threading.Thread | None = None


class HelperPool:
    """`processes` helper processes started through the fork server, each running
    `initializer(*initargs)` first; `submit` runs a function in the first free one."""

    def __init__(
        self,
        processes: int,
        *,
        initializer: Callable[..., None] = _no_initializer,
        initargs: Sequence[Any] = (),
        name: str = "helper",
    ) -> None:
        self._tasks: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._broken = False
        self._closed = False
        self._helpers = [
            self._start(initializer, tuple(initargs), f"{name}-{n}") for n in range(processes)
        ]
        for helper in self._helpers:
            helper.thread = threading.Thread(
                target=self._run, args=(helper,), name=helper.process.name, daemon=True
            )
            helper.thread.start()

    @staticmethod
    def _start(initializer: Callable[..., None], initargs: tuple[Any, ...], name: str) -> _Helper:
        context = helper_context()
        mine, theirs = context.Pipe()
        process = context.Process(
            target=_serve, args=(theirs, initializer, initargs), name=name, daemon=True
        )
        process.start()
        theirs.close()  # the helper's end lives in the helper only: its death is an EOF here
        return _Helper(process, mine)

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
        those not started yet are cancelled), and wait for them to end. Callable from a
        task's done-callback (which runs in one of the pool's threads)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if cancel_futures:
                self._drain(None)
            for _ in self._helpers:
                self._tasks.put(None)
        here = threading.current_thread()
        for helper in self._helpers:
            if helper.thread is not None and helper.thread is not here:
                helper.thread.join()
        for helper in self._helpers:
            _end(helper.process)
            helper.conn.close()

    def _run(self, helper: _Helper) -> None:
        """One helper's thread: hands it a task, waits for its answer, and so on."""
        while True:
            work = self._tasks.get()
            if work is None:
                with contextlib.suppress(OSError):
                    helper.conn.send(None)
                return
            future, fn, args = work
            if not future.set_running_or_notify_cancel():
                continue
            try:
                data = ForkingPickler.dumps((fn, args))
            except Exception as exc:  # this task's own arguments: it fails alone
                future.set_exception(exc)
                continue
            try:
                helper.conn.send_bytes(data)
                answer = helper.conn.recv_bytes()
            except (EOFError, OSError):
                self._break()  # before this task fails: its group's other tasks fail first
                future.set_exception(HelperDied(_DIED))
                return
            try:
                ok, value = pickle.loads(answer)
            except Exception as exc:
                future.set_exception(exc)
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    def _break(self) -> None:
        """A helper died: every task not answered fails, the other helpers are ended (each
        thread then finds its own helper's pipe closed, or the end marker)."""
        with self._lock:
            if self._broken:
                return
            self._broken = True
            self._drain(HelperDied(_DIED))
            for _ in self._helpers:
                self._tasks.put(None)
        for helper in self._helpers:
            if helper.process.is_alive():
                helper.process.terminate()

    def _drain(self, failure: BaseException | None) -> None:
        """Fail (or, with no `failure`, cancel) the tasks no helper has taken yet."""
        while True:
            try:
                work = self._tasks.get_nowait()
            except queue.Empty:
                return
            if work is None:
                continue
            future = work[0]
            if failure is None:
                future.cancel()
            elif future.set_running_or_notify_cancel():
                future.set_exception(failure)


def _end(process: BaseProcess) -> None:
    process.join(END_SECONDS)
    if process.exitcode is None:
        process.terminate()
        process.join(END_SECONDS)
    if process.exitcode is None:
        process.kill()
        process.join()


_DIED = (
    "a helper process ended before answering (killed, or out of memory): nothing of its work "
    "was recorded; try again"
)
