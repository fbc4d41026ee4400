"""The cyclic garbage collector in the product's processes (`accrochage/heap.py`): groups of
events freed by reference counting, and the young threshold of every process that streams."""

from __future__ import annotations

import gc
import json
import os
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from accrochage import cli, heap
from accrochage.api.writer_link import ProcessLink
from accrochage.models.deadline import FixedClock
from accrochage.processes import helper_context
from accrochage.refdata.memory import ReferenceHolder
from accrochage.sinks.xml_outbox import _start_render_process
from accrochage.state.sqlite import SqliteStore
from accrochage.streams.incoming import Incoming, IngestResult
from accrochage.streams.writer_main import WriterParts
from accrochage.streams.writer_process import ProcessWriter
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


class _ThresholdService:
    """Stands in for the writer service: each group answered with the young threshold the
    writer process collects at once it has built its service (the moment `settle` runs)."""

    storage_error = None
    write_times = None

    def _answered(self, items: list[Incoming]) -> Future[list[IngestResult]]:
        done: Future[list[IngestResult]] = Future()
        threshold = str(_young_threshold())
        done.set_result([IngestResult(threshold, "stored", None) for _ in items])
        return done

    def submit(self, items: list[Incoming], source: Any) -> Future[list[IngestResult]]:
        """The Kafka writer answers with counts only: the threshold goes to a file."""
        Path(source).write_text(str(_young_threshold()))
        return self._answered(items)

    def store_now(self, groups: list[list[Incoming]]) -> list[Future[list[IngestResult]]]:
        return [self._answered(group) for group in groups]

    def stop(self) -> None:
        pass


def _kafka_writer_parts(out: Path) -> WriterParts:
    return WriterParts(_ThresholdService(), str(out), lambda: None)  # type: ignore[arg-type]


def _http_writer_parts() -> tuple[Any, Any]:
    return _ThresholdService(), lambda: None


def test_the_kafka_writer_process_collects_at_the_settled_threshold(tmp_path: Path) -> None:
    out = tmp_path / "threshold"
    writer = ProcessWriter(partial(_kafka_writer_parts, out))
    try:
        assert writer.submit([Incoming(b"{}")]).result(timeout=120) == 1
    finally:
        writer.shutdown(wait=True)
    assert out.read_text() == str(heap.YOUNG_THRESHOLD)


async def test_the_http_writer_process_collects_at_the_settled_threshold() -> None:
    link = ProcessLink(_http_writer_parts)
    await link.start()
    try:
        (result,) = await link.store([Incoming(b"{}")])
    finally:
        await link.close()
    assert result.record_id == str(heap.YOUNG_THRESHOLD)


class Cycle:
    def __init__(self) -> None:
        self.me = self


def test_no_collection_runs_while_the_state_s_write_lock_is_held(tmp_path: Path) -> None:
    """A full collection of a process holding a large batch's plan takes 40-80 ms; inside the
    write lock every other process's writer waited for it. A write transaction allocating
    far more than the young threshold runs no collection; the one that fell due runs once the
    lock is free, and frees the cyclic garbage the transaction left."""
    store = SqliteStore(tmp_path / "state.db")
    starts: list[bool] = []

    def seen(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            starts.append(store.write_holder() is not None)

    threshold = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    gc.callbacks.append(seen)
    try:
        with store.transaction() as tx:
            for _ in range(20_000):
                Cycle()
            tx.save_offsets("heap", {0: 1})
        assert not any(starts)
        kept = [[] for _ in range(1_000)]
    finally:
        gc.callbacks.remove(seen)
        gc.set_threshold(*threshold)
        store.close()
    assert kept and starts and not any(starts)
    assert not any(isinstance(o, Cycle) for o in gc.get_objects())
    assert gc.isenabled()


def test_collections_deferred_by_two_threads_resume_when_both_are_out() -> None:
    first_in, second_out = threading.Event(), threading.Event()
    inside: list[bool] = []

    def other() -> None:
        with heap.collections_deferred():
            first_in.wait(10)
        second_out.set()

    thread = threading.Thread(target=other)
    with heap.collections_deferred():
        thread.start()
        first_in.set()
        second_out.wait(10)
        inside.append(gc.isenabled())
    thread.join(10)
    assert inside == [False]
    assert gc.isenabled()
