"""`accrochage worker` against a real broker: every event lands where CONTRACT.md says.

Valid events end in exactly one outbox file (valid against the official XSD); invalid ones are
`invalid` records and reach the rejected topic in the envelope of CONTRACT.md §5, a non-JSON
message too (raw text in `event`, kept in the unusable log); exact re-sends change nothing; a
correction either replaces the content before the cut or is stored beside the batched record;
the offsets stored in SQLite equal the topic's end offsets; the query API answers beside it.

The events are random: the seed is printed; replay with ACCROCHAGE_KAFKA_SEED=<seed>.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import time
from pathlib import Path

import aiohttp
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from accrochage.sinks.profiles import PROFILES
from tests.kafka.conftest import KafkaEndpoint
from tests.kafka.workers import (
    NOT_JSON,
    PARTITIONS,
    Input,
    Worker,
    WorkerConfig,
    check_corrections,
    check_final_state,
    check_offsets,
    check_rejected,
    end_offsets,
    query,
    read_outbox,
    read_topic,
    send,
    wait_until_done,
    write_events,
    write_worker_config,
)
from tests.support.crash import BACKGROUND, disposition

pytestmark = pytest.mark.kafka

EVENTS = 3_000
INVALID_RATIO = 0.05
DUPLICATES = 150
CORRECTIONS = 150
START_TIMEOUT = 60.0
RUN_TIMEOUT = 120.0


async def test_worker_stores_batches_and_dead_letters_every_event(
    kafka_broker: KafkaEndpoint,
    tmp_path: Path,
    kafka_seed: int,
    official_xsd: Path,
    workers: list[Worker],
) -> None:
    began = time.monotonic()
    why = f"(seed {kafka_seed}; replay with ACCROCHAGE_KAFKA_SEED={kafka_seed})"
    config = write_worker_config(tmp_path / "worker", kafka_broker.bootstrap, schema="1.1.2")
    spec = write_events(
        tmp_path / "events.jsonl",
        config.settings(),
        kafka_seed,
        EVENTS,
        invalid_ratio=INVALID_RATIO,
        duplicates=DUPLICATES,
        corrections=CORRECTIONS,
        not_json=True,
    )
    assert spec.invalid and spec.valid, why

    worker = Worker(config, tmp_path / "worker.log")
    workers.append(worker)
    await asyncio.to_thread(worker.wait_for_log, "Worker ready", START_TIMEOUT)
    # Sent while the worker runs: cuts and corrections interleave as they would in production.
    sent = await asyncio.to_thread(send, config, spec.path, tmp_path / "send.log")
    assert sent == len(spec.lines), why
    elapsed = await asyncio.to_thread(
        wait_until_done, config, sent, RUN_TIMEOUT, alive=worker.alive, why=why
    )
    print(f"worker: {sent} events read, cut, written in {elapsed:.1f}s ({sent / elapsed:.0f}/s)")

    # The query API beside the worker.
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http,
        http.get(f"http://{config.bind}/summary") as response,
    ):
        assert response.status == 200, await response.text()
        summary = await response.json()
    assert summary["records"] == EVENTS, summary
    assert summary["by_status"] == {"batched": len(spec.valid), "invalid": len(spec.invalid)}, (
        summary
    )

    assert worker.stop() == 0, f"the worker did not stop cleanly:\n{worker.tail()}"
    assert "Traceback" not in worker.text(), worker.tail(80)

    # The outbox: every valid record in exactly one file, every file valid.
    outbox = read_outbox(config.outbox, [PROFILES["1.1.2"].bundled_xsd, official_xsd], why)
    check_final_state(config, spec, outbox, why)
    ways = check_corrections(config, spec, outbox, why)
    print(f"{len(outbox.files)} files; corrections: {ways}")

    # The offsets: SQLite read exactly to the end of each partition.
    ends = await check_offsets(config, sent, why)
    assert all(ends[p] > 0 for p in range(PARTITIONS)), f"a partition got no event: {ends}"

    # The rejected topic: one envelope per rejected message, the non-JSON one included.
    messages = await read_topic(config.bootstrap, config.topic)
    assert len(messages) == sent, why
    rejected = await read_topic(config.bootstrap, config.rejected_topic)
    check_rejected(messages, rejected, config, spec, exactly_once=True, why=why)
    raw = [
        json.loads(m.value) for m in rejected if not isinstance(json.loads(m.value)["event"], dict)
    ]
    assert [envelope["event"] for envelope in raw] == [NOT_JSON], why
    assert raw[0]["errors"], raw

    # The non-JSON message is kept in the unusable log, with where it came from.
    (source,) = [
        f"kafka:{config.topic}:{m.partition}:{m.offset}"
        for m in messages
        if m.value.decode() == NOT_JSON
    ]
    unusable = [dict(r) for r in query(config.state, "SELECT * FROM unusable")]
    assert [(u["raw"], u["source"]) for u in unusable] == [(NOT_JSON, source)], unusable
    assert json.loads(unusable[0]["errors"]), unusable
    print(f"test_worker: {time.monotonic() - began:.1f}s {why}")


async def test_worker_resumes_from_the_state_not_from_the_broker_offsets(
    kafka_broker: KafkaEndpoint,
    tmp_path: Path,
    kafka_seed: int,
    workers: list[Worker],
) -> None:
    """A partition the state has never stored is read from its start, whatever the broker says.

    faust commits acked offsets to the broker on its own schedule, acked meaning "received",
    not "stored": a worker killed after such a commit and before its first SQLite transaction
    for a partition leaves a committed offset ahead of a state that holds nothing for it.
    Simulated here by committing offsets for the group before the first worker starts.
    """
    why = f"(seed {kafka_seed}; replay with ACCROCHAGE_KAFKA_SEED={kafka_seed})"
    config = write_worker_config(tmp_path / "worker", kafka_broker.bootstrap, schema="1.1.2")
    spec = write_events(
        tmp_path / "events.jsonl", config.settings(), kafka_seed, 400, invalid_ratio=0.05
    )
    await kafka_broker.create_topic(config.topic, PARTITIONS)
    await kafka_broker.create_topic(config.rejected_topic, PARTITIONS)
    sent = await asyncio.to_thread(send, config, spec.path, tmp_path / "send.log")
    ends = await end_offsets(config.bootstrap, config.topic)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=config.bootstrap, group_id=config.group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        halfway = {TopicPartition(config.topic, p): end // 2 for p, end in ends.items() if end}
        consumer.assign(list(halfway))
        await consumer.commit(halfway)
    finally:
        await consumer.stop()

    await finished_by_a_worker(config, spec, sent, tmp_path / "worker.log", workers, why)
    said = (tmp_path / "worker.log").read_text(encoding="utf-8")
    for tp, offset in halfway.items():  # which offset won, and why, is said
        assert (
            f"resume {config.topic}[{tp.partition}] at stored offset 0, below the offset "
            f"{offset} the consumer group committed" in said
        ), said


async def finished_by_a_worker(
    config: WorkerConfig, spec: Input, sent: int, log: Path, workers: list[Worker], why: str
) -> None:
    """A worker started now stores all that was `sent` and stops: every record where it
    must be (one file each, nothing twice), the offsets at the topic's end."""
    worker = Worker(config, log)
    workers.append(worker)
    await asyncio.to_thread(wait_until_done, config, sent, RUN_TIMEOUT, alive=worker.alive, why=why)
    assert worker.stop() == 0, worker.tail()
    outbox = read_outbox(config.outbox, [PROFILES["1.1.2"].bundled_xsd], why)
    check_final_state(config, spec, outbox, why)
    await check_offsets(config, sent, why)


