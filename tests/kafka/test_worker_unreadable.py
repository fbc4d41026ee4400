"""Records the Kafka client cannot read, against a real broker: a header name that is not
UTF-8 stopped the worker at every start (every partition stalled), and so did a batch
compressed with lz4, snappy or zstd (no codec library). Now the codecs are installed; a batch
with a header name that is not UTF-8 is read again, every record of it delivered; and a batch
that still cannot be read is one unusable event naming its offsets, the others going on."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from faust.types import TP

from accrochage.runtimes.kafka import same_log
from accrochage.runtimes.kafka.same_log import Seen
from accrochage.runtimes.kafka.unreadable import UnreadableRecord
from tests.kafka.conftest import KafkaEndpoint
from tests.kafka.test_worker_batches import good
from tests.kafka.workers import (
    PARTITIONS,
    Worker,
    WorkerConfig,
    query,
    read_topic,
    stored_offsets,
    write_worker_config,
)

pytestmark = pytest.mark.kafka

RUN_TIMEOUT = 120.0
CODECS = ("gzip", "snappy", "lz4", "zstd")


NOT_UTF8_HEADER = """
import asyncio, sys
from aiokafka import AIOKafkaProducer

class NotUtf8(str):
    def encode(self, *args, **kwargs):
        return b"\\xff\\xfe"

async def main():
    producer = AIOKafkaProducer(bootstrap_servers=sys.argv[1], acks="all")
    await producer.start()
    try:
        batch = producer.create_batch()
        for n, line in enumerate(sys.stdin.buffer.read().splitlines()):
            headers = [("trace", b"1"), (NotUtf8("x"), b"v")] if n == 1 else []
            assert batch.append(key=b"pix", value=line, timestamp=None, headers=headers)
        batch.close()
        await (await producer.send_batch(batch, sys.argv[2], partition=0))
    finally:
        await producer.stop()

asyncio.run(main())
"""
"""Sends stdin's lines as the records of one batch, the second with a header whose name is
the bytes ff fe, not UTF-8 (what a Go or C producer may send): aiokafka's pure-Python record
builder writes what `encode` returns."""

NO_CRAMJAM = "raise ImportError('cramjam hidden by the test')\n"
"""A `cramjam` package that cannot be imported: aiokafka then has no lz4, snappy or zstd."""


def produce_not_utf8(bootstrap: str, topic: str, values: list[bytes]) -> None:
    env = {**os.environ, "AIOKAFKA_NO_EXTENSIONS": "1"}
    subprocess.run(
        [sys.executable, "-c", NOT_UTF8_HEADER, bootstrap, topic],
        input=b"\n".join(values),
        env=env,
        check=True,
        timeout=120,
    )


async def produce(
    bootstrap: str,
    topic: str,
    records: list[tuple[int, bytes, list[tuple[str, bytes]]]],
    compression: str | None = None,
) -> None:
    """Each record sent and acknowledged alone (a batch of its own)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", compression_type=compression
    )
    await producer.start()
    try:
        for partition, value, headers in records:
            await producer.send_and_wait(
                topic, value, key=b"pix", partition=partition, headers=headers
            )
    finally:
        await producer.stop()


async def with_topics(kafka_broker: KafkaEndpoint, folder: Path) -> WorkerConfig:
    """A worker's configuration, its topics created."""
    config = write_worker_config(folder, kafka_broker.bootstrap)
    await kafka_broker.create_topic(config.topic, PARTITIONS)
    await kafka_broker.create_topic(config.rejected_topic, PARTITIONS)
    return config


async def until(done: Callable[[], bool], worker: Worker, why: str) -> None:
    """Wait (at most `RUN_TIMEOUT`) for `done()`, the worker alive meanwhile."""
    deadline = time.monotonic() + RUN_TIMEOUT
    while not done():
        assert worker.alive(), worker.tail()
        assert time.monotonic() < deadline, f"{why}:\n{worker.tail()}"
        await asyncio.sleep(0.3)


def stored(state: Path) -> tuple[int, list[tuple[str, str]]]:
    (records,) = query(state, "SELECT count(*) FROM records")[0]
    unusable = [(r[0], r[1]) for r in query(state, "SELECT source, errors FROM unusable")]
    return records, unusable


async def test_a_header_name_not_utf8_loses_no_record_of_its_batch(
    kafka_broker: KafkaEndpoint, tmp_path: Path, workers: list[Worker]
) -> None:
    config = await with_topics(kafka_broker, tmp_path / "worker")
    await asyncio.to_thread(
        produce_not_utf8, config.bootstrap, config.topic, [good(1), good(2), good(3)]
    )
    await produce(config.bootstrap, config.topic, [(0, good(4), [])])
    for n, codec in enumerate(CODECS, start=10):
        await produce(config.bootstrap, config.topic, [(1, good(n), [])], codec)

    worker = Worker(config, tmp_path / "worker.log")
    workers.append(worker)
    await asyncio.to_thread(worker.wait_for_log, "Worker ready", RUN_TIMEOUT)
    await until(lambda: stored(config.state)[0] == 4 + len(CODECS), worker, "every record stored")
    await until(
        lambda: stored_offsets(config.state, config.topic) == {0: 4, 1: len(CODECS)},
        worker,
        "every offset stored",
    )
    records, unusable = stored(config.state)
    assert records == 4 + len(CODECS), "every record of the batch, each codec read"
    assert unusable == []
    ids = {row[0] for row in query(config.state, "SELECT record_id FROM records")}
    assert {json.loads(good(n))["record_id"] for n in (1, 2, 3, 4)} <= ids
    assert f"records {config.topic}-0@1: 1 with a header name that is not UTF-8" in worker.text()
    assert worker.stop() == 0, worker.tail()


