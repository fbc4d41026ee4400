"""Reading fetched Kafka batches (`runtimes/kafka/unreadable.py`, `lenient.py`), without a
broker: the bytes are built with aiokafka's own batch builder, as a producer sends them.

A header name that is not UTF-8 made aiokafka give up on its whole batch: the records after it
in the same batch were lost. They are now read again, every record delivered, that header left
out. A batch nothing can read (a codec missing) is still one unusable record naming its
offsets. The real-broker side is in `tests/kafka/test_worker_unreadable.py`."""

from __future__ import annotations

import logging
import struct

import pytest
from aiokafka.consumer import fetcher
from aiokafka.errors import CorruptRecordException
from aiokafka.record import memory_records
from aiokafka.record.default_records import _DefaultRecordBatchBuilderPy, _DefaultRecordBatchPy
from aiokafka.record.util import calc_crc32c
from aiokafka.structs import ConsumerRecord, TopicPartition

from accrochage.runtimes.kafka import lenient
from accrochage.runtimes.kafka.lenient import FramedRecords, reread
from accrochage.runtimes.kafka.unreadable import UnreadableRecord, readable_records

TP = TopicPartition("accrochage.delivered", 3)
GZIP = 1
_CRC_AT, _ATTRIBUTES_AT = 17, 21
"""v2 batch layout: base offset 8, length 4, leader epoch 4, magic 1, then the CRC (4) of
everything from the attributes (int16) on."""


class NotUtf8(str):
    """A header name whose bytes are ff fe (what a Go or C producer may send): the
    pure-Python builder writes what `encode` returns."""

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return b"\xff\xfe"


Header = tuple[str, bytes]


def batch(
    base_offset: int, records: list[tuple[bytes, list[Header]]], compression: int = 0
) -> bytes:
    builder = _DefaultRecordBatchBuilderPy(
        magic=2,
        compression_type=compression,
        is_transactional=0,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 20,
    )
    for n, (value, headers) in enumerate(records):
        builder.append(n, timestamp=1_700_000_000_000 + n, key=b"pix", value=value, headers=headers)
    data = builder.build()
    struct.pack_into(">q", data, 0, base_offset)
    return bytes(data)


@pytest.fixture(params=["compiled", "python"], autouse=True)
def reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test with aiokafka's compiled reader and its pure-Python one (what runs under
    AIOKAFKA_NO_EXTENSIONS or without a compiled wheel), which wraps a bad header name's
    UnicodeDecodeError in a CorruptRecordException."""
    if request.param == "python":
        monkeypatch.setattr(lenient, "MemoryRecords", memory_records._MemoryRecordsPy)
        monkeypatch.setattr(memory_records, "DefaultRecordBatch", _DefaultRecordBatchPy)
    return str(request.param)


def read(data: bytes, fetch_offset: int) -> list[ConsumerRecord[bytes, bytes] | UnreadableRecord]:
    partition = fetcher.PartitionRecords(
        TP, FramedRecords(data), None, fetch_offset, None, None, True, fetcher.READ_UNCOMMITTED
    )
    return list(readable_records(partition))


def test_a_header_name_not_utf8_loses_no_record_of_its_batch(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bad: list[Header] = [("trace", b"1"), (NotUtf8("x"), b"secret-ish"), ("origin", b"pix")]
    first = batch(40, [(b"event 40", []), (b"event 41", bad), (b"event 42", [("a", b"b")])])
    second = batch(43, [(b"event 43", [])])
    with caplog.at_level(logging.WARNING):
        got = read(first + second, 40)

    assert [type(r) for r in got] == [ConsumerRecord] * 4, got
    records = [r for r in got if isinstance(r, ConsumerRecord)]
    assert [(r.offset, r.value, r.key) for r in records] == [
        (40, b"event 40", b"pix"),
        (41, b"event 41", b"pix"),
        (42, b"event 42", b"pix"),
        (43, b"event 43", b"pix"),
    ]
    assert list(records[1].headers) == [("trace", b"1"), ("origin", b"pix")]
    assert list(records[2].headers) == [("a", b"b")]
    assert [r.timestamp for r in records[:3]] == [1_700_000_000_000 + n for n in range(3)]
    (warning,) = [r.getMessage() for r in caplog.records]
    assert f"records {TP.topic}-{TP.partition}@41: 1 with a header name" in warning
    assert "not UTF-8, left out" in warning
    assert "secret" not in warning and "event" not in warning


def test_a_compressed_batch_is_read_again_after_its_decompression() -> None:
    bad: list[Header] = [(NotUtf8("x"), b"v")]
    data = batch(7, [(b"a", bad), (b"b", []), (b"c", bad)], compression=GZIP)
    got = read(data, 7)
    assert [(r.offset, r.value) for r in got if isinstance(r, ConsumerRecord)] == [
        (7, b"a"),
        (8, b"b"),
        (9, b"c"),
    ]
    assert len(got) == 3


def test_records_before_the_fetch_offset_are_not_delivered_twice(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A restart reads a batch again from its start: the records below its stored offset are
    neither delivered nor warned about again; one warning for the others."""
    bad: list[Header] = [(NotUtf8("x"), b"v")]
    data = batch(10, [(b"a", bad), (b"b", []), (b"c", bad), (b"d", bad)])
    with caplog.at_level(logging.WARNING):
        got = read(data, 11)
    (warning,) = [r.getMessage() for r in caplog.records]
    assert f"-{TP.partition}@12-13: 2 with a header name" in warning, warning
    assert [(r.offset, r.value) for r in got if isinstance(r, ConsumerRecord)] == [
        (11, b"b"),
        (12, b"c"),
        (13, b"d"),
    ]


def with_codec(data: bytes, codec_id: int) -> bytes:
    """The batch marked as compressed with `codec_id` (its CRC made right again): what a
    producer using a codec this client does not know sends."""
    out = bytearray(data)
    out[_ATTRIBUTES_AT + 1] = (out[_ATTRIBUTES_AT + 1] & ~0x07) | codec_id
    struct.pack_into(">I", out, _CRC_AT, calc_crc32c(bytes(out[_ATTRIBUTES_AT:])))
    return bytes(out)


def test_a_batch_no_codec_can_read_is_one_unusable_record() -> None:
    unknown = with_codec(batch(21, [(b"b", []), (b"c", [])]), 6)
    data = batch(20, [(b"a", [])]) + unknown + batch(23, [(b"d", [])])
    got = read(data, 20)
    assert isinstance(got[0], ConsumerRecord) and got[0].offset == 20
    unreadable = got[1]
    assert isinstance(unreadable, UnreadableRecord)
    assert (unreadable.first, unreadable.offset) == (21, 22)
    assert "UnsupportedCodecError" in unreadable.problem
    assert "offsets 21 to 22 of partition 3" in unreadable.problem
    assert isinstance(got[2], ConsumerRecord) and got[2].offset == 23
    assert len(got) == 3


def test_bytes_that_are_not_a_batch_are_refused_when_read_again() -> None:
    data = bytearray(batch(0, [(b"a", [(NotUtf8("x"), b"v")])]))
    data[-3:] = b"\x7f\x7f\x7f"
    with pytest.raises(CorruptRecordException, match="invalid record structure"):
        reread(memoryview(bytes(data)))
