"""Where the worker stores its groups of events: a thread, or a process of its own.

The faust loop, ingestion (validation, SQLite) and the batch timer all run Python code; in
one process they share one interpreter lock and one core. `ProcessWriter` moves ingestion
to a second process fed through a bounded queue, so the machine's second core does it.
Both give back a future per group, resolved once the group's transaction has committed.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import threading
from collections import deque
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

from accrochage.streams.ingest import Incoming, Ingestor, LogSource
from accrochage.streams.lifeline import exit_with

log = logging.getLogger("accrochage.kafka")
QUEUED_GROUPS = 4
Wire = tuple[int | None, int | None, bytes | None, Any, str | None]


class GroupWriter(Protocol):
    def submit(self, items: list[Incoming]) -> futures.Future[Any]: ...

    def shutdown(self, wait: bool = True) -> None: ...


class ThreadWriter:
    """Stores groups in a thread of this process."""

    def __init__(self, ingestor: Ingestor, source: LogSource) -> None:
        self._ingestor = ingestor
        self._source = source
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="writer")

    def submit(self, items: list[Incoming]) -> futures.Future[Any]:
        return self._pool.submit(self._ingestor.ingest_from_log, self._source, items)

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait)


def _to_wire(item: Incoming) -> Wire:
    return (item.partition, item.offset, item.key, item.raw, item.source)


def _from_wire(wire: Wire) -> Incoming:
    partition, offset, key, raw, source = wire
    return Incoming(raw, source, partition, offset, key)


def _writer_main(config: str | None, parent: int, requests: Any, results: Any) -> None:
    """The writer process: build the core from the same configuration, store each group."""
    from accrochage.app import build_core
    from accrochage.settings import load_settings

    exit_with(parent)
    core = build_core(load_settings(Path(config) if config else None))
    kafka = core.settings.kafka
    source = LogSource(kafka.topic, kafka.rejected_topic)
    try:
        while (group := requests.get()) is not None:
            try:
                core.ingestor.ingest_from_log(source, [_from_wire(w) for w in group])
            except BaseException as exc:
                results.put((False, f"{type(exc).__name__}: {exc}"))
                os._exit(70)
            results.put((True, len(group)))
    finally:
        core.close()


class ProcessWriter:
    """Stores groups in a process of its own; a dead writer fails every pending group."""

    def __init__(self, config: Path | None) -> None:
        context = multiprocessing.get_context("forkserver")
        self._requests: Any = context.Queue(maxsize=QUEUED_GROUPS)
        self._results: Any = context.Queue()
        self._process = context.Process(
            target=_writer_main,
            args=(str(config) if config else None, os.getpid(), self._requests, self._results),
            name="accrochage-writer",
            daemon=True,
        )
        self._process.start()
        self._waiting: deque[futures.Future[Any]] = deque()
        self._closing = False
        self._collector = threading.Thread(target=self._collect, name="writer-results", daemon=True)
        self._collector.start()

    def submit(self, items: list[Incoming]) -> futures.Future[Any]:
        done: futures.Future[Any] = futures.Future()
        # Running, as a thread pool's future would be: a cancelled waiter (SIGTERM) must not
        # cancel the group, which the writer stores whatever happens to the waiter.
        done.set_running_or_notify_cancel()
        if not self._process.is_alive():
            done.set_exception(RuntimeError(self._death()))
            return done
        self._waiting.append(done)
        self._requests.put([_to_wire(item) for item in items])
        return done

    def _death(self) -> str:
        return f"the writer process ended (exit code {self._process.exitcode})"

    def _collect(self) -> None:
        while True:
            try:
                ok, detail = self._results.get(timeout=0.5)
            except queue.Empty:
                if self._process.is_alive():
                    continue
                while self._waiting:
                    self._waiting.popleft().set_exception(RuntimeError(self._death()))
                return
            done = self._waiting.popleft()
            if ok:
                done.set_result(detail)
            else:
                done.set_exception(RuntimeError(detail))

    def shutdown(self, wait: bool = True) -> None:
        """Let the writer store what it was given, then end it."""
        if self._closing:
            return
        self._closing = True
        if self._process.is_alive():
            self._requests.put(None)
            self._process.join(timeout=120 if wait else 0)
        if self._process.is_alive():
            log.error("the writer process did not stop in time; ending it")
            self._process.kill()
            self._process.join()
        self._collector.join(timeout=5)
