"""The faust app of `accrochage worker`: take each fetch's records, group them, hand the
groups (raw bytes) to the writer, which decodes and stores them (`app_writers.build_writer_parts`).

The guarantee rests on SQLite, not on faust's acks: events are grouped into one
transaction together with each partition's next offset; the consumer always resumes from
those offsets (see `seeking.py`); events below them are skipped inside the transaction. An
unexpected failure stops the process at once, before faust can commit anything.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
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

from accrochage.runtimes.kafka.pending import (
    GROUP_SIZE,
    MAX_IN_FLIGHT,
    Pending,
)
from accrochage.runtimes.kafka.same_log import read_records
from accrochage.runtimes.kafka.seeking import (
    Rewind,
    SeekingConsumer,
    StoredMarks,
    seeking_transport,
)
from accrochage.runtimes.kafka.sole import SoleMember, grace_for, member_client_id
from accrochage.runtimes.kafka.unreadable import guard_fetches
from accrochage.settings import KafkaSettings
from accrochage.state.base import DeadLetter, Store
from accrochage.streams.rejected import MAX_LETTER_BYTES, bounded_letter, letter_key
from accrochage.streams.scheduler import Job
from accrochage.streams.writer_process import GroupWriter

log = logging.getLogger("accrochage.kafka")
GROUP_WAIT = 0.05
"""Seconds between the straggler timer's runs: a partial group waits at most about that."""
FETCH_BYTES_PER_PARTITION = 8 * 1024 * 1024
METADATA_MAX_AGE_MS = 30_000
"""How often the consumer reads the topic's metadata again. Partitions added to the topic are
read from then on (the group rebalances, and the new ones are read from their start): at
faust's default of 5 minutes, events sent to them waited that long unread."""
MAX_FETCH_RECORDS = GROUP_SIZE * MAX_IN_FLIGHT
"""Records one fetch hands over at most (`draining.py`): what the writer can take at once."""
LETTER_ERRORS = (
    MessageSizeTooLargeError,
    RecordTooLargeError,
    RecordListTooLargeError,
    CorruptRecordException,
)
"""Errors that say one rejected-topic letter can never be produced (not the broker's state)."""
PRODUCER_FLUSH_SECONDS = 10
"""The longest a stop waits for the producer's messages in flight (rejected-topic letters,
alerts). With the broker gone aiokafka waits for it to come back, however long: a SIGTERM
during an outage hung the stop past compose's `stop_grace_period` (150 s), to be killed. A
letter not confirmed stays queued in the state, produced at the next start."""


class WorkerApp(faust.App):
    transport_class: Any = None
    pending: Pending | None = None

    def _new_transport(self) -> Any:
        return self.transport_class(self.conf.broker_consumer, self)

    async def _producer_flush(self, logger: Any) -> None:
        """faust's flush at a stop, bounded by `PRODUCER_FLUSH_SECONDS`; what the broker has not
        confirmed by then is given up, or the producer's own stop would wait for it again."""
        try:
            await asyncio.wait_for(super()._producer_flush(logger), PRODUCER_FLUSH_SECONDS)
        except TimeoutError:
            log.warning(
                "the broker did not confirm the messages being produced within %d s of the "
                "stop: given up (rejected-topic letters stay queued in the state and are "
                "produced at the next start)",
                PRODUCER_FLUSH_SECONDS,
            )
            # aiokafka's stop waits for its accumulator or its sender task, whichever ends
            # first: the sender ended, the stop goes on.
            sender = getattr(getattr(self._producer, "_producer", None), "_sender", None)
            task = getattr(sender, "sender_task", None)
            if task is not None:
                task.cancel()


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
    client_id = member_client_id(sum(offsets(kafka.topic).values()), time.time())
    app = WorkerApp(
        kafka.group,
        broker=f"kafka://{kafka.bootstrap}",
        broker_client_id=client_id,
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
        consumer_metadata_max_age_ms=METADATA_MAX_AGE_MS,
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
        sole_member=SoleMember(
            kafka.bootstrap,
            kafka.group,
            grace_for(kafka.session_timeout.total_seconds()),
            client_id,
        ),
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

    async def commit_what_is_stored(*_: Any, **__: Any) -> None:
        """At a stop, once fetching has ended: the groups in flight stored, then their offsets
        committed to the broker. faust's last commit came before they were, and lag tools
        showed a lag the state did not have until the next start. Both waits are bounded: the
        groups by what is left of the stop (`stop_left`), the commit by `COMMIT_SECONDS`
        (`SeekingConsumer._commit`), so a broker that is down does not hold the stop."""
        await pending.settled()
        consumer = app.consumer
        if not isinstance(consumer, SeekingConsumer):
            return
        try:
            await consumer.force_commit()
        except Exception as exc:  # the broker's offsets serve lag tools only
            log.warning("the stored offsets were not committed at the stop (%s)", exc)

    app.on_before_shutdown.connect(commit_what_is_stored)
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
