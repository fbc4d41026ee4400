"""A faust transport whose consumer resumes from the offsets stored in SQLite, and reads only
what producers committed (`committed.py`).

faust seeks every assigned partition to the broker's committed offset after each
rebalance (`perform_seek`). The broker's offsets trail or lead the state depending on when
faust last committed; the state store is the truth, so this consumer seeks again, to the
next offset stored with the records, before the flow of messages resumes.

A stored offset must lie within the partition's log. Past its end (the topic deleted and
created again, or a broker that lost data), aiokafka went back to the log's start and every
new event below the old offset was skipped as stored already: acknowledged by the broker,
lost without a word. The worker now stops there, saying why, unless it was started with
`--reread-beyond-end`: then that partition is read again from its start (events stored
already are recognised as unchanged). Below the log's start (retention deleted events before
they were read), the loss is Kafka's: it is logged as an error, and reading goes on.

A new log that has already passed the stored offset is told by the record just before it:
it is read again and compared with the one stored (`same_log.py`); another record there stops
the worker in the same way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from accrochage.errors import AccrochageError
from accrochage.runtimes.kafka.committed import CommittedReadingThread, say_resume
from accrochage.runtimes.kafka.draining import Receive, drain
from accrochage.runtimes.kafka.log_bounds import within
from accrochage.runtimes.kafka.same_log import ReadBefore, replaced

log = logging.getLogger("accrochage.kafka")

StoredOffsets = Callable[[str], dict[int, int]]
StoredMarks = Callable[[str], dict[int, str]]
"""The mark of the record before each partition's stored offset, where known."""
Rewind = Callable[[str, int, int], None]
"""Lowers a partition's stored offset (topic, partition, offset): `--reread-beyond-end`."""


class OffsetsBeyondEnd(AccrochageError):
    """The state has stored offsets past a partition's end: reading on would skip events."""


class SeekUnanswered(AccrochageError):
    """The broker did not answer while the worker sought its partitions: the worker stops."""


SEEK_SECONDS = 60
"""The longest a seek of the assigned partitions (`perform_seek`) may take. faust waits for it
for `broker_request_timeout` (90 s), then takes its own wait as a stop and ends its partition
recovery for good: with the broker gone that long mid-seek (the committed offsets it asks
first are retried until the broker answers) the worker ran on, never consumed again, and said
nothing. Past this bound it stops instead, saying why; started again, it resumes from the
state's offsets."""
COMMIT_SECONDS = 10
"""The longest a commit of offsets to the broker is waited for. faust commits once more while
it stops; when its consumer thread ended first (a crash at a rebalance: `OffsetsBeyondEnd`),
that commit was never answered and the worker never exited. The broker's offsets serve lag
tools only: the state's are the truth."""


