"""A faust transport whose consumer resumes from the offsets stored in SQLite.

faust seeks every assigned partition to the broker's committed offset after each
rebalance (`perform_seek`). The broker's offsets trail or lead the state depending on when
faust last committed; the state store is the truth, so this consumer seeks again, to the
next offset stored with the records, before the flow of messages resumes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from accrochage.runtimes.kafka.draining import Receive, drain

log = logging.getLogger("accrochage.kafka")

StoredOffsets = Callable[[str], dict[int, int]]


class SeekingConsumer(faust_aiokafka.Consumer):
    stored_offsets: StoredOffsets | None = None
    receive: Receive | None = None
    """Takes each fetch's records (`draining.py`); None: faust delivers them to its agents."""

    async def _drain_messages(self, fetcher: Any) -> None:
        receive = type(self).receive
        if receive is None:
            await super()._drain_messages(fetcher)
        else:
            await drain(self, fetcher, receive)

    async def perform_seek(self) -> None:
        await super().perform_seek()
        lookup = type(self).stored_offsets
        if lookup is None:
            return
        cache: dict[str, dict[int, int]] = {}
        for tp in self.assignment():
            offsets = cache.setdefault(tp.topic, lookup(tp.topic))
            # Nothing stored for a partition means nothing of it was stored: read it from
            # its start, never from the broker's committed offset (faust commits the offsets
            # of events received, which may never have reached the state).
            offset = offsets.get(tp.partition, 0)
            log.info("resume %s[%d] at stored offset %d", tp.topic, tp.partition, offset)
            await self.seek(tp, offset)

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
        return await super()._commit(stored)


def seeking_transport(lookup: StoredOffsets, receive: Receive | None = None) -> Any:
    """A transport whose consumer resumes from `lookup`'s offsets and hands each fetch to
    `receive` (None: to faust's agents, event by event)."""
    bound = {"stored_offsets": lookup, "receive": staticmethod(receive) if receive else None}
    consumer = type("BoundSeekingConsumer", (SeekingConsumer,), bound)
    return type("SeekingTransport", (faust_aiokafka.Transport,), {"Consumer": consumer})
