"""A stored offset past a partition's end (its topic deleted and created again, a broker that
lost data): aiokafka went back to the log's start, and every new event below the old offset
was skipped as stored already, acknowledged by the broker and lost without a word. The worker
now stops saying why, or, started with `--reread-beyond-end`, reads the partition again."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import sqlite3
import time
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from faust.types import TP

from accrochage.runtimes.kafka.compose import rewind
from accrochage.runtimes.kafka.log_bounds import within as resumed_at
from accrochage.runtimes.kafka.pending import EXIT_UNEXPECTED
from accrochage.runtimes.kafka.same_log import Seen, replaced
from accrochage.runtimes.kafka.seeking import OffsetsBeyondEnd, SeekingConsumer
from accrochage.streams.incoming import Incoming
from accrochage.streams.log_source import LogSource, log_mark, log_marks
from tests.kafka.conftest import KafkaEndpoint
from tests.kafka.test_worker_batches import good
from tests.kafka.test_worker_unreadable import RUN_TIMEOUT, produce, until, with_topics
from tests.kafka.workers import PARTITIONS, Worker, WorkerConfig, query, stored_offsets
from tests.test_tracker import event, make_core

TOPIC_0 = TP("delivered", 0)


def records(state: Path) -> int:
    return int(query(state, "SELECT count(*) FROM records")[0][0])


async def three_stored(
    kafka_broker: KafkaEndpoint, tmp_path: Path, workers: list[Worker]
) -> WorkerConfig:
    """A worker's topics, 3 events produced to partition 0 and stored by a worker, stopped."""
    config = await with_topics(kafka_broker, tmp_path / "worker")
    await produce(config.bootstrap, config.topic, [(0, good(n), []) for n in range(3)])
    first = Worker(config, tmp_path / "first.log")
    workers.append(first)
    await asyncio.to_thread(first.wait_for_log, "Worker ready", RUN_TIMEOUT)
    await until(lambda: records(config.state) == 3, first, "the first 3 events")
    assert first.stop() == 0, first.tail()
    return config


async def reread_from_start(
    config: WorkerConfig, tmp_path: Path, workers: list[Worker], *, stored: int, offset: int
) -> Worker:
    """A worker started with `--reread-beyond-end`, once it holds `stored` records and the
    partition's stored offset is `offset`, having said it read partition 0 from its start."""
    reread = Worker(config, tmp_path / "reread.log", "--reread-beyond-end")
    workers.append(reread)
    await until(lambda: records(config.state) == stored, reread, f"{stored} records")
    at = f"offset {offset}"
    await until(lambda: stored_offsets(config.state, config.topic).get(0) == offset, reread, at)
    said = reread.text()
    assert "read again from its start, offset 0" in said
    # The group's offset is ahead because of the reread, said already: not blamed on a backup.
    assert "the consumer group committed" not in said, said
    return reread


@pytest.mark.kafka
async def test_a_stored_offset_past_the_end_stops_the_worker_until_told_to_reread(
    kafka_broker: KafkaEndpoint, tmp_path: Path, workers: list[Worker]
) -> None:
    config = await three_stored(kafka_broker, tmp_path, workers)
    with sqlite3.connect(config.state) as conn:  # as a state whose topic was created again
        conn.execute("UPDATE input_offsets SET next_offset = 10 WHERE partition = 0")
    conn.close()
    await produce(config.bootstrap, config.topic, [(0, good(n), []) for n in range(3, 5)])

    stopped = Worker(config, tmp_path / "stopped.log")
    workers.append(stopped)
    await asyncio.to_thread(stopped.proc.wait, RUN_TIMEOUT)
    assert stopped.proc.returncode != 0
    said = stopped.text()
    assert "up to offset 10, but the partition ends at 5" in said, stopped.tail()
    assert "--reread-beyond-end" in said
    assert records(config.state) == 3, "nothing skipped, nothing stored"

    reread = await reread_from_start(config, tmp_path, workers, stored=5, offset=5)
    assert reread.stop() == 0, reread.tail()


