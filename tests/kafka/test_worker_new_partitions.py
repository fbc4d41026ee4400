"""Partitions added to the topic while a worker reads it (a platform that outgrew it): the
worker read them only at faust's metadata refresh, 5 minutes later, and events sent to them
waited that long unread. It now reads them within `METADATA_MAX_AGE_MS` (30 s) and a
rebalance, from their start."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions

from accrochage.runtimes.kafka.worker import METADATA_MAX_AGE_MS
from tests.kafka.conftest import KafkaEndpoint
from tests.kafka.workers import (
    PARTITIONS,
    Worker,
    check_offsets,
    end_offsets,
    progress,
    send,
    wait_until_done,
    write_events,
    write_worker_config,
)

RUN_TIMEOUT = 120.0
NOT_BY_DEFAULT = 240.0
"""Less than faust's refresh (300 s), eight times `METADATA_MAX_AGE_MS`."""


async def grow(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        await admin.start()
        await admin.create_partitions({topic: NewPartitions(total_count=partitions)})
    finally:
        await admin.close()


@pytest.mark.kafka
async def test_partitions_added_to_the_topic_are_read_without_waiting_5_minutes(
    kafka_broker: KafkaEndpoint, tmp_path: Path, kafka_seed: int, workers: list[Worker]
) -> None:
    assert NOT_BY_DEFAULT < 300 and METADATA_MAX_AGE_MS / 1000 * 8 <= NOT_BY_DEFAULT
    why = f"(seed {kafka_seed}; replay with ACCROCHAGE_KAFKA_SEED={kafka_seed})"
    config = write_worker_config(tmp_path / "w", kafka_broker.bootstrap)
    spec = write_events(
        tmp_path / "events.jsonl", config.settings(), kafka_seed, 400, invalid_ratio=0.0
    )
    first, then = tmp_path / "first.jsonl", tmp_path / "then.jsonl"
    first.write_text("".join(line + "\n" for line in spec.lines[:200]), encoding="utf-8")
    then.write_text("".join(line + "\n" for line in spec.lines[200:]), encoding="utf-8")
    worker = Worker(config, tmp_path / "worker.log")
    workers.append(worker)
    await asyncio.to_thread(worker.wait_for_log, "Worker ready", RUN_TIMEOUT)
    sent = await asyncio.to_thread(send, config, first, tmp_path / "send-1.log")
    await asyncio.to_thread(wait_until_done, config, sent, RUN_TIMEOUT, alive=worker.alive, why=why)

    grown = 2 * PARTITIONS
    await grow(config.bootstrap, config.topic, grown)
    sent += await asyncio.to_thread(send, config, then, tmp_path / "send-2.log")
    ends = await end_offsets(config.bootstrap, config.topic)
    assert len(ends) == grown and any(ends[p] for p in range(PARTITIONS, grown)), (
        f"no event went to the new partitions: {ends} {why}"
    )
    await asyncio.to_thread(
        wait_until_done, config, sent, NOT_BY_DEFAULT, alive=worker.alive, why=why
    )
    assert worker.stop() == 0, worker.tail()
    await check_offsets(config, sent, why)
    assert progress(config).records == len(spec.valid) == 400, why
