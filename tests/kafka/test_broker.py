"""The real broker the tests start: keyed messages, consumer groups, data across restarts."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter, defaultdict
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from tests.kafka.conftest import KafkaEndpoint
from tests.support.kafka_broker import KafkaBroker, create_topic

WAIT = 30.0  # seconds: bound of every wait on the broker


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _producer(bootstrap: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        request_timeout_ms=10_000,
        key_serializer=str.encode,
        value_serializer=lambda value: json.dumps(value).encode(),
    )


def _consumer(bootstrap: str, group: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=6_000,
        heartbeat_interval_ms=500,
        request_timeout_ms=10_000,
        value_deserializer=lambda raw: json.loads(raw),
        key_deserializer=lambda raw: raw.decode(),
    )


async def _produce(bootstrap: str, topic: str, count: int, keys: int) -> dict[int, int]:
    """Send ``count`` keyed JSON messages; return the partition the broker gave each seq."""
    producer = _producer(bootstrap)
    await producer.start()
    try:
        async with asyncio.timeout(WAIT):
            pending = [
                await producer.send(topic, key=f"k{seq % keys}", value={"seq": seq})
                for seq in range(count)
            ]
            sent = await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return {seq: meta.partition for seq, meta in enumerate(sent)}


async def _drain(
    consumer: AIOKafkaConsumer, expected: int, settle_ms: int = 1_500
) -> list[ConsumerRecord[Any, Any]]:
    """Read until ``expected`` records arrived (bounded), then poll once more for extras."""
    records: list[ConsumerRecord[Any, Any]] = []
    async with asyncio.timeout(WAIT):
        while len(records) < expected:
            batches = await consumer.getmany(timeout_ms=500)
            for batch in batches.values():
                records.extend(batch)
    extra = await consumer.getmany(timeout_ms=settle_ms)
    records.extend(record for batch in extra.values() for record in batch)
    return records


async def test_keyed_messages_arrive_exactly_once_and_keys_keep_their_partition(
    kafka_broker: KafkaEndpoint,
) -> None:
    topic = _name("keyed")
    await kafka_broker.create_topic(topic, partitions=4)
    sent_partition = await _produce(kafka_broker.bootstrap, topic, count=1_000, keys=37)

    consumer = _consumer(kafka_broker.bootstrap, _name("group"))
    await consumer.start()
    try:
        consumer.subscribe([topic])
        records = await _drain(consumer, expected=1_000)
        await consumer.commit()
    finally:
        await consumer.stop()

    seqs = Counter(record.value["seq"] for record in records)
    assert set(seqs) == set(range(1_000)), "a message is missing"
    assert [seq for seq, n in seqs.items() if n > 1] == [], "a message arrived twice"
    partitions_of_key: dict[str, set[int]] = defaultdict(set)
    for record in records:
        partitions_of_key[record.key].add(record.partition)
        assert record.partition == sent_partition[record.value["seq"]]
    assert all(len(parts) == 1 for parts in partitions_of_key.values()), partitions_of_key
    assert len(partitions_of_key) == 37
    assert {record.partition for record in records} == {0, 1, 2, 3}


@pytest.mark.parametrize("how", ["stop-start", "kill-9"])
async def test_data_and_committed_offsets_survive_a_broker_restart(
    fresh_broker: KafkaBroker, how: str
) -> None:
    bootstrap = fresh_broker.bootstrap
    topic, group = _name("durable"), _name("group")
    await create_topic(bootstrap, topic, 2)
    await _produce(bootstrap, topic, count=200, keys=10)
    partitions = [TopicPartition(topic, 0), TopicPartition(topic, 1)]

    consumer = _consumer(bootstrap, group)
    await consumer.start()
    try:
        consumer.subscribe([topic])
        before = await _drain(consumer, expected=200, settle_ms=500)
        ends = await consumer.end_offsets(partitions)
        # Commit half of each partition: the rest must be redelivered after the restart.
        halfway = {tp: ends[tp] // 2 for tp in partitions}
        await consumer.commit(halfway)
    finally:
        await consumer.stop()
    assert len(before) == 200
    expected_rest = {
        r.value["seq"] for r in before if r.offset >= halfway[TopicPartition(r.topic, r.partition)]
    }

    # Free the event loop while the broker goes down and comes back.
    if how == "kill-9":
        fresh_broker.kill()
        await asyncio.to_thread(fresh_broker.start, 60)
    else:
        await asyncio.to_thread(fresh_broker.restart, 60)
    assert fresh_broker.bootstrap == bootstrap, "the restarted broker moved"

    resumed = _consumer(bootstrap, group)
    await resumed.start()
    try:
        # Right after a restart the group coordinator may still be loading the offsets
        # topic (GroupCoordinatorNotAvailable): committed() reads None until it has. Offsets
        # that were lost would stay None, and the bound fails the test.
        async with asyncio.timeout(WAIT):
            while True:
                committed = {tp: await resumed.committed(tp) for tp in partitions}
                if None not in committed.values():
                    break
                await asyncio.sleep(0.5)
        assert committed == halfway
        resumed.subscribe([topic])
        rest = await _drain(resumed, expected=len(expected_rest))
        assert await resumed.end_offsets(partitions) == ends
    finally:
        await resumed.stop()
    assert sorted(r.value["seq"] for r in rest) == sorted(expected_rest)

    replay = _consumer(bootstrap, _name("replay"))
    await replay.start()
    try:
        replay.subscribe([topic])
        after = await _drain(replay, expected=200)
    finally:
        await replay.stop()
    as_tuple = [(r.partition, r.offset, r.key, r.value["seq"]) for r in before]
    assert sorted((r.partition, r.offset, r.key, r.value["seq"]) for r in after) == sorted(as_tuple)