async def test_a_batch_the_client_cannot_read_is_one_unusable_event(
    kafka_broker: KafkaEndpoint, tmp_path: Path, workers: list[Worker]
) -> None:
    config = await with_topics(kafka_broker, tmp_path / "worker")
    await produce(config.bootstrap, config.topic, [(0, good(1), [])])
    await produce(config.bootstrap, config.topic, [(0, good(2), [])], "lz4")
    await produce(config.bootstrap, config.topic, [(0, good(3), [])])
    await produce(config.bootstrap, config.topic, [(1, good(4), [])], "gzip")
    hidden = tmp_path / "no-cramjam"
    (hidden / "cramjam").mkdir(parents=True)
    (hidden / "cramjam" / "__init__.py").write_text(NO_CRAMJAM, encoding="utf-8")

    path = os.pathsep.join(filter(None, (str(hidden), os.environ.get("PYTHONPATH"))))
    worker = Worker(config, tmp_path / "worker.log", env={"PYTHONPATH": path})
    workers.append(worker)
    await asyncio.to_thread(worker.wait_for_log, "Worker ready", RUN_TIMEOUT)

    def settled() -> bool:
        records, unusable = stored(config.state)
        return records == 3 and bool(unusable)

    await until(settled, worker, "every readable record and one unusable event")
    records, unusable = stored(config.state)
    assert records == 3, "the records before and after it, and gzip's (no library needed)"
    ((source, errors),) = unusable
    assert source == f"kafka:{config.topic}:0:1"
    (problem,) = json.loads(errors)
    assert problem["field"] == "kafka"
    assert "could not read the record(s) at offset 1 of partition 0" in problem["message"]
    assert "UnsupportedCodecError" in problem["message"]
    assert stored_offsets(config.state, config.topic) == {0: 3, 1: 1}
    await until(  # letters are produced by a job of their own, then forgotten
        lambda: not query(config.state, "SELECT 1 FROM dead_letters"),
        worker,
        "the rejected letter produced",
    )
    letters = await read_topic(config.bootstrap, config.rejected_topic)
    assert len(letters) == 1
    assert "could not read" in json.loads(letters[0].value)["errors"][0]["message"]
    assert worker.stop() == 0, worker.tail()


async def test_a_worker_restarted_after_an_unreadable_last_batch_reads_on(
    kafka_broker: KafkaEndpoint, tmp_path: Path, workers: list[Worker]
) -> None:
    """The unusable event of an unreadable batch has no value the state knows: no mark is
    kept for it. Its writer process took it for a record of empty value and marked it so;
    at the next start the record read there (its codec installed by then) was "another
    record" and the worker stopped, saying the topic had been deleted and created again."""
    config = await with_topics(kafka_broker, tmp_path / "worker")
    await produce(config.bootstrap, config.topic, [(0, good(1), [])])
    await produce(config.bootstrap, config.topic, [(0, good(2), [])], "lz4")
    hidden = tmp_path / "no-cramjam"
    (hidden / "cramjam").mkdir(parents=True)
    (hidden / "cramjam" / "__init__.py").write_text(NO_CRAMJAM, encoding="utf-8")
    path = os.pathsep.join(filter(None, (str(hidden), os.environ.get("PYTHONPATH"))))
    first = Worker(config, tmp_path / "first.log", env={"PYTHONPATH": path})
    workers.append(first)
    await asyncio.to_thread(first.wait_for_log, "Worker ready", RUN_TIMEOUT)
    await until(
        lambda: stored_offsets(config.state, config.topic).get(0) == 2,
        first,
        "the unreadable batch kept as unusable",
    )
    marks = query(config.state, "SELECT partition, last_mark FROM input_offsets")
    assert [mark for partition, mark in marks if partition == 0] == [None], marks
    assert first.stop() == 0, first.tail()

    await produce(config.bootstrap, config.topic, [(0, good(3), [])])
    again = Worker(config, tmp_path / "again.log")  # the codec installed since
    workers.append(again)
    await asyncio.to_thread(again.wait_for_log, "Worker ready", RUN_TIMEOUT)
    await until(lambda: stored(config.state)[0] == 2, again, "the record after it stored")
    assert "deleted and created again" not in again.text()
    assert again.stop() == 0, again.tail()


class _Fetched:
    """A consumer whose partition 0 holds a batch this client cannot read at the offset
    asked, and partition 1 a readable record: what `same_log._read` sees through the patched
    fetcher (`unreadable.py`) once a codec present when the state stored them is gone."""

    def __init__(self) -> None:
        self.paused: list[TopicPartition] = []

    def assign(self, parts: list[TopicPartition]) -> None:
        self.parts = parts

    def seek(self, part: TopicPartition, offset: int) -> None:
        pass

    async def getmany(self, timeout_ms: int) -> dict[TopicPartition, list[Any]]:
        zero, one = (TopicPartition("delivered", n) for n in (0, 1))
        unreadable = UnreadableRecord("delivered", 0, 9, 5, "UnsupportedCodecError: codec")
        readable = SimpleNamespace(offset=4, value=b"{}")
        return {p: r for p, r in ((zero, [unreadable]), (one, [readable])) if p not in self.paused}

    def pause(self, part: TopicPartition) -> None:
        self.paused.append(part)


async def test_a_record_before_the_offset_now_unreadable_is_not_checked() -> None:
    """Its `.value` was read: an `AttributeError` the start-up check did not catch, so a
    worker whose client lost a codec since stopped at every start (the Kafka review)."""
    found: dict[TP, Seen] = {}
    wanted = {TP("delivered", 0): 7, TP("delivered", 1): 4}
    await asyncio.wait_for(same_log._read(_Fetched(), wanted, found), 5)
    assert found == {TP("delivered", 1): Seen(4, b"{}")}
