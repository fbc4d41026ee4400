"""The writer process's own side: it builds what storing needs and stores each group its
starter sends, in order (`streams/writer_process.py` is the starter's side). Groups cross the
pipe as plain tuples (`Wire`), cheaper to pickle than the dataclass.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass
from functools import partial
from typing import Any

from accrochage import heap
from accrochage.lifeline import exit_with, ignore_stop_signals
from accrochage.models.problems import Problem
from accrochage.streams import metrics
from accrochage.streams.child_logs import LogSetup, adopt_log_setup
from accrochage.streams.decoding import DecodePool
from accrochage.streams.incoming import Incoming, Ready
from accrochage.streams.log_source import LogSource
from accrochage.streams.writer import WriterService

log = logging.getLogger("accrochage.writer")
DECODE_AHEAD = 3
"""Groups a writer process with its own decode pool decodes ahead of the one it stores."""
EXIT_STORE_FAILED = 70
Wire = tuple[
    int | None, int | None, bytes | None, Any, str | None, Ready | None, tuple[Problem, ...], bool
]
"""An `Incoming`, every field but `scope` (a log's events have none). `value_unknown` crosses
too: without it a Kafka record its client could not read was marked as a record of empty
value, and the next start took the record really there for another log and stopped."""


@dataclass(frozen=True, slots=True)
class WriterParts:
    """What a writer process builds for itself: the service, its log, and how to close."""

    service: WriterService
    source: LogSource
    close: Callable[[], None]
    decoder: DecodePool | None = None
    """Decodes groups in processes of the writer process's own (the sender sends raw events
    only, the decoded ones cross one pipe); needs `ProcessWriter(..., daemon=False)`."""


def decode_group(decoder: DecodePool, items: list[Incoming]) -> futures.Future[list[Incoming]]:
    """The group's decoding in `decoder`'s processes; a failed future when there is no pool
    to decode (its sender then hands the group on as it is)."""
    try:
        return decoder.submit(items)
    except Exception as exc:
        failed: futures.Future[list[Incoming]] = futures.Future()
        failed.set_exception(exc)
        return failed


def to_wire(item: Incoming) -> Wire:
    return (
        item.partition,
        item.offset,
        item.key,
        item.raw,
        item.source,
        item.decoded,
        item.problems,
        item.value_unknown,
    )


def from_wire(wire: Wire) -> Incoming:
    partition, offset, key, raw, source, decoded, problems, value_unknown = wire
    return Incoming(
        raw, source, partition, offset, key, decoded, problems, value_unknown=value_unknown
    )


def writer_main(
    build: Callable[[], WriterParts],
    parent: int,
    requests: Any,
    results: Any,
    abandon: Any,
    logs: LogSetup = (None, logging.WARNING),
) -> None:
    """The writer process: build only what storing needs, store each group in order.
    `abandon`: a semaphore the worker releases for a stop that does not wait for the state."""
    exit_with(parent)
    ignore_stop_signals()  # the worker ends it in order, after its last group
    adopt_log_setup(logs)
    parts = build()
    heap.settle()
    threading.Thread(
        target=_abandon_when, args=(abandon, parts.service), name="writer-abandon", daemon=True
    ).start()

    times = parts.service.write_times

    def report(size: int, stored: futures.Future[Any]) -> None:
        error = stored.exception()
        shipped = times.ship() if times is not None else []
        if error is not None:
            results.put((False, f"{type(error).__name__}: {error}", {}, shipped))
            if not parts.service.abandoned:  # a group the stop left: the stop goes on
                os._exit(EXIT_STORE_FAILED)
            return
        # The counts and the write lock's times travel with the result: the parent serves
        # /metrics (streams/metrics.py).
        results.put((True, size, metrics.tally(stored.result()), shipped))

    try:
        if parts.decoder is not None:
            _decode_then_store(parts, parts.decoder, requests, report)
        else:
            while (group := requests.get()) is not None:
                stored = parts.service.submit([from_wire(w) for w in group], parts.source)
                stored.add_done_callback(partial(report, len(group)))
        parts.service.stop()
    finally:
        parts.close()


def _abandon_when(abandon: Any, service: WriterService) -> None:
    abandon.acquire()
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
        items = [from_wire(w) for w in group]
        slots.acquire()
        ahead.put((decode_group(decoder, items), items))
    ahead.put(None)
    storing.join()
