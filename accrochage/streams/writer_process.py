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
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

from accrochage import heap
from accrochage.lifeline import exit_with, ignore_stop_signals
from accrochage.models.problems import Problem
from accrochage.processes import helper_context
from accrochage.streams import metrics
from accrochage.streams.child_logs import LogSetup, adopt_log_setup, parent_log_setup
from accrochage.streams.decoding import DecodePool
from accrochage.streams.ingest import Incoming, Ready
from accrochage.streams.log_source import LogSource
from accrochage.streams.writer import WriterService

log = logging.getLogger("accrochage.writer")
QUEUED_GROUPS = 4
STOP_SECONDS = 120.0
"""How long a stop waits for the writer process to store what it was given."""
DECODE_AHEAD = 3
"""Groups a writer process with its own decode pool decodes ahead of the one it stores."""
EXIT_STORE_FAILED = 70
Wire = tuple[
    int | None, int | None, bytes | None, Any, str | None, Ready | None, tuple[Problem, ...]
]


class GroupWriter(Protocol):
    def submit(self, items: list[Incoming]) -> futures.Future[Any]: ...

    def abandon_waits(self) -> None:
        """A stop that does not wait for the state (`WriterService.abandon_waits`)."""

    def shutdown(self, wait: bool = True) -> None: ...


@dataclass(frozen=True, slots=True)
class WriterParts:
    """What a writer process builds for itself: the service, its log, and how to close."""

    service: WriterService
    source: LogSource
    close: Callable[[], None]
    decoder: DecodePool | None = None
    """Decodes groups in processes of the writer process's own (the sender sends raw events
    only, the decoded ones cross one pipe); needs `ProcessWriter(..., daemon=False)`."""


class InProcessWriter:
    """Stores groups through a writer service of this process."""

    def __init__(self, service: WriterService, source: LogSource) -> None:
        self._service = service
        self._source = source

    def submit(self, items: list[Incoming]) -> futures.Future[Any]:
        return self._service.submit(items, self._source)

    def abandon_waits(self) -> None:
        self._service.abandon_waits()

    def shutdown(self, wait: bool = True) -> None:
        self._service.stop(None if wait else 0)


def _to_wire(item: Incoming) -> Wire:
    return (
        item.partition,
        item.offset,
        item.key,
        item.raw,
        item.source,
        item.decoded,
        item.problems,
    )


def _from_wire(wire: Wire) -> Incoming:
    partition, offset, key, raw, source, decoded, problems = wire
    return Incoming(raw, source, partition, offset, key, decoded, problems)


def _writer_main(
    build: Callable[[], WriterParts],
    parent: int,
    requests: Any,
    results: Any,
    abandon: Any,
    logs: LogSetup = (None, logging.WARNING),
) -> None:
    """The writer process: build only what storing needs, store each group in order.
    `abandon`: an event the worker sets for a stop that does not wait for the state."""
    exit_with(parent)
    ignore_stop_signals()  # the worker ends it in order, after its last group
    adopt_log_setup(logs)
    parts = build()
    heap.settle()
    threading.Thread(
        target=_abandon_when, args=(abandon, parts.service), name="writer-abandon", daemon=True
    ).start()

    def report(size: int, stored: futures.Future[Any]) -> None:
        error = stored.exception()
        if error is not None:
            results.put((False, f"{type(error).__name__}: {error}", {}))
            if not parts.service.abandoned:  # a group the stop left: the stop goes on
                os._exit(EXIT_STORE_FAILED)
            return
        # The counts travel with the result: the parent serves /metrics (streams/metrics.py).
        results.put((True, size, metrics.tally(stored.result())))

    try:
        if parts.decoder is not None:
            _decode_then_store(parts, parts.decoder, requests, report)
        else:
            while (group := requests.get()) is not None:
                stored = parts.service.submit([_from_wire(w) for w in group], parts.source)
                stored.add_done_callback(partial(report, len(group)))
        parts.service.stop()
    finally:
        parts.close()


def _abandon_when(abandon: Any, service: WriterService) -> None:
    abandon.wait()
    service.abandon_waits()