class SeekingConsumer(faust_aiokafka.Consumer):
    stored_offsets: StoredOffsets | None = None
    rewind: Rewind | None = None
    """Set: a partition whose stored offset is past its end is read again from its start;
    None: the worker stops (`OffsetsBeyondEnd`)."""
    receive: Receive | None = None
    """Takes each fetch's records (`draining.py`); None: faust delivers them to its agents."""
    stored_marks: StoredMarks | None = None
    read_before: ReadBefore | None = None
    """Both set: each partition's log is checked against the record stored before its
    offset (`same_log.py`); either None: not checked."""
    sole_member: Callable[[], Awaitable[None]] | None = None
    """Set: run first at each assignment, to stop a worker sharing its group (`sole.py`)."""

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return CommittedReadingThread(self, loop=self.loop, beacon=self.beacon)

    async def _drain_messages(self, fetcher: Any) -> None:
        receive = type(self).receive
        if receive is None:
            await super()._drain_messages(fetcher)
        else:
            await drain(self, fetcher, receive)

    async def perform_seek(self) -> None:
        """Seek each assigned partition to its stored offset, within `SEEK_SECONDS`."""
        try:
            async with asyncio.timeout(SEEK_SECONDS):
                await self._seek_stored()
        except TimeoutError:
            raise SeekUnanswered(
                f"the Kafka broker did not answer for {SEEK_SECONDS} s while the worker sought "
                "its partitions' stored offsets: the worker stops rather than stay without "
                "consuming. Check the broker (kafka.bootstrap), then start the worker again "
                "(systemd's Restart=on-failure and compose's restart policy do): it resumes "
                "from the offsets stored in the state"
            ) from None

    async def _seek_stored(self) -> None:
        if (sole := type(self).sole_member) is not None:
            await sole()
        await super().perform_seek()
        lookup = type(self).stored_offsets
        if lookup is None:
            return
        cache: dict[str, dict[int, int]] = {}
        assigned = list(self.assignment())
        bounds = await self._bounds(assigned)
        stored: dict[TP, int] = {}
        resume: dict[TP, int] = {}
        for tp in assigned:
            offsets = cache.setdefault(tp.topic, lookup(tp.topic))
            # Nothing stored for a partition means nothing of it was stored: read it from
            # its start, never from the broker's committed offset (faust commits the offsets
            # of events received, which may never have reached the state).
            stored[tp] = offsets.get(tp.partition, 0)
            resume[tp] = within(tp, stored[tp], bounds.get(tp), self._replaced)
        await self._check_logs(stored, resume, bounds)
        for tp, offset in resume.items():
            # A partition read again from elsewhere than the stored offset was said already
            # (`--reread-beyond-end`, retention): the group's offset ahead of it is its cause.
            committed = self._committed_offset.get(tp) if offset == stored[tp] else None
            say_resume(tp.topic, tp.partition, offset, committed)
            await self.seek(tp, offset)

    async def _check_logs(
        self, stored: dict[TP, int], resume: dict[TP, int], bounds: dict[TP, tuple[int, int]]
    ) -> None:
        """Read the record before each stored offset resumed as it is, where the log holds
        one and its mark is stored; where it is another record, stop or rewind as past the
        end (`_replaced`)."""
        marks_of, read = type(self).stored_marks, type(self).read_before
        if marks_of is None or read is None:
            return
        cache: dict[str, dict[int, str]] = {}
        marks: dict[TP, str] = {}
        for tp, offset in resume.items():
            mark = cache.setdefault(tp.topic, marks_of(tp.topic)).get(tp.partition)
            if (
                mark is not None
                and offset == stored[tp]
                and tp in bounds
                and bounds[tp][0] < offset
            ):
                marks[tp] = mark
        if not marks:
            return
        seen = await read({tp: resume[tp] - 1 for tp in marks})
        for tp, mark in marks.items():
            before = resume[tp] - 1
            if tp not in seen:
                log.warning(
                    "%s[%d]: the record before the stored offset could not be read: the "
                    "partition's log is not checked this time",
                    tp.topic,
                    tp.partition,
                )
            elif replaced(mark, before, seen[tp]):
                resume[tp] = self._replaced(
                    tp,
                    f"the state stored {tp.topic}[{tp.partition}] up to offset {resume[tp]}, "
                    f"but the partition's record at offset {before} is not the one it stored: "
                    "the topic was deleted and created again",
                    bounds[tp][0],
                )

    async def _bounds(self, assigned: list[TP]) -> dict[TP, tuple[int, int]]:
        """Each partition's first and next offsets; none when the broker cannot say (the
        stored offsets are then used as they are, as before)."""
        if not assigned:
            return {}
        try:
            starts = await self.earliest_offsets(*assigned)
            ends = await self.highwaters(*assigned)
        except Exception as exc:  # a rebalance under a failing broker: seek as before
            log.warning("could not read the partitions' first and last offsets (%s)", exc)
            return {}
        return {tp: (starts[tp], ends[tp]) for tp in assigned if tp in starts and tp in ends}

    def _replaced(self, tp: TP, said: str, start: int) -> int:
        """The offset to resume a partition whose log is not the one the state read: its
        start with `--reread-beyond-end`; otherwise the worker stops (`OffsetsBeyondEnd`)."""
        rewind = type(self).rewind
        if rewind is None:
            raise OffsetsBeyondEnd(
                f"{said}; reading on would skip the events produced since. Check the "
                "topic, then start the worker once with --reread-beyond-end to read that "
                "partition again from its start (events stored already are unchanged)"
            )
        log.warning("%s: read again from its start, offset %d (--reread-beyond-end)", said, start)
        rewind(tp.topic, tp.partition, start)
        return start

    async def _seek(self, partition: TP, offset: int) -> None:
        """Seek in the consumer's own thread.

        faust's `_seek` calls aiokafka's `seek` from the app's thread; aiokafka then deletes the
        partition's fetched records while the consumer thread may be draining them
        (`Fetcher.fetched_records`: KeyError, and the worker crashes — seen in CI after a
        broker restart, once in a few hundred rebalances). Through `call_thread` the seek runs
        in the consumer thread's loop, between two drains.
        """
        thread = self._thread

        async def seek_there() -> None:
            thread.seek(partition, offset)

        await thread.call_thread(seek_there)

    async def force_commit(self, topics: Any = None, start_new_transaction: bool = True) -> bool:
        """faust's periodic, on-revoke and on-stop commits: with records taken a fetch at a
        time there are no acks to go by, so the stored offsets of every assigned partition
        (`_commit` below) are committed instead."""
        if type(self).receive is None:
            return bool(await super().force_commit(topics, start_new_transaction))
        assigned = [
            tp for tp in self.assignment() if topics is None or tp in topics or tp.topic in topics
        ]
        return bool(assigned) and await self._commit(dict.fromkeys(assigned, 0))

    async def _commit(self, offsets: Mapping[TP, int]) -> bool:
        """Commit the offsets the state has stored, never those faust acked (received).

        faust acks an event when it is received, before it is stored, so its commits lead the
        state; committing the stored offsets instead keeps consumer-group lag tools exact.
        """
        lookup = type(self).stored_offsets
        if lookup is None:
            return await super()._commit(offsets)
        cache: dict[str, dict[int, int]] = {}
        stored = {}
        for tp in offsets:
            offset = cache.setdefault(tp.topic, lookup(tp.topic)).get(tp.partition)
            if offset is not None:
                stored[tp] = offset
        if not stored:
            return True
        try:
            return bool(await asyncio.wait_for(super()._commit(stored), COMMIT_SECONDS))
        except TimeoutError:
            log.warning(
                "committing the stored offsets to the broker took over %d s: left to the next "
                "commit (the worker resumes from the state's offsets whatever the broker holds)",
                COMMIT_SECONDS,
            )
            return False


