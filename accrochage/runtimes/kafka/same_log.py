"""Whether an assigned partition's log is still the one the state read.

A topic deleted and created again starts its offsets at 0. Once its new log has passed the
offset the state stored, nothing in the offsets tells: the worker would resume there and
skip every new event below it as stored already. So the state keeps, beside each stored
offset, the mark of the record just before it (`streams/log_source.log_mark`), and when the
partition is assigned that record is read again and compared. Another record there (another
value, a transaction's marker, a gap) means another log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from faust.types import TP

from accrochage.runtimes.kafka.unreadable import UnreadableRecord
from accrochage.streams.log_source import log_mark

log = logging.getLogger("accrochage.kafka")

READ_SECONDS = 15.0
"""The longest the records before the stored offsets are waited for; past it, the partitions
not answered are not checked (said in the log), as when the broker cannot give their bounds."""


@dataclass(frozen=True, slots=True)
class Seen:
    """The first record a partition's log holds at or after an offset."""

    offset: int
    value: bytes | None


ReadBefore = Callable[[dict[TP, int]], Awaitable[dict[TP, Seen]]]
"""Reads each partition's record at the given offset (`read_records`, bound to a broker)."""


def replaced(mark: str, offset: int, seen: Seen) -> bool:
    """Whether `seen`, read at `offset`, is not the record stored there with `mark`. The
    record stored was a record with a value at exactly that offset: another offset (a
    transaction's marker, a compacted log) is another record too."""
    return seen.offset != offset or log_mark(seen.value) != mark


async def read_records(
    bootstrap: str, wanted: dict[TP, int], seconds: float = READ_SECONDS
) -> dict[TP, Seen]:
    """The record at each wanted offset, read by a consumer of its own (no group, no commit;
    uncommitted records too: only the record's identity matters). A partition not answered
    within `seconds`, whose offset is out of range by now, or whose record there this client
    cannot read (a codec installed when it was stored, not now), is left out."""
    if not wanted:
        return {}
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="none",
        isolation_level="read_uncommitted",
        request_timeout_ms=int(seconds * 1000),
    )
    found: dict[TP, Seen] = {}
    try:
        await asyncio.wait_for(consumer.start(), seconds)
        await asyncio.wait_for(_read(consumer, wanted, found), seconds)
    except (KafkaError, TimeoutError, OSError) as exc:
        log.warning("could not read the records before the stored offsets (%s)", exc)
    finally:
        await consumer.stop()
    return found


async def _read(consumer: AIOKafkaConsumer, wanted: dict[TP, int], found: dict[TP, Seen]) -> None:
    parts = {TopicPartition(tp.topic, tp.partition): tp for tp in wanted}
    consumer.assign(list(parts))
    for part, tp in parts.items():
        consumer.seek(part, wanted[tp])
    unchecked: set[TP] = set()
    while len(found) + len(unchecked) < len(parts):
        fetched = await consumer.getmany(timeout_ms=500)
        for part, records in fetched.items():
            tp = parts[part]
            if not records or tp in found or tp in unchecked:
                continue
            consumer.pause(part)
            if isinstance(records[0], UnreadableRecord):
                # Read when it was stored (its codec there then, not now): nothing to compare.
                unchecked.add(tp)
                log.warning(
                    "partition %s-%d: the record before the stored offset cannot be read "
                    "here (%s): not checked",
                    tp.topic,
                    tp.partition,
                    records[0].reason,
                )
                continue
            found[tp] = Seen(records[0].offset, records[0].value)