async def test_worker_json_logs_are_json_lines_and_sighup_stops_it_gracefully(
    kafka_broker: KafkaEndpoint, tmp_path: Path, workers: list[Worker]
) -> None:
    """faust's terminal spinner wrote a backspace and a cursor code at the end of the start,
    before the next log line: that line was not JSON. SIGHUP (a closed terminal) killed the
    worker with nothing said; it stops as SIGTERM stops it."""
    config = write_worker_config(tmp_path / "worker", kafka_broker.bootstrap)
    worker = Worker(config, tmp_path / "worker.log", "--log-format", "json")
    workers.append(worker)
    await asyncio.to_thread(worker.wait_for_log, "query API on", START_TIMEOUT)
    await asyncio.to_thread(worker.wait_for_log, "Worker ready", START_TIMEOUT)
    assert worker.stop(signum=signal.SIGHUP) == 0, worker.tail()
    assert "Signal received: 1 (1)" in worker.text(), worker.tail()  # SIGHUP
    lines = [line for line in worker.text().splitlines() if line.strip()]
    assert lines
    # The signal named, and the last line the worker's own, as `run`'s (faust's last line,
    # "Closing event loop", came before the writer and the state were closed).
    said = [json.loads(line)["message"] for line in lines]
    assert "stopping (SIGHUP)" in said, worker.tail()
    assert said[-1] == "accrochage worker stopped", worker.tail()
    for line in lines:
        assert isinstance(json.loads(line), dict), repr(line[:200])


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGTERM], ids=["HUP", "TERM"])
async def test_a_signal_to_the_worker_s_whole_process_group_stops_it_gracefully(
    kafka_broker: KafkaEndpoint,
    tmp_path: Path,
    kafka_seed: int,
    workers: list[Worker],
    signum: signal.Signals,
) -> None:
    """A closed terminal sends SIGHUP to every process of the group, systemd's stop SIGTERM
    to every process of the unit: the fork server died of either, and the worker, reading its
    live writer process as dead, failed its groups and exited 70 with the writer left running.
    Sent while events are stored: a graceful stop, nothing left running, and a second worker
    finishes the run with nothing lost or stored twice."""
    why = f"(seed {kafka_seed}; replay with ACCROCHAGE_KAFKA_SEED={kafka_seed})"
    config = write_worker_config(tmp_path / "worker", kafka_broker.bootstrap, schema="1.1.2")
    spec = write_events(
        tmp_path / "events.jsonl", config.settings(), kafka_seed, 1_000, invalid_ratio=0.05
    )
    first = Worker(config, tmp_path / "first.log")
    workers.append(first)
    await asyncio.to_thread(first.wait_for_log, "Worker ready", START_TIMEOUT)
    sent = await asyncio.to_thread(send, config, spec.path, tmp_path / "send.log")
    assert first.stop(signum=signum, group=True) == 0, first.tail(80)
    assert "exit code 255" not in first.text() and "Traceback" not in first.text(), first.tail(80)
    assert first.remnants(grace=30) == (), "a helper outlived the worker"

    await finished_by_a_worker(config, spec, sent, tmp_path / "second.log", workers, why)


