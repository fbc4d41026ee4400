"""The Kafka worker, like `accrochage run`, says when its configuration file changed since
its start (`runtimes/config_watch.py`): its composition root gives the scheduler the file."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.kafka.conftest import KafkaEndpoint
from tests.kafka.test_worker_unreadable import RUN_TIMEOUT, with_topics
from tests.kafka.workers import Worker


async def test_the_worker_says_its_configuration_changed(
    kafka_broker: KafkaEndpoint, tmp_path: Path, workers: list[Worker]
) -> None:
    config = await with_topics(kafka_broker, tmp_path / "worker")
    worker = Worker(config, tmp_path / "worker.log")
    workers.append(worker)
    await asyncio.to_thread(worker.wait_for_log, "Worker ready", RUN_TIMEOUT)
    text = config.path.read_text(encoding="utf-8")
    assert 'max_delay = "1s"' in text
    config.path.write_text(text.replace('max_delay = "1s"', 'max_delay = "2s"'), "utf-8")
    wanted = "changed since this service started (batching): restart the service to apply it"
    await asyncio.to_thread(worker.wait_for_log, wanted, RUN_TIMEOUT)
    assert worker.stop() == 0, worker.tail()
