"""A batch whose header names are not all UTF-8, read again record by record.

aiokafka decodes every header name as UTF-8 and gives up on the whole batch at the first
that is not: the records after it in the same batch were lost with it, although nothing is
wrong with their values. Kafka's own (Java) client reads such a name with replacement
characters; the broker accepts it. The worker reads no header, so a name that is not UTF-8 is
left out (the header with it) and the record is delivered whole.

`FramedRecords` keeps the bytes of the batch aiokafka's reader handed out last, and
`reread` parses them again with the v2 record layout (KIP-98): the only place where this
reader differs from aiokafka's is the header name.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from aiokafka.errors import CorruptRecordException
from aiokafka.record.default_records import _DefaultRecordBatchPy, _DefaultRecordPy
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.record.util import decode_varint

_LENGTH = struct.Struct(">i")
_LENGTH_AT = 8
"""A batch begins with its base offset (int64) then its length (int32, what follows it)."""
_OVERHEAD = 12
_MAGIC_AT = 16


class FramedRecords:
    """aiokafka's `MemoryRecords` over one fetched partition's bytes, which also keeps the
    bytes of the batch it handed out last (`last_batch`): a batch its reader cannot read whole
    can then be read again (`reread`). One struct read a batch; the records are not copied."""

    def __init__(self, data: bytes) -> None:
        self._records = MemoryRecords(data)
        self._data = memoryview(data)
        self._pos = 0
        self.last_batch: memoryview | None = None

    def size_in_bytes(self) -> int:
        return int(self._records.size_in_bytes())

    def has_next(self) -> bool:
        return bool(self._records.has_next())

    def next_batch(self) -> object:
        batch = self._records.next_batch()
        if batch is not None:
            (length,) = _LENGTH.unpack_from(self._data, self._pos + _LENGTH_AT)
            end = self._pos + _OVERHEAD + length
            self.last_batch = self._data[self._pos : end]
            self._pos = end
        return batch


@dataclass(frozen=True, slots=True)
class Reread:
    """What `reread` found: every record of the batch, and the offsets of those that lost a
    header whose name is not UTF-8."""

    records: list[_DefaultRecordPy]
    mended: list[int]


def reread(raw: memoryview) -> Reread | None:
    """The records of one v2 batch (None for an older format), header names that are not
    UTF-8 left out. Raises `CorruptRecordException` for bytes that are not a batch."""
    if len(raw) <= _MAGIC_AT or raw[_MAGIC_AT] < 2:
        return None
    batch = _DefaultRecordBatchPy(raw)
    batch._maybe_uncompress()
    records: list[_DefaultRecordPy] = []
    mended: list[int] = []
    pos = batch._pos
    try:
        for _ in range(batch._num_records):
            record, pos, lost = _record(batch, pos)
            records.append(record)
            if lost:
                mended.append(record.offset)
    except (ValueError, IndexError) as exc:
        raise CorruptRecordException(f"invalid record structure: {type(exc).__name__}") from None
    return Reread(records, mended)


def _record(batch: _DefaultRecordBatchPy, pos: int) -> tuple[_DefaultRecordPy, int, int]:
    """The record at `pos`, where the next begins, and how many header names were left out."""
    buffer = batch._buffer
    length, pos = decode_varint(buffer, pos)
    end = pos + length
    _, pos = decode_varint(buffer, pos)
    timestamp_delta, pos = decode_varint(buffer, pos)
    offset_delta, pos = decode_varint(buffer, pos)
    key, pos = _nullable_bytes(buffer, pos)
    value, pos = _nullable_bytes(buffer, pos)
    count, pos = decode_varint(buffer, pos)
    if count < 0:
        raise ValueError("a negative header count")
    headers: list[tuple[str, bytes | None]] = []
    lost = 0
    for _ in range(count):
        name, pos = _nullable_bytes(buffer, pos)
        header_value, pos = _nullable_bytes(buffer, pos)
        if name is None:
            raise ValueError("a header without a name")
        try:
            headers.append((name.decode("utf-8"), header_value))
        except UnicodeDecodeError:
            lost += 1
    if pos != end:
        raise ValueError("a record whose length does not match its fields")
    if batch.timestamp_type == batch.LOG_APPEND_TIME:
        timestamp = batch.max_timestamp
    else:
        timestamp = batch.first_timestamp + timestamp_delta
    offset = batch.base_offset + offset_delta
    return (
        _DefaultRecordPy(offset, timestamp, batch.timestamp_type, key, value, headers),
        pos,
        lost,
    )


def _nullable_bytes(buffer: bytearray, pos: int) -> tuple[bytes | None, int]:
    size, pos = decode_varint(buffer, pos)
    if size < 0:
        return None, pos
    if pos + size > len(buffer):
        raise ValueError("a field longer than its record")
    return bytes(buffer[pos : pos + size]), pos + size
