"""The cyclic garbage collector in the product's processes (`accrochage/heap.py`): groups of
events freed by reference counting, and the young threshold of every process that streams."""

from __future__ import annotations

import gc
import json
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from accrochage import cli, heap
from accrochage.models.deadline import FixedClock
from accrochage.processes import helper_context
from accrochage.refdata.memory import ReferenceHolder
from accrochage.sinks.xml_outbox import _start_render_process
from accrochage.state.sqlite import SqliteStore
from accrochage.streams.ingest import Incoming
from tests.factories import delivered_event
from tests.test_decoding import NOW, pool_for

GROUP = 1_000


@pytest.fixture()
def collector_off() -> Iterator[None]:
    """No automatic collection while a test counts what only the collector would free."""
    threshold = gc.get_threshold()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.set_threshold(*threshold)


def test_a_group_decoded_in_decode_processes_is_freed_without_the_collector(
    tmp_path: Path, collector_off: None
) -> None:
    store = SqliteStore(tmp_path / "state.db")
    pool = pool_for(store, ReferenceHolder(store.refdata()), FixedClock(NOW))
    raw = json.dumps(delivered_event()).encode()
    try:
        pool.decode([Incoming(raw)])  # the processes started: their objects are not counted
        gc.collect()
        decoded = pool.decode([Incoming(raw) for _ in range(GROUP)])
        assert all(item.decoded is not None for item in decoded)
        del decoded
        # A reference cycle through the pool's futures kept each group (events, decoded
        # forms, passages: several objects an event) for the collector to find.
        assert gc.collect() < GROUP
    finally:
        pool.close()
        store.close()


def _young_threshold() -> int:
    return gc.get_threshold()[0]


def test_a_render_process_collects_young_objects_at_the_settled_threshold() -> None:
    with ProcessPoolExecutor(
        1,
        mp_context=helper_context(),
        initializer=_start_render_process,
        initargs=(os.getpid(),),
    ) as pool:
        assert pool.submit(_young_threshold).result(timeout=120) == heap.YOUNG_THRESHOLD


def test_a_decode_process_collects_young_objects_at_the_settled_threshold(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "state.db")
    pool = pool_for(store, ReferenceHolder(store.refdata()), FixedClock(NOW))
    try:
        running = pool._running_pool()
        assert running.submit(_young_threshold).result(timeout=120) == heap.YOUNG_THRESHOLD
    finally:
        pool.close()
        store.close()


def test_the_command_settles_its_heap_before_it_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    monkeypatch.setattr(cli, "main", lambda: seen.append(_young_threshold()))
    threshold = gc.get_threshold()
    try:
        cli.entry()
    finally:
        gc.set_threshold(*threshold)
    assert seen == [heap.YOUNG_THRESHOLD] != [threshold[0]]
