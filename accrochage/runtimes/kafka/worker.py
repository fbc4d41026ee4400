"""The faust app of `accrochage worker`: take each fetch's records, group them, hand the
groups (raw bytes) to the writer, which decodes and stores them (`app.build_writer_parts`).

The guarantee rests on SQLite, not on faust's acks: events are grouped into one
transaction together with each partition's next offset; the consumer always resumes from
those offsets (see `seeking.py`); events below them are skipped inside the transaction. An
unexpected failure stops the process at once, before faust can commit anything.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections import deque
from collections.abc import Callable, Sequence
from concurrent import futures
from functools import partial
from pathlib import Path
from typing import Any

import faust
from aiokafka.errors import (
    CorruptRecordException,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)
from faust.exceptions import ProducerSendError

from accrochage.models.problems import Problem
from accrochage.runtimes.kafka.same_log import read_records
from accrochage.runtimes.kafka.seeking import Rewind, StoredMarks, seeking_transport
from accrochage.runtimes.kafka.unreadable import UnreadableRecord, guard_fetches
from accrochage.settings import KafkaSettings
from accrochage.state.base import DeadLetter, Store
from accrochage.streams.incoming import Incoming
from accrochage.streams.rejected import MAX_LETTER_BYTES, bounded_letter, letter_key
from accrochage.streams.scheduler import Job
from accrochage.streams.writer_process import GroupWriter

log = logging.getLogger("accrochage.kafka")
GROUP_SIZE = 1000
"""Events per group handed to the writer: one transaction (the writer merges queued groups)."""
GROUP_BYTES = 4 * 1024 * 1024
"""The most a group's events weigh (a group holds one event at least): counted in events
only, a backlog of 1 MB events took 4.6 times its size in the worker's processes (2.5 GB for
600 of them), four groups of a thousand in flight and each copied to the writer and decoders."""
GROUP_WAIT = 0.05
"""Seconds between the straggler timer's runs: a partial group waits at most about that."""
MAX_IN_FLIGHT = 4
"""Groups handed to the writer and not stored yet; beyond, fetching waits (back-pressure)."""
FETCH_BYTES_PER_PARTITION = 8 * 1024 * 1024
MAX_FETCH_RECORDS = GROUP_SIZE * MAX_IN_FLIGHT
"""Records one fetch hands over at most (`draining.py`): what the writer can take at once."""
SETTLE_SECONDS = 120.0
"""How long a stop waits for the groups being stored (each one a transaction)."""
EXIT_UNEXPECTED = 70
LETTER_ERRORS = (
    MessageSizeTooLargeError,
    RecordTooLargeError,
    RecordListTooLargeError,
    CorruptRecordException,
)
"""Errors that say one rejected-topic letter can never be produced (not the broker's state)."""


class WorkerApp(faust.App):
    transport_class: Any = None
    pending: Pending | None = None

    def _new_transport(self) -> Any:
        return self.transport_class(self.conf.broker_consumer, self)


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
            logging.shutdown()
            os._exit(EXIT_UNEXPECTED)
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
        _, running = futures.wait(in_flight, timeout=SETTLE_SECONDS)
        if running:  # a writer that hangs must not hold the stop (and the loop) for ever
            log.error("%d groups were still being stored at the stop", len(running))


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


def build_worker(
    kafka: KafkaSettings,
    datadir: Path,
    offsets: Callable[[str], dict[int, int]],
    writer: GroupWriter,
    *,
    rewind: Rewind | None = None,
    marks: StoredMarks | None = None,
) -> WorkerApp:
    """The faust app: its consumer resumes from `offsets` (the state's), after checking each
    partition's log against `marks` (`same_log.py`); groups go to `writer`; a batch its
    client cannot read is an unusable event, not a stop (`guard_fetches`)."""
    guard_fetches()
    app = WorkerApp(
        kafka.group,
        broker=f"kafka://{kafka.bootstrap}",
        web_enabled=False,
        autodiscover=False,
        datadir=str(datadir),
        topic_allow_declare=False,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=kafka.session_timeout.total_seconds(),
        broker_heartbeat_interval=max(0.3, kafka.session_timeout.total_seconds() / 6),
        producer_acks=-1,
        # faust fetches 1 MiB per partition per round trip by default: with a few busy
        # partitions (one per certifier) that, not the processing, bounded the throughput.
        consumer_max_fetch_size=FETCH_BYTES_PER_PARTITION,
        broker_max_poll_records=MAX_FETCH_RECORDS,
        key_serializer="raw",
        value_serializer="raw",
    )
    pending = Pending(writer)
    app.pending = pending
    # Each fetch goes to `pending` whole (`draining.py`): no agent, no stream, no acks; the
    # topic is only registered so that the consumer subscribes to it.
    app.transport_class = seeking_transport(
        offsets,
        pending.receive,
        rewind,
        marks=marks,
        read_before=partial(read_records, kafka.bootstrap),
    )
    topic = app.topic(
        kafka.topic,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        acks=False,
    )
    app.topics.add(topic)

    @app.timer(GROUP_WAIT)  # type: ignore[untyped-decorator]
    async def commit_stragglers() -> None:
        await pending.commit_stragglers()

    return app


def dead_letter_job(app: WorkerApp, store: Store, every: float = 0.5) -> Job:
    """Produce queued rejected events, then forget them (at least once on that topic).

    A letter that can never be produced (too large, or a record the broker calls corrupt: an
    error about that letter, `LETTER_ERRORS`, raised by aiokafka or wrapped by faust) is
    forgotten with an error in the log, not retried first for ever ahead of every letter
    after it; its event stays in the state (`accrochage unusable`, `records`). Any other
    failure (the broker gone, an ACL refusing the topic) stops this run and keeps the queue:
    the letters are retried in order once the cause is fixed.

    The state is read and written off faust's event loop: forgetting waits for the write lock
    (up to `state.lock_wait`) while another process holds it, and on the loop that wait froze
    the worker whole (its SIGTERM, `/health`, the fetching) for as long."""

    def queued() -> list[DeadLetter]:
        with store.reading() as reader:
            return reader.dead_letters(500)

    def forget(done: list[int]) -> None:
        with store.transaction() as tx:
            tx.forget_dead_letters(done)

    async def publish() -> None:
        letters = await asyncio.to_thread(queued)
        done: list[int] = []
        try:
            for letter in letters:
                value = letter.value.encode()
                if len(value) > MAX_LETTER_BYTES:  # queued by an earlier version
                    value = bounded_letter(json.loads(letter.value)).encode()
                try:
                    await app.producer.send_and_wait(
                        letter.topic, letter_key(letter.key), value, None, None, None
                    )
                except (KafkaError, ProducerSendError) as exc:
                    if not isinstance(exc.__cause__ or exc, LETTER_ERRORS):
                        raise
                    log.error(
                        "rejected-topic letter %s can never be produced (%s): dropped from the "
                        "queue; its event stays in the state (accrochage unusable, records)",
                        letter.id,
                        type(exc.__cause__ or exc).__name__,
                    )
                if letter.id is not None:
                    done.append(letter.id)
        except Exception as exc:
            log.warning("rejected-topic publish failed (%s); retrying", exc)
        if done:  # what was sent is forgotten, or it would be sent again at every retry
            await asyncio.to_thread(forget, done)

    return Job("dead-letters", every, publish)
