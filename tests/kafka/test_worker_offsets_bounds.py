"""A stored offset past a partition's end (its topic deleted and created again, a broker that
lost data): aiokafka went back to the log's start, and every new event below the old offset
was skipped as stored already, acknowledged by the broker and lost without a word. The worker
now stops saying why, or, started with `--reread-beyond-end`, reads the partition again."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path

import pytest
from faust.types import TP

from accrochage.runtimes.kafka.seeking import OffsetsBeyondEnd, SeekingConsumer
from tests.kafka.conftest import KafkaEndpoint
from tests.kafka.test_worker_batches import good
from tests.kafka.test_worker_unreadable import RUN_TIMEOUT, produce, until, with_topics
from tests.kafka.workers import Worker, query, stored_offsets

TOPIC_0 = TP("delivered", 0)


def records(state: Path) -> int:
    return int(query(state, "SELECT count(*) FROM records")[0][0])


@pytest.mark.kafka
async def test_a_stored_offset_past_the_end_stops_the_worker_until_told_to_reread(
    kafka_broker: KafkaEndpoint, tmp_path: Path, workers: list[Worker]
) -> None:
    config = await with_topics(kafka_broker, tmp_path / "worker")
    await produce(config.bootstrap, config.topic, [(0, good(n), []) for n in range(3)])
    first = Worker(config, tmp_path / "first.log")
    workers.append(first)
    await asyncio.to_thread(first.wait_for_log, "Worker ready", RUN_TIMEOUT)
    await until(lambda: records(config.state) == 3, first, "the first 3 events")
    assert first.stop() == 0, first.tail()
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

    reread = Worker(config, tmp_path / "reread.log", "--reread-beyond-end")
    workers.append(reread)
    await until(lambda: records(config.state) == 5, reread, "the 2 events produced since")
    await until(lambda: stored_offsets(config.state, config.topic).get(0) == 5, reread, "offset 5")
    assert "read again from its start, offset 0" in reread.text()
    assert reread.stop() == 0, reread.tail()


def within(offset: int, bounds: tuple[int, int] | None, rewind: object = None) -> int:
    consumer = type("Bound", (), {"rewind": rewind})()
    return SeekingConsumer._within(consumer, TOPIC_0, offset, bounds)  # type: ignore[arg-type]


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
