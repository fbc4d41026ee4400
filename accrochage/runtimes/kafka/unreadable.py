"""Records the Kafka client cannot read become unusable events, not a worker that stops.

aiokafka reads a fetched batch record by record, and raises when one cannot be read: a header
name that is not UTF-8 (the broker accepts any bytes; a Go or C producer can send them), a
batch compressed with a codec it has no library for. The exception left the fetch loop, the
worker stopped, and its restart fetched the same batch and stopped again: every partition
stalled for good on one record.

`readable_records` replaces aiokafka's `PartitionRecords._unpack_records` (a copy of 0.14's,
with one change): a batch whose records cannot all be read is read again leniently when a
header name is what failed (`lenient.py`: every record delivered, that header left out);
otherwise it yields an `UnreadableRecord` in place of what is left of it, at the batch's last
offset. The worker keeps that as an unusable event that says which offsets and why (sent to
the rejected topic like any other), and the partition goes on after the batch.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from aiokafka import errors
from aiokafka.consumer import fetcher
from aiokafka.structs import ConsumerRecord, TopicPartition

from accrochage.runtimes.kafka.lenient import FramedRecords, Reread, reread

log = logging.getLogger(__name__)

READ_ERRORS = (UnicodeDecodeError, errors.UnsupportedCodecError, ValueError, OSError, zlib.error)
"""What reading a batch's records may raise for one producer's bytes (gzip raises `OSError`,
zlib its own, the other codecs `ValueError`s); a CRC error is the client's to fetch again."""


@dataclass(frozen=True, slots=True)
class UnreadableRecord:
    """In place of the records of a batch the client could not read, from `first` to
    `offset` (the batch's last offset: the partition goes on after it)."""

    topic: str
    partition: int
    offset: int
    first: int
    reason: str

    @property
    def problem(self) -> str:
        where = (
            f"offset {self.offset}"
            if self.first == self.offset
            else (f"offsets {self.first} to {self.offset}")
        )
        return (
            f"the Kafka client could not read the record(s) at {where} of partition "
            f"{self.partition} ({self.reason}): skipped; have the producer send them again, "
            "readable (header names in UTF-8; gzip, snappy, lz4 or zstd compression)"
        )


def _reason(exc: BaseException) -> str:
    """The error's class and, for a decoding error, what it could not decode: never the
    record's bytes."""
    if isinstance(exc, UnicodeDecodeError):
        return f"{type(exc).__name__}: a header name or text is not {exc.encoding}"
    if isinstance(exc, errors.UnsupportedCodecError):
        return f"{type(exc).__name__}: its compression codec cannot be read here"
    return type(exc).__name__


def readable_records(self: Any) -> Iterator[ConsumerRecord[Any, Any] | UnreadableRecord]:
    """aiokafka 0.14's `PartitionRecords._unpack_records`, each batch's reading guarded."""
    tp = self._tp
    records = self._records
    while records.has_next():
        next_batch = records.next_batch()
        if self._check_crcs and not next_batch.validate_crc():
            raise errors.CorruptRecordException(f"Invalid CRC - {tp}")

        if self._isolation_level == fetcher.READ_COMMITTED and next_batch.producer_id is not None:
            self._consume_aborted_up_to(next_batch.base_offset)
            if next_batch.is_control_batch and self._contains_abort_marker(next_batch):
                self._aborted_producers.discard(next_batch.producer_id)
            if next_batch.is_transactional and next_batch.producer_id in self._aborted_producers:
                self.next_fetch_offset = next_batch.next_offset
                continue

        if next_batch.is_control_batch:
            self.next_fetch_offset = next_batch.next_offset
            continue

        failure: BaseException | None = None
        try:
            for record in next_batch:
                if record.offset < self.next_fetch_offset:
                    continue
                consumer_record = self._consumer_record(tp, record)
                self.next_fetch_offset = record.offset + 1
                yield consumer_record
        except READ_ERRORS as exc:
            failure = exc
        except errors.CorruptRecordException as exc:
            # aiokafka's pure-Python reader (AIOKAFKA_NO_EXTENSIONS, or no compiled wheel)
            # wraps what its C reader raises bare; a corruption of another kind stays one.
            if not isinstance(exc.__cause__, READ_ERRORS):
                raise
            failure = exc.__cause__
        if failure is not None:
            mended = _reread(records, failure, tp, self.next_fetch_offset)
            for record in mended.records if mended else ():
                if record.offset >= self.next_fetch_offset:
                    self.next_fetch_offset = record.offset + 1
                    yield self._consumer_record(tp, record)
            last = next_batch.next_offset - 1
            if mended is None and last >= self.next_fetch_offset:
                first = max(self.next_fetch_offset, getattr(next_batch, "base_offset", 0))
                yield UnreadableRecord(tp.topic, tp.partition, last, first, _reason(failure))
        self.next_fetch_offset = next_batch.next_offset


def _reread(
    records: Any, failure: BaseException, tp: TopicPartition, delivered_below: int
) -> Reread | None:
    """The batch `records` handed out last, read again when a header name that is not UTF-8
    is what failed (None otherwise, or when that fails too); one warning for the records of
    it not delivered yet (`delivered_below`: a restart reads a batch again from its start)."""
    raw = records.last_batch if isinstance(records, FramedRecords) else None
    if raw is None or not isinstance(failure, UnicodeDecodeError):
        return None
    try:
        mended = reread(raw)
    except (*READ_ERRORS, errors.CorruptRecordException) as exc:
        log.warning(
            "Kafka partition %s-%d: a batch read again failed too (%s)",
            tp.topic,
            tp.partition,
            type(exc).__name__,
        )
        return None
    lost = [offset for offset in (mended.mended if mended else ()) if offset >= delivered_below]
    if lost:
        log.warning(
            "Kafka records %s-%d@%s: %d with a header name that is not UTF-8, left out; the "
            "records are read without it (the worker reads no header)",
            tp.topic,
            tp.partition,
            str(lost[0]) if len(lost) == 1 else f"{lost[0]}-{lost[-1]}",
            len(lost),
        )
    return mended


def guard_fetches() -> None:
    """Every `PartitionRecords` of this process reads its batches through `readable_records`,
    from `FramedRecords` (the worker's process only: `runtimes/kafka`)."""
    fetcher.PartitionRecords._unpack_records = readable_records
    fetcher.MemoryRecords = FramedRecords
