"""The worker takes records a fetch at a time (`draining.py`) and stores them in groups
through a writer process that decodes them in its own pool (`app_writers.build_writer_parts`). No
broker needed: fetches are made of aiokafka-like records.

- a fetch is handed over whole, in order, nothing dropped; the loop stops with the consumer;
- a fetch cut into several groups, a bad event among them: the others are stored, the bad
  one is kept as unusable and queued for the rejected topic, and each partition's next
  offset is stored with the events (the same transactions);
- the same fetch again (a redelivery after a crash or a seek back) changes nothing;
- a group whose decode process died is decoded by the writer itself, still stored;
- the straggler timer hands a partial group over only when the writer has room: it never
  waits (a timer that waits overlaps itself and holds the loop's lock).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from accrochage.app_writers import build_writer_parts
from accrochage.runtimes.kafka import pending as pending_module
from accrochage.runtimes.kafka.draining import drain
from accrochage.runtimes.kafka.pending import Pending
from accrochage.streams.decoding import DecodeFailed, DecodePool
from accrochage.streams.writer_main import WriterParts
from accrochage.streams.writer_process import ProcessWriter
from tests.factories import delivered_event
from tests.kafka.test_worker_pending import SlowIngestor, _pending
from tests.test_tracker import write_config

TOPIC = "certifications"


def record(partition: int, offset: int, value: bytes | None) -> SimpleNamespace:
    return SimpleNamespace(topic=TOPIC, partition=partition, offset=offset, key=b"pix", value=value)


def good(n: int) -> bytes:
    event = delivered_event(
        record_id=f"PX-2026-{n:06d}", event_id=f"6f1c2d3e-0a4b-4c5d-8e9f-{n:012d}"
    )
    return json.dumps(event).encode()


class FakeConsumer:
    """What `drain` reads of faust's consumer: its fetches, its stop flags, its diag."""

    def __init__(self, fetches: list[dict[str, list[Any]]]) -> None:
        self.fetches = fetches
        self._stopped = asyncio.Event()
        self.diag = SimpleNamespace(set_flag=lambda flag: None, unset_flag=lambda flag: None)
        self.consumer_stopped_errors: tuple[type[BaseException], ...] = ()
        self.transport = SimpleNamespace(app=SimpleNamespace(should_stop=False))

    async def _wait_next_records(self, timeout: float) -> tuple[Any, None]:
        if not self.fetches:
            self._stopped.set()
            return {}, None
        return self.fetches.pop(0), None


async def test_each_fetch_is_handed_over_whole_and_in_order() -> None:
    first = {"tp0": [record(0, 5, b"a"), record(0, 6, b"b")], "tp1": [record(1, 0, b"c")]}
    second = {"tp0": [record(0, 7, b"d")]}
    consumer = FakeConsumer([first, {}, second])
    fetcher = SimpleNamespace(_stopped=asyncio.Event())
    received: list[list[tuple[int, int]]] = []

    async def receive(records: Any) -> None:
        received.append([(r.partition, r.offset) for r in records])

    await asyncio.wait_for(drain(consumer, fetcher, receive), 10)
    assert received == [[(0, 5), (0, 6), (1, 0)], [(0, 7)]]


async def store_fetch(parts: Callable[[], WriterParts], fetch: list[Any]) -> None:
    """`fetch` through the worker's `Pending` to a writer process built by `parts`, every
    group stored, then the writer stopped."""
    writer = ProcessWriter(parts, daemon=False)
    pending = Pending(writer)
    try:
        await pending.receive(fetch)
        await pending.commit()
        await pending.drain()
    finally:
        await asyncio.to_thread(writer.shutdown, True)


def _stored(state: Path) -> dict[str, Any]:
    conn = sqlite3.connect(state)
    try:
        return {
            "records": conn.execute("SELECT count(*) FROM records").fetchone()[0],
            "unusable": conn.execute("SELECT source FROM unusable").fetchall(),
            "dead_letters": conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0],
            "offsets": dict(
                conn.execute("SELECT partition, next_offset FROM input_offsets").fetchall()
            ),
        }
    finally:
        conn.close()


async def test_a_fetch_with_a_bad_event_stores_the_others_with_their_offsets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pending_module, "GROUP_SIZE", 3)  # the fetch spans several groups
    config = write_config(tmp_path)
    fetch = [record(0, o, b"not JSON {" if o == 12 else good(o)) for o in range(10, 16)]
    fetch += [record(1, o, good(100 + o)) for o in range(4)]
    state = tmp_path / "var" / "state.db"
    for _ in range(2):  # the second time: a redelivery, which must change nothing
        await store_fetch(partial(build_writer_parts, config, decode=True), fetch)
        stored = _stored(state)
        assert stored["records"] == 5 + 4
        assert stored["unusable"] == [(f"kafka:{TOPIC}:0:12",)]
        assert stored["dead_letters"] == 1
        assert stored["offsets"] == {0: 16, 1: 4}


class DeadPool:
    """A decode pool whose processes keep dying."""

    def submit(self, items: Any) -> Any:
        raise DecodeFailed("a decode process ended before answering")

    def close(self) -> None:
        pass


def _writer_with_a_dead_pool(config: Path) -> WriterParts:
    parts = build_writer_parts(config, decode=True)
    return replace(parts, decoder=cast(DecodePool, DeadPool()))


async def test_a_group_whose_decoding_failed_is_decoded_by_the_writer(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    await store_fetch(
        partial(_writer_with_a_dead_pool, config), [record(0, o, good(o)) for o in range(3)]
    )
    stored = _stored(tmp_path / "var" / "state.db")
    assert (stored["records"], stored["offsets"]) == (3, {0: 3})


async def test_the_straggler_timer_never_waits_for_a_busy_writer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The writer's first group lasts until the test lets it end: a group that took 0.3 s
    # could be over before the timer ran on a loaded machine, which then handed over.
    ingestor = SlowIngestor(0, gated=True)
    pending = _pending(ingestor, monkeypatch)  # one record pending
    for _ in range(pending_module.MAX_IN_FLIGHT):
        pending.add(record(0, 7, b"{}"))
        await pending.commit()
    pending.add(record(0, 8, b"{}"))
    # Returns at once, the writer full: a timer that waited would wait for the gate.
    try:
        await asyncio.wait_for(pending.commit_stragglers(), 30)
        assert len(pending.items) == 1
    finally:
        ingestor.gate.set()
    await pending.drain()
    await pending.commit_stragglers()  # the writer has room again: handed over
    await pending.drain()
    assert pending.items == []
    assert sum(ingestor.groups) == pending_module.MAX_IN_FLIGHT + 2
    pending.writer.shutdown(wait=True)
