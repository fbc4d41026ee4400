"""Events received from Kafka and not yet stored: the groups handed to the writer, in order,
and what a stop or a writer that fails does to them."""

from __future__ import annotations

import asyncio
import logging
import os
from collections import deque
from collections.abc import Sequence
from concurrent import futures
from typing import Any, NoReturn

from accrochage.models.problems import Problem
from accrochage.runtimes.kafka.unreadable import UnreadableRecord
from accrochage.streams.incoming import Incoming
from accrochage.streams.writer_process import GroupWriter

log = logging.getLogger("accrochage.kafka")
GROUP_SIZE = 1000
"""Events per group handed to the writer: one transaction (the writer merges queued groups)."""
GROUP_BYTES = 4 * 1024 * 1024
"""The most a group's events weigh (a group holds one event at least): counted in events
only, a backlog of 1 MB events took 4.6 times its size in the worker's processes (2.5 GB for
600 of them), four groups of a thousand in flight and each copied to the writer and decoders."""
MAX_IN_FLIGHT = 4
"""Groups handed to the writer and not stored yet; beyond, fetching waits (back-pressure)."""
EXIT_UNEXPECTED = 70


def incoming(record: Any) -> Incoming:
    """One record (an aiokafka record or a faust message): its raw bytes, untouched; a record
    without a value (a tombstone, a producer's mistake) as empty bytes, an unusable event; the
    records of a batch the client could not read (`UnreadableRecord`) as one unusable event
    saying which and why."""
    if isinstance(record, UnreadableRecord):
        return Incoming(
            b"",
            f"kafka:{record.topic}:{record.partition}:{record.offset}",
            record.partition,
            record.offset,
            problems=(Problem("kafka", record.problem),),
            value_unknown=True,
        )
    return Incoming(
        record.value if record.value is not None else b"",
        f"kafka:{record.topic}:{record.partition}:{record.offset}",
        record.partition,
        record.offset,
        record.key,
    )


class Pending:
    """Events received but not yet stored, and the groups being stored by the writer.

    Up to `MAX_IN_FLIGHT` groups are stored (in order, by one writer) while the next one
    accumulates, so neither the event loop nor the writer waits for the other. Nothing here
    can lose an event: a group not stored leaves the offsets in SQLite where they were.
    """

    def __init__(self, writer: GroupWriter) -> None:
        self.items: list[Incoming] = []
        self.bytes = 0
        """What `items` weigh (their raw values)."""
        self.committed = 0
        self.lock = asyncio.Lock()
        self.writer = writer
        self._in_flight: deque[tuple[futures.Future[Any], int]] = deque()

    def add(self, message: Any) -> None:
        item = incoming(message)
        self.items.append(item)
        self.bytes += _weight(item)

    async def receive(self, records: Sequence[Any]) -> None:
        """The records of one fetch (`draining.py`), handed over in groups of `GROUP_SIZE`;
        a partial group is left to the next fetch or to the straggler timer.

        The whole fetch is added before anything is awaited: a stop (the only cancellation
        the fetch loop sees) never leaves part of a fetch behind. The only wait is the
        writer's back-pressure."""
        for record in records:
            self.add(record)
        while len(self.items) >= GROUP_SIZE or self.bytes >= GROUP_BYTES:
            await self.commit()

    async def commit(self) -> None:
        """Hand a group (up to `GROUP_SIZE` pending events, oldest first) to the writer; wait
        only when too many groups are in flight."""
        async with self.lock:
            while self._in_flight and self._in_flight[0][0].done():
                await self._settle_oldest()
            if len(self._in_flight) >= MAX_IN_FLIGHT:
                await self._settle_oldest()
            if not self.items:
                return
            taken = _group_end(self.items)
            items, self.items = self.items[:taken], self.items[taken:]
            self.bytes -= sum(map(_weight, items))
            self._in_flight.append((self.writer.submit(items), len(items)))

    async def commit_stragglers(self) -> None:
        """The straggler timer's: hand over what a partial fetch left, unless the writer has
        its hands full (the next fetch's group takes them along then); never waits. A group
        whose storing failed stops the worker here, without waiting for a next event."""
        if self.lock.locked():
            return
        if not self.items:
            if self._in_flight and self._in_flight[0][0].done():
                async with self.lock:
                    while self._in_flight and self._in_flight[0][0].done():
                        await self._settle_oldest()
            return
        if len(self._in_flight) >= MAX_IN_FLIGHT and not self._in_flight[0][0].done():
            return
        await self.commit()

    async def drain(self) -> None:
        """Wait until every group in flight is stored (a stop settles them in `_settle_at_stop`)."""
        async with self.lock:
            while self._in_flight:
                await self._settle_oldest()

    async def _settle_oldest(self) -> None:
        stored, count = self._in_flight[0]
        try:
            await asyncio.wrap_future(stored)
        except asyncio.CancelledError:
            self._settle_at_stop()
            raise
        except BaseException:
            log.critical(
                "cannot store %d events: stopping before anything is acknowledged",
                count,
                exc_info=True,
            )
            _exit_now()
        self._in_flight.popleft()
        self.committed += count

    def _settle_at_stop(self) -> None:
        """A graceful stop (SIGTERM) while groups are being stored: not a failure. Their
        transactions cannot be interrupted; let them end (committed or rolled back, the offsets
        stored with them keep the state exact) before the store is closed. Groups waiting for
        a state another process holds are given up: the stop does not wait for that process,
        and their events are read again from the log at the next start."""
        self.writer.abandon_waits()
        in_flight = [f for f, _ in self._in_flight]
        _, running = futures.wait(in_flight, timeout=self.writer.stop_left())
        _said_running(running)

    async def settled(self) -> None:
        """`_settle_at_stop` off the loop, for a stop whose fetching has ended: the offsets
        committed to the broker after it are those of every group handed over."""
        self.writer.abandon_waits()
        in_flight = [f for f, _ in self._in_flight]
        _, running = await asyncio.to_thread(
            futures.wait, in_flight, timeout=self.writer.stop_left()
        )
        _said_running(running)


def _said_running(running: set[futures.Future[Any]]) -> None:
    if running:  # a writer that hangs must not hold the stop (and the loop) for ever
        log.error("%d groups were still being stored at the stop", len(running))


def writer_died(what: str) -> None:
    """The writer process ended while the worker runs (the OOM killer, a crash): stop now,
    as a group that failed does; the events not stored are read again at the next start.
    Waiting for the next event to find out, the worker looked alive meanwhile."""
    log.critical("%s: stopping before anything more is acknowledged", what)
    _exit_now()


def _exit_now() -> NoReturn:
    """End the worker at once (`EXIT_UNEXPECTED`), its log flushed: nothing more is
    acknowledged, and what was not stored is read again from the log at the next start."""
    logging.shutdown()
    os._exit(EXIT_UNEXPECTED)


def _weight(item: Incoming) -> int:
    return len(item.raw) if isinstance(item.raw, bytes | str) else 0


def _group_end(items: list[Incoming]) -> int:
    """How many of `items` (oldest first) make the next group: `GROUP_SIZE` at most, and no
    more than `GROUP_BYTES` unless the first alone weighs more."""
    weight = 0
    for taken, item in enumerate(items[:GROUP_SIZE]):
        weight += _weight(item)
        if weight > GROUP_BYTES and taken > 0:
            return taken
    return min(len(items), GROUP_SIZE)
