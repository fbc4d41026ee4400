"""The Kafka lag metric, the committed offsets and alerts.topic against a real broker
(CONTRACT §10).

After every event is stored, `accrochage_kafka_lag_messages` is 0 on every partition, and the
consumer group's committed offsets equal the offsets stored in the state (not those faust
received), so standard lag tools agree with the state.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from dateutil.relativedelta import relativedelta
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from accrochage.models.deadline import SystemClock, paris_today
from tests.kafka.conftest import KafkaEndpoint
from tests.kafka.workers import (
    PARTITIONS,
    Worker,
    WorkerConfig,
    read_topic,
    send,
    stored_offsets,
    wait_until_done,
    write_events,
    write_worker_config,
)
from tests.test_tracker import event

pytestmark = pytest.mark.kafka
EVENTS = 300
COMMIT_TIMEOUT = 30.0
ALERT_TIMEOUT = 60.0
"""The watch job and the delivery job run every tick (1 s here)."""


async def scraped(config: WorkerConfig) -> list[Sample]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http,
        http.get(f"http://{config.bind}/metrics") as response,
    ):
        assert response.status == 200, await response.text()
        text = await response.text()
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


async def lag(config: WorkerConfig) -> dict[int, float]:
    return {
        int(s.labels["partition"]): s.value
        for s in await scraped(config)
        if s.name == "accrochage_kafka_lag_messages" and s.labels["topic"] == config.topic
    }


async def committed(config: WorkerConfig) -> dict[int, int]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=config.bootstrap, group_id=config.group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        out = {}
        for p in range(PARTITIONS):
            offset = await consumer.committed(TopicPartition(config.topic, p))
            if offset is not None:
                out[p] = offset
        return out
    finally:
        await consumer.stop()


async def test_lag_is_zero_and_committed_offsets_are_the_stored_ones(
    kafka_broker: KafkaEndpoint, tmp_path: Path, kafka_seed: int, workers: list[Worker]
) -> None:
    config = write_worker_config(tmp_path / "worker", kafka_broker.bootstrap)
    alerts_topic = f"{config.topic}.alerts"
    text = config.path.read_text(encoding="utf-8")
    config.path.write_text(
        re.sub(r'(?m)^# topic = ""', f"topic = {json.dumps(alerts_topic)}", text, count=1),
        encoding="utf-8",
    )
    assert config.settings().alerts.topic == alerts_topic
    spec = write_events(
        tmp_path / "events.jsonl", config.settings(), kafka_seed, EVENTS, invalid_ratio=0.05
    )
    worker = Worker(config, tmp_path / "worker.log")
    workers.append(worker)
    await asyncio.to_thread(worker.wait_for_log, "Worker ready", 60)
    sent = await asyncio.to_thread(send, config, spec.path, tmp_path / "send.log")
    await asyncio.to_thread(wait_until_done, config, sent, 120, alive=worker.alive)
    stored = stored_offsets(config.state, config.topic)
    assert sum(stored.values()) == sent

    deadline = time.monotonic() + COMMIT_TIMEOUT
    caught_up = dict.fromkeys(range(PARTITIONS), 0.0)
    while True:  # the lag job runs every second: bounded wait for its ticks after the commit
        seen_lag, seen_committed = await lag(config), await committed(config)
        if seen_committed == stored and seen_lag == caught_up:
            break
        assert time.monotonic() < deadline, (seen_lag, seen_committed, stored, worker.tail())
        await asyncio.sleep(0.5)

    # The writer process's transactions, whose times come back with its answers, and the
    # batch cuts of faust's process; the state's -wal, as it is on the disk.
    samples = await scraped(config)
    writes = {
        s.labels["process"]: s.value
        for s in samples
        if s.name == "accrochage_write_lock_held_seconds_count"
    }
    assert writes["writer"] >= 1 and writes["service"] >= 1, writes
    [wal] = [s.value for s in samples if s.name == "accrochage_state_wal_bytes"]
    assert wal > 0

    # A record due in five days: the worker publishes the alert to alerts.topic, keyed by
    # its fingerprint, from its delivery job (a thread) through faust's producer.
    due_soon = paris_today(SystemClock()) - relativedelta(months=3) + timedelta(days=5)
    late = tmp_path / "late.jsonl"
    late.write_text(json.dumps(event("LATE-1", delivered_on=due_soon.isoformat())) + "\n")
    await asyncio.to_thread(send, config, late, tmp_path / "send-late.log")
    # The generated events hold records at risk of other certifiers too (one alert each),
    # published as the worker finds them: wait for pix's, whichever came first.
    deadline = time.monotonic() + ALERT_TIMEOUT
    while True:
        alerts = await read_topic(config.bootstrap, alerts_topic)
        by_key = {
            (
                json.loads(m.value)["labels"]["alertname"],
                json.loads(m.value)["labels"]["certifier"],
            ): m
            for m in alerts
        }
        message = by_key.get(("AccrochageRecordsAtRisk", "pix"))
        if message is not None:
            break
        assert time.monotonic() < deadline, ([m.value for m in alerts], worker.tail())
        await asyncio.sleep(1)
    assert len(by_key) == len(alerts), "an alert was published twice"
    alert = json.loads(message.value)
    assert alert["labels"]["severity"] == "warning" and alert["status"] == "firing"
    assert message.key is not None and message.key.decode() == alert["fingerprint"]
    assert worker.stop() == 0, worker.tail()
    # faust's own commits at shutdown must not move the group past the state either
    assert await committed(config) == stored_offsets(config.state, config.topic)