def _decode_then_store(
    parts: WriterParts,
    decoder: DecodePool,
    requests: Any,
    report: Callable[[int, futures.Future[Any]], None],
) -> None:
    """Decode each group in the writer's decode processes while earlier ones are stored;
    submit them to the service in the order received. At most `DECODE_AHEAD` groups are
    being decoded: beyond, the requests queue fills and its sender waits."""
    ahead: queue.SimpleQueue[tuple[futures.Future[list[Incoming]], list[Incoming]] | None]
    ahead = queue.SimpleQueue()
    slots = threading.Semaphore(DECODE_AHEAD)

    def store_in_order() -> None:
        while (entry := ahead.get()) is not None:
            decoding, items = entry
            try:
                decoded = decoding.result()
            except Exception as exc:  # a decode process died: the service decodes the group
                log.error("a group is decoded by the writer (%s)", type(exc).__name__)
                decoded = items
            slots.release()
            stored = parts.service.submit(decoded, parts.source)
            stored.add_done_callback(partial(report, len(items)))

    def store_or_die() -> None:
        try:
            store_in_order()
        except BaseException:  # never a silent hang: the sender's groups would never resolve
            log.critical("the writer's in-order thread failed", exc_info=True)
            os._exit(EXIT_STORE_FAILED)

    storing = threading.Thread(target=store_or_die, name="writer-in-order", daemon=True)
    storing.start()
    while (group := requests.get()) is not None:
        items = [_from_wire(w) for w in group]
        slots.acquire()
        ahead.put((ProcessWriter._decode(decoder, items), items))
    ahead.put(None)
    storing.join()


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
    ) -> None:
        """`daemon=False`: the writer process may start processes of its own (a decode pool,
        `WriterParts.decoder`); it still ends with this process (`lifeline.exit_with`)."""
        context = helper_context()
        self._requests: Any = context.Queue(maxsize=QUEUED_GROUPS)
        # A group not yet in the pipe when the writer process died was never stored (its
        # offsets come back): joining the thread that feeds the pipe, at exit, waited for
        # ever on a pipe no one reads.
        self._requests.cancel_join_thread()
        self._results: Any = context.Queue()
        self._abandon: Any = context.Event()
        self._process = context.Process(
            target=_writer_main,
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
        self._waiting: deque[futures.Future[Any]] = deque()
        self._lock = threading.Lock()
        self._collected = threading.Event()
        """Set once the results thread saw the writer process dead and failed what waited."""
        self._closing = False
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

    def submit(self, items: list[Incoming]) -> futures.Future[Any]:
        done: futures.Future[Any] = futures.Future()
        # Running, as the writer service's futures are: a cancelled waiter (SIGTERM) must not
        # cancel the group, which the writer stores whatever happens to the waiter.
        done.set_running_or_notify_cancel()
        if not self._process.is_alive():
            done.set_exception(RuntimeError(self._death()))
            return done
        with self._lock:
            self._waiting.append(done)
        if self._collected.is_set():  # the writer died meanwhile: nothing will answer
            self._fail_waiting()
            return done
        if self._decoder is None:
            self._send_or_fail([_to_wire(item) for item in items], done)
        else:
            self._decoding.put((self._decode(self._decoder, items), items))
        return done

    @staticmethod
    def _decode(decoder: DecodePool, items: list[Incoming]) -> futures.Future[list[Incoming]]:
        try:
            return decoder.submit(items)
        except Exception as exc:  # no pool to decode: the feeder sends the group as it is
            failed: futures.Future[list[Incoming]] = futures.Future()
            failed.set_exception(exc)
            return failed

    def _feed(self) -> None:
        """Send the decoded groups to the writer process, in the order they were submitted."""
        while (entry := self._decoding.get()) is not None:
            decoding, items = entry
            try:
                decoded = decoding.result()
            except Exception as exc:  # a decode process died: the writer process decodes
                log.error("a group goes to the writer undecoded (%s)", type(exc).__name__)
                decoded = items
            if not self._send([_to_wire(item) for item in decoded]):
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
                if not self._process.is_alive():
                    return False
                if deadline is not None and time.monotonic() >= deadline:
                    return False

    def _death(self) -> str:
        return f"the writer process ended (exit code {self._process.exitcode})"

    def _collect(self) -> None:
        """Each answer to the oldest group waiting; once the writer process is dead, the
        answers it sent before, then a failure for every group left."""
        try:
            while True:
                try:
                    answer = self._results.get(timeout=0.5)
                except queue.Empty:
                    if self._process.is_alive():
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

    def _answered_already(self) -> tuple[bool, Any, dict[str, int]] | None:
        try:
            answer: tuple[bool, Any, dict[str, int]] = self._results.get_nowait()
        except queue.Empty:
            return None
        return answer

    def _settle(self, answer: tuple[bool, Any, dict[str, int]]) -> None:
        ok, detail, counts = answer
        with self._lock:
            done = self._waiting.popleft() if self._waiting else None
        if done is None:
            log.error("the writer answered a group no one waits for")
        elif ok:
            metrics.count_events(counts)
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
        self._abandon.set()

    def shutdown(self, wait: bool = True) -> None:
        """Let the writer store what it was given, then end it."""
        if self._closing:
            return
        self._closing = True
        if self._feeder is not None:
            self._decoding.put(None)  # the feeder sends what it holds, then the end
            self._feeder.join(timeout=STOP_SECONDS if wait else 0)
            if self._process.is_alive():
                self._process.join(timeout=STOP_SECONDS if wait else 0)
        elif self._process.is_alive() and self._send(None, within=STOP_SECONDS if wait else 0):
            # (a writer that takes nothing more, hung, is not waited for: ended below)
            self._process.join(timeout=STOP_SECONDS if wait else 0)
        if self._process.is_alive():
            log.error("the writer process did not stop in time; ending it")
            self._process.kill()
            self._process.join()
        self._collector.join(timeout=5)
