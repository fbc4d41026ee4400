"""A worker whose state another process holds waits for it, then stores everything.

An operator's command that holds the state's write lock longer than `state.lock_wait` (a
`revalidate` over a large state, a command suspended with Ctrl-Z) used to end the worker with
`state_busy`; it now waits, says so in its log, and stores every event once the holder lets
go, in order, each once, its batches written.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from accrochage.sinks.profiles import PROFILES
from tests.kafka.conftest import KafkaEndpoint
from tests.kafka.workers import (
    Worker,
    a_new_worker_stores_everything,
    check_final_state,
    check_offsets,
    progress,
    read_outbox,
    send,
    wait_until_done,
    write_events,
    write_worker_config,
)
from tests.test_write_lock import held, release

pytestmark = pytest.mark.kafka

START_TIMEOUT = 60.0
RUN_TIMEOUT = 120.0
WAITING = "the group is stored once it lets go"
STOP_WITHIN = 90.0
"""Less than the two minutes the stop used to wait for a group waiting on the state."""
STOPPED_EVENTS = 6000
"""More than the worker hands the writer before it waits for a group to be stored."""


async def test_a_worker_waits_for_a_held_state_and_then_stores_everything(
    kafka_broker: KafkaEndpoint,
    tmp_path: Path,
    kafka_seed: int,
    workers: list[Worker],
) -> None:
    why = f"(seed {kafka_seed}; replay with ACCROCHAGE_KAFKA_SEED={kafka_seed})"
    config = write_worker_config(tmp_path / "worker", kafka_broker.bootstrap)
    text = config.path.read_text(encoding="utf-8")
    assert text.count('lock_wait = "30s"') == 1
    config.path.write_text(text.replace('lock_wait = "30s"', 'lock_wait = "1s"'), "utf-8")
    spec = write_events(
        tmp_path / "events.jsonl",
        config.settings(),
        kafka_seed,
        800,
        invalid_ratio=0.05,
        duplicates=40,
    )
    first, rest = tmp_path / "first.jsonl", tmp_path / "rest.jsonl"
    lines = spec.path.read_text(encoding="utf-8").splitlines(keepends=True)
    first.write_text("".join(lines[:200]), encoding="utf-8")
    rest.write_text("".join(lines[200:]), encoding="utf-8")

    worker = Worker(config, tmp_path / "worker.log")
    workers.append(worker)
    await asyncio.to_thread(worker.wait_for_log, "Worker ready", START_TIMEOUT)
    sent = await asyncio.to_thread(send, config, first, tmp_path / "send-1.log")
    await asyncio.to_thread(wait_until_done, config, sent, RUN_TIMEOUT, alive=worker.alive, why=why)

    with held(config.state) as holder:
        before = progress(config)
        sent += await asyncio.to_thread(send, config, rest, tmp_path / "send-2.log")
        await asyncio.to_thread(worker.wait_for_log, WAITING, RUN_TIMEOUT)
        assert worker.alive(), worker.tail()
        assert progress(config) == before, "stored while another process held the state"
        release(holder)

    await asyncio.to_thread(wait_until_done, config, sent, RUN_TIMEOUT, alive=worker.alive, why=why)
    assert worker.stop() == 0, f"the worker did not stop cleanly:\n{worker.tail()}"
    assert "Traceback" not in worker.text(), worker.tail(80)
    outbox = read_outbox(config.outbox, [PROFILES["1.1.5"].bundled_xsd], why)
    assert sent == len(spec.lines), why
    check_final_state(config, spec, outbox, why)
    await check_offsets(config, sent, why)


async def test_a_worker_stopped_while_it_waits_for_the_state_stops_at_once_and_loses_nothing(
    kafka_broker: KafkaEndpoint,
    tmp_path: Path,
    kafka_seed: int,
    workers: list[Worker],
) -> None:
    """A SIGTERM while a group waits for a state another process holds: the stop used to wait
    two minutes for that group (a supervisor's stop timeout kills it first). It now gives the
    wait up; the events stay in the log and the next worker stores each of them once."""
    why = f"(seed {kafka_seed}; replay with ACCROCHAGE_KAFKA_SEED={kafka_seed})"
    config = write_worker_config(tmp_path / "worker", kafka_broker.bootstrap)
    text = config.path.read_text(encoding="utf-8")
    config.path.write_text(text.replace('lock_wait = "30s"', 'lock_wait = "1s"'), "utf-8")
    spec = write_events(
        tmp_path / "events.jsonl", config.settings(), kafka_seed, STOPPED_EVENTS, invalid_ratio=0.05
    )

    worker = Worker(config, tmp_path / "worker.log")
    workers.append(worker)
    await asyncio.to_thread(worker.wait_for_log, "Worker ready", START_TIMEOUT)
    before = progress(config)
    with held(config.state) as holder:
        sent = await asyncio.to_thread(send, config, spec.path, tmp_path / "send.log")
        await asyncio.to_thread(worker.wait_for_log, WAITING, RUN_TIMEOUT)
        code = await asyncio.to_thread(worker.stop, STOP_WITHIN)
        assert code == 0, f"the stop waited for the holder (exit {code}):\n{worker.tail(80)}"
        assert progress(config) == before, "stored while another process held the state"
        release(holder)
    log = worker.text()
    assert "were not stored" in log and "at its next start" in log, worker.tail(80)
    assert "Traceback" not in log, worker.tail(80)

    await a_new_worker_stores_everything(
        config, spec, sent, tmp_path / "worker-2.log", workers, why, RUN_TIMEOUT
    )