def seeking_transport(
    lookup: StoredOffsets,
    receive: Receive | None = None,
    rewind: Rewind | None = None,
    *,
    marks: StoredMarks | None = None,
    read_before: ReadBefore | None = None,
    sole_member: Callable[[], Awaitable[None]] | None = None,
) -> Any:
    """A transport whose consumer resumes from `lookup`'s offsets and hands each fetch to
    `receive` (None: to faust's agents, event by event); `rewind`, `marks`, `read_before`: see
    `SeekingConsumer`."""
    bound = {
        # A class made by `type` takes the module of the frame that made it: ABCMeta's, so
        # mode named the consumer's logger "abc" ("INFO abc [^--BoundSeekingConsumer]: ...").
        "__module__": __name__,
        "stored_offsets": lookup,
        "receive": staticmethod(receive) if receive else None,
        "rewind": staticmethod(rewind) if rewind else None,
        "stored_marks": staticmethod(marks) if marks else None,
        "read_before": staticmethod(read_before) if read_before else None,
        "sole_member": staticmethod(sole_member) if sole_member else None,
    }
    consumer = type("BoundSeekingConsumer", (SeekingConsumer,), bound)
    return type(
        "SeekingTransport",
        (faust_aiokafka.Transport,),
        {"Consumer": consumer, "__module__": __name__},
    )