async def recreate(bootstrap: str, topic: str, partitions: int) -> None:
    """Delete `topic` and create it again (the broker may take a moment to forget it)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([topic])
        deadline = time.monotonic() + RUN_TIMEOUT
        while True:
            try:
                await admin.create_topics([NewTopic(topic, partitions, 1)])
                return
            except TopicAlreadyExistsError:
                assert time.monotonic() < deadline, f"{topic} was never deleted"
                await asyncio.sleep(0.5)
    finally:
        await admin.close()


@pytest.mark.kafka
async def test_a_topic_created_again_past_the_stored_offset_stops_the_worker(
    kafka_broker: KafkaEndpoint, tmp_path: Path, workers: list[Worker]
) -> None:
    """The new log already reaches past the stored offset: no bound tells, the record before
    the stored offset does. Before, the worker resumed at offset 3 of the new log and never
    stored its first 3 events."""
    config = await three_stored(kafka_broker, tmp_path, workers)

    await produce(config.bootstrap, config.topic, [(0, good(n), []) for n in range(3, 5)])
    same = Worker(config, tmp_path / "same.log")
    workers.append(same)
    await until(lambda: records(config.state) == 5, same, "2 more events on the same log")
    assert same.stop() == 0, same.tail()
    assert "is not the one it stored" not in same.text()

    await recreate(config.bootstrap, config.topic, PARTITIONS)
    await produce(config.bootstrap, config.topic, [(0, good(n), []) for n in range(10, 18)])
    stopped = Worker(config, tmp_path / "stopped.log")
    workers.append(stopped)
    await asyncio.to_thread(stopped.proc.wait, RUN_TIMEOUT)
    assert stopped.proc.returncode != 0
    said = stopped.text()
    assert (
        f"stored {config.topic}[0] up to offset 5, but the partition's record at offset 4 is "
        "not the one it stored" in said
    ), stopped.tail()
    assert "--reread-beyond-end" in said
    assert records(config.state) == 5, "nothing skipped, nothing stored"

    reread = await reread_from_start(config, tmp_path, workers, stored=13, offset=8)
    # Killed, not stopped: a clean stop is other tests' subject, and faust's stop of a worker
    # started a second before once hung past the test's bound on a loaded machine.
    reread.proc.kill()
    await asyncio.to_thread(reread.proc.wait, RUN_TIMEOUT)

    after = Worker(config, tmp_path / "after.log")
    workers.append(after)
    await until(lambda: f"resume {config.topic}[0] at stored offset 8" in after.text(), after, "")
    assert "is not the one it stored" not in after.text(), "the new log, checked as stored"
    after.proc.kill()
    await asyncio.to_thread(after.proc.wait, RUN_TIMEOUT)


def replaced_at(mark_of: bytes | None, offset: int, seen: Seen) -> bool:
    return replaced(log_mark(mark_of), offset, seen)


def test_the_record_before_the_stored_offset_tells_the_log() -> None:
    assert not replaced_at(b"event 4", 4, Seen(4, b"event 4")), "the same record"
    assert replaced_at(b"event 4", 4, Seen(4, b"another event")), "another value"
    assert replaced_at(b"event 4", 4, Seen(5, b"event 4")), "a marker at 4: another log"
    assert not replaced_at(None, 4, Seen(4, None)), "a record without a value, the same"


def test_each_partition_s_last_record_is_marked_unless_its_value_is_unknown() -> None:
    items = [
        Incoming(b"a", partition=0, offset=7),
        Incoming(b"b", partition=0, offset=9),
        Incoming(b"c", partition=0, offset=8),
        Incoming(b"d", partition=1, offset=3),
        Incoming(b"", partition=2, offset=4, value_unknown=True),
        Incoming(b"e", source="file:1"),
    ]
    assert log_marks(items) == {0: log_mark(b"b"), 1: log_mark(b"d")}


def test_the_state_keeps_the_mark_of_the_last_record_stored(tmp_path: Path) -> None:
    core, _ = make_core(tmp_path)
    try:
        source = LogSource("delivered")
        items = [Incoming(json.dumps(event(f"R{n}")).encode(), "kafka", 0, n) for n in range(3)] + [
            Incoming(b"not json", "kafka", 1, 5)
        ]
        core.ingestor.ingest_from_log(source, items)
        assert core.store.offsets("delivered") == {0: 3, 1: 6}
        assert core.store.log_marks("delivered") == {
            0: log_mark(items[2].raw),  # type: ignore[arg-type]
            1: log_mark(b"not json"),
        }, "an unusable event is a record of the log too"
        core.ingestor.ingest_from_log(source, [Incoming(b"", "kafka", 1, 6, value_unknown=True)])
        assert core.store.log_marks("delivered") == {0: log_mark(items[2].raw)}  # type: ignore[arg-type]
        rewind(core.store, "delivered", 0, 0)
        assert core.store.log_marks("delivered") == {}, "a rewound partition is not checked"
        assert core.store.offsets("delivered") == {0: 0, 1: 7}
    finally:
        core.close()


def within(offset: int, bounds: tuple[int, int] | None, rewind: object = None) -> int:
    bound = type("Bound", (SeekingConsumer,), {"rewind": rewind})
    return resumed_at(TOPIC_0, offset, bounds, bound.__new__(bound)._replaced)


def test_a_stored_offset_within_the_log_is_kept() -> None:
    assert within(4, (2, 9)) == 4
    assert within(9, (2, 9)) == 9, "at the end: nothing new yet"
    assert within(4, None) == 4, "the broker could not say: as before"


def test_a_stored_offset_past_the_end_stops_or_rewinds() -> None:
    with pytest.raises(OffsetsBeyondEnd, match="up to offset 12, but the partition ends at 9"):
        within(12, (0, 9))
    rewound: list[tuple[str, int, int]] = []
    assert within(12, (0, 9), staticmethod(lambda *a: rewound.append(a))) == 0
    assert rewound == [("delivered", 0, 0)]


def test_events_deleted_before_they_were_read_are_said(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="accrochage.kafka")
    assert within(3, (7, 20)) == 7
    (said,) = [r.getMessage() for r in caplog.records]
    assert "offsets 3 to 6 were deleted by the topic's retention" in said


@pytest.mark.kafka
async def test_a_worker_whose_writer_process_dies_stops_at_once(
    kafka_broker: KafkaEndpoint, tmp_path: Path, workers: list[Worker]
) -> None:
    """The OOM killer picks the largest process: the writer. The worker found out only at
    its next event, and looked alive meanwhile (a quiet night: hours)."""
    config = await with_topics(kafka_broker, tmp_path / "worker")
    await produce(config.bootstrap, config.topic, [(0, good(n), []) for n in range(2)])
    worker = Worker(config, tmp_path / "worker.log")
    workers.append(worker)
    await until(lambda: "validates and stores the events" in worker.text(), worker, "writer")
    await until(lambda: stored_offsets(config.state, config.topic).get(0) == 2, worker, "2")
    said = re.search(r"the writer process \(pid (\d+)\)", worker.text())
    assert said, worker.tail()
    os.kill(int(said.group(1)), signal.SIGKILL)
    await asyncio.to_thread(worker.proc.wait, RUN_TIMEOUT)
    assert worker.proc.returncode == EXIT_UNEXPECTED, worker.tail()
    assert "the writer process ended (exit code -9: killed by SIGKILL): stopping" in worker.text()
