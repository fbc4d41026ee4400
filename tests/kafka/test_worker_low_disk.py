"""A worker whose state's disk is below `state.keep_free_bytes` waits for room instead of
storing its events, or stopping: the events stay in the log, a stop (SIGTERM) ends the wait
at once, and the worker started once there is room stores each of them once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.kafka.conftest import KafkaEndpoint
from tests.kafka.workers import (
    Worker,
    WorkerConfig,
    a_new_worker_stores_everything,
    progress,
    send,
    write_events,
    write_worker_config,
)

pytestmark = pytest.mark.kafka

START_TIMEOUT = 60.0
RUN_TIMEOUT = 120.0
STOP_WITHIN = 90.0
WAITING = "the group is stored once there is room"
KEPT = "keep_free_bytes = 268435456"
BEYOND = 2**62
"""More bytes than any disk has free."""


def keep_free(config: WorkerConfig, size: int) -> None:
    text = config.path.read_text(encoding="utf-8")
    line = next(line for line in text.splitlines() if line.startswith("keep_free_bytes = "))
    config.path.write_text(text.replace(line, f"keep_free_bytes = {size}"), encoding="utf-8")


async def test_a_worker_waits_for_room_stops_at_once_and_loses_nothing(
    kafka_broker: KafkaEndpoint,
    tmp_path: Path,
    kafka_seed: int,
    workers: list[Worker],
) -> None:
    why = f"(seed {kafka_seed}; replay with ACCROCHAGE_KAFKA_SEED={kafka_seed})"
    config = write_worker_config(tmp_path / "worker", kafka_broker.bootstrap)
    assert KEPT in config.path.read_text(encoding="utf-8")
    keep_free(config, BEYOND)
    spec = write_events(
        tmp_path / "events.jsonl", config.settings(), kafka_seed, 600, invalid_ratio=0.05
    )

    worker = Worker(config, tmp_path / "worker.log")
    workers.append(worker)
    await asyncio.to_thread(worker.wait_for_log, "Worker ready", START_TIMEOUT)
    before = progress(config)
    sent = await asyncio.to_thread(send, config, spec.path, tmp_path / "send.log")
    await asyncio.to_thread(worker.wait_for_log, WAITING, RUN_TIMEOUT)
    assert worker.alive(), f"a low disk stopped the worker:\n{worker.tail(80)}"
    assert progress(config) == before, "stored below state.keep_free_bytes"
    code = await asyncio.to_thread(worker.stop, STOP_WITHIN)
    assert code == 0, f"the stop waited for room (exit {code}):\n{worker.tail(80)}"
    log = worker.text()
    assert "below state.keep_free_bytes" in log and "at its next start" in log, worker.tail(80)
    assert "Traceback" not in log, worker.tail(80)
    assert progress(config) == before

    keep_free(config, 0)
    await a_new_worker_stores_everything(
        config, spec, sent, tmp_path / "worker-2.log", workers, why, RUN_TIMEOUT
    )