@pytest.mark.parametrize(
    ("launcher", "signum"),
    [(("nohup",), signal.SIGHUP), (BACKGROUND, signal.SIGINT)],
    ids=["nohup-HUP", "script-background-INT"],
)
async def test_a_worker_started_with_a_signal_ignored_keeps_it_ignored(
    kafka_broker: KafkaEndpoint,
    tmp_path: Path,
    workers: list[Worker],
    launcher: tuple[str, ...],
    signum: signal.Signals,
) -> None:
    """`nohup accrochage worker &` starts it with SIGHUP ignored, so that closing the terminal
    leaves it running; a shell without job control (a script's `accrochage worker &`) starts
    it with SIGINT ignored, so that a Ctrl-C meant for the script leaves it running. faust's
    worker caught either and stopped on it all the same."""
    assert shutil.which(launcher[0]) is not None, f"{launcher[0]} is missing"
    config = write_worker_config(tmp_path / "worker", kafka_broker.bootstrap)
    worker = Worker(config, tmp_path / "worker.log", launcher=launcher)
    workers.append(worker)
    await asyncio.to_thread(worker.wait_for_log, "Worker ready", START_TIMEOUT)
    assert disposition(worker.pid, signum) == "ignored"
    assert disposition(worker.pid, signal.SIGTERM) == "caught"
    os.killpg(worker.pid, signum)
    assert worker.stop() == 0, worker.tail()
    assert "Signal received: 15" in worker.text(), worker.tail()
    assert f"Signal received: {int(signum)} " not in worker.text(), worker.tail()
    assert "KeyboardInterrupt" not in worker.text(), worker.tail()


async def test_worker_whose_port_is_taken_refuses_to_start(
    kafka_broker: KafkaEndpoint, tmp_path: Path, workers: list[Worker]
) -> None:
    """It consumed on without its HTTP API, /metrics of the port's holder scraped for it."""
    config = write_worker_config(tmp_path / "worker", kafka_broker.bootstrap)
    host, port = config.bind.rsplit(":", 1)
    with socket.create_server((host, int(port))):
        worker = Worker(config, tmp_path / "worker.log")
        workers.append(worker)
        code = await asyncio.to_thread(worker.proc.wait, START_TIMEOUT)
    assert code == 1, worker.tail()
    assert f"cannot listen on {config.bind} (api.bind)" in worker.text()
    assert "Traceback" not in worker.text() and not config.state.exists()
