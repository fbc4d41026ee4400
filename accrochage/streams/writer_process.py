"""Groups of log events to the writer service, in this process or in a process of its own.

A consumer loop (faust), ingestion (validation, SQLite) and the batch timer all run Python
code; in one process they share one interpreter lock and one core. `ProcessWriter` runs the
writer service (`streams/writer.py`) in a second process fed through a bounded queue, so the
machine's second core does the storing. With a decode pool (`streams/decoding.py`), groups
are decoded in its processes first and handed to the writer process in the order they were
submitted, so the writer process only stores. Both give back a future per group, resolved
once the group's transaction has committed.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent import futures
from typing import Any

from accrochage.processes import ExitWatch, exit_said, helper_context
from accrochage.streams.child_logs import parent_log_setup
from accrochage.streams.decoding import DecodePool
from accrochage.streams.group_writers import STOP_SECONDS as STOP_SECONDS
from accrochage.streams.group_writers import GroupWriter as GroupWriter
from accrochage.streams.group_writers import InProcessWriter as InProcessWriter
from accrochage.streams.group_writers import StopDeadline as StopDeadline
from accrochage.streams.incoming import Incoming
from accrochage.streams.metrics import Metrics
from accrochage.streams.write_times import Shipped
from accrochage.streams.writer_main import Wire, WriterParts, decode_group, to_wire, writer_main

log = logging.getLogger("accrochage.writer")
QUEUED_GROUPS = 4
Answer = tuple[bool, Any, dict[str, int], Shipped]
"""The writer process's answer to a group: stored or not, its size or the failure, its
events' tally and the write lock's times since the last answer (`streams/write_times.py`)."""


class ProcessWriter:
    """Stores groups in a process of its own; a dead writer fails every pending group.

    `build` (picklable: a module-level function or a partial of one) runs in the new process.
    `decoder`: decodes each group before it is sent (a feeder thread sends them in order); a
    group whose decoding failed is sent as it is, and the writer process decodes it.
    """

    def __init__(
        self,
        build: Callable[[], WriterParts],
        decoder: DecodePool | None = None,
        *,
        daemon: bool = True,
        on_death: Callable[[str], None] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        """`daemon=False`: the writer process may start processes of its own (a decode pool,
        `WriterParts.decoder`); it still ends with this process (`lifeline.exit_with`).
        `on_death`: called (from a thread of its own) with what happened when the writer
        process ends other than by `shutdown`, at once, whether or not a group waits: a
        worker learnt it only at its next event, and looked alive until then.
        `metrics`: counts the events of each group stored (the writer process's tally)."""
        context = helper_context()
        self._requests: Any = context.Queue(maxsize=QUEUED_GROUPS)
        # A group not yet in the pipe when the writer process died was never stored (its
        # offsets come back): joining the thread that feeds the pipe, at exit, waited for
        # ever on a pipe no one reads.
        self._requests.cancel_join_thread()
        self._results: Any = context.Queue()
        self._abandon: Any = context.Semaphore(0)
        """Released for a stop that does not wait for the state. Not an `Event`: its `set()`
        waits, without a bound, for every waiter to wake, and a writer process killed or
        stopped (SIGSTOP) while waiting never does: the worker's stop hung for good."""
        self._process = context.Process(
            target=writer_main,
            args=(
                build,
                os.getpid(),
                self._requests,
                self._results,
                self._abandon,
                parent_log_setup(),
            ),
            name="accrochage-writer",
            daemon=daemon,
        )
        self._process.start()
        self._exit = ExitWatch(self._process)
        self._waiting: deque[futures.Future[Any]] = deque()
        self._lock = threading.Lock()
        self._collected = threading.Event()
        """Set once the results thread saw the writer process dead and failed what waited."""
        self._closing = False
        self._stop = StopDeadline(STOP_SECONDS)  # this module's: a stop is tuned here
        self._on_death = on_death
        self._metrics = metrics
        self._collector = threading.Thread(target=self._collect, name="writer-results", daemon=True)
        self._collector.start()
        self._decoder = decoder
        self._decoding: queue.SimpleQueue[
            tuple[futures.Future[list[Incoming]], list[Incoming]] | None
        ] = queue.SimpleQueue()
        self._feeder: threading.Thread | None = None
        if decoder is not None:
            self._feeder = threading.Thread(target=self._feed, name="writer-feed", daemon=True)
            self._feeder.start()

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def submit(self, items: list[Incoming]) -> futures.Future[Any]:
        done: futures.Future[Any] = futures.Future()
        # Running, as the writer service's futures are: a cancelled waiter (SIGTERM) must not
        # cancel the group, which the writer stores whatever happens to the waiter.
        done.set_running_or_notify_cancel()
        if not self._exit.is_alive():
            done.set_exception(RuntimeError(self._death()))
            return done
        with self._lock:
            self._waiting.append(done)
        if self._collected.is_set():  # the writer died meanwhile: nothing will answer
            self._fail_waiting()
            return done
        if self._decoder is None:
            self._send_or_fail([to_wire(item) for item in items], done)
        else:
            self._decoding.put((decode_group(self._decoder, items), items))
        return done

    def _feed(self) -> None:
        """Send the decoded groups to the writer process, in the order they were submitted."""
        while (entry := self._decoding.get()) is not None:
            decoding, items = entry
            try:
                decoded = decoding.result()
            except Exception as exc:  # a decode process died: the writer process decodes
                log.error("a group goes to the writer undecoded (%s)", type(exc).__name__)
                decoded = items
            if not self._send([to_wire(item) for item in decoded]):
                return
        self._send(None)

    def _send(self, group: list[Wire] | None, within: float | None = None) -> bool:
        """Put on the bounded queue; False when the writer process is gone, or has not taken
        a group within `within` seconds (None: while it lives)."""
        deadline = None if within is None else time.monotonic() + within
        while True:
            try:
                self._requests.put(group, timeout=0.5 if within is None else min(0.5, within))
                return True
            except queue.Full:
                if not self._exit.is_alive():
                    return False
                if deadline is not None and time.monotonic() >= deadline:
                    return False

    def _death(self) -> str:
        return f"the writer process ended ({exit_said(self._exit.exitcode)})"

    def _collect(self) -> None:
        """Each answer to the oldest group waiting; once the writer process is dead, the
        answers it sent before, then a failure for every group left, then `on_death`."""
        try:
            while True:
                try:
                    answer = self._results.get(timeout=0.5)
                except queue.Empty:
                    if self._exit.is_alive():
                        continue
                    while (last := self._answered_already()) is not None:
                        self._settle(last)
                    return
                self._settle(answer)
        except BaseException:  # logged once here; what waits fails below, never for ever
            log.critical("the writer's results thread failed", exc_info=True)
        finally:
            self._collected.set()
            self._fail_waiting()
            if self._on_death is not None and not self._closing and not self._exit.is_alive():
                self._on_death(self._death())

    def _answered_already(self) -> Answer | None:
        try:
            answer: Answer = self._results.get_nowait()
        except queue.Empty:
            return None
        return answer

    def _settle(self, answer: Answer) -> None:
        ok, detail, counts, times = answer
        with self._lock:
            done = self._waiting.popleft() if self._waiting else None
        if self._metrics is not None:
            self._metrics.count_write_times("writer", times)
        if done is None:
            log.error("the writer answered a group no one waits for")
        elif ok:
            if self._metrics is not None:
                self._metrics.count_events(counts)
            done.set_result(detail)
        else:
            done.set_exception(RuntimeError(detail))

    def _fail_waiting(self) -> None:
        with self._lock:
            failed, self._waiting = self._waiting, deque()
        for done in failed:
            if not done.done():
                done.set_exception(RuntimeError(self._death()))

    def _send_or_fail(self, group: list[Wire], done: futures.Future[Any]) -> None:
        """Send the group; when the writer process is gone, fail this group only (the
        results thread answers those before it, then fails the rest)."""
        if self._send(group):
            return
        with self._lock:
            if done in self._waiting:
                self._waiting.remove(done)
        if not done.done():
            done.set_exception(RuntimeError(self._death()))

    def abandon_waits(self) -> None:
        self._stop.start()
        self._abandon.release()

    def stop_left(self) -> float:
        return self._stop.left()

    def shutdown(self, wait: bool = True) -> None:
        """Let the writer store what it was given, then end it; every step within what is
        left of the stop (`STOP_SECONDS` in all)."""
        if self._closing:
            return
        self._closing = True

        def left() -> float:
            return self._stop.left() if wait else 0.0

        if self._feeder is not None:
            self._decoding.put(None)  # the feeder sends what it holds, then the end
            self._feeder.join(timeout=left())
            if self._exit.is_alive():
                self._exit.join(timeout=left())
        elif self._exit.is_alive() and self._send(None, within=left()):
            # (a writer that takes nothing more, hung, is not waited for: ended below)
            self._exit.join(timeout=left())
        if self._exit.is_alive():
            log.error("the writer process did not stop in time; ending it")
            self._process.kill()
            self._exit.join()
        self._collector.join(timeout=5)
