"""The worker's group commit (`Pending`) when faust cancels it: a graceful stop, not a failure.

faust cancels its agents and timers on SIGTERM. When that lands while a group is being stored
in the writer thread, the transaction cannot be interrupted: the worker must let it end and
stop normally, not report "cannot store" and leave by the hard exit of an unexpected failure
(EXIT_UNEXPECTED, possibly in the middle of the transaction). A failure of the store itself
must still stop the process hard. No broker needed.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from concurrent import futures
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from accrochage.app_writers import build_writer_parts
from accrochage.errors import StoreError
from accrochage.runtimes.kafka import pending as pending_module
from accrochage.runtimes.kafka.pending import EXIT_UNEXPECTED, GROUP_BYTES, Pending
from accrochage.streams.incoming import Incoming
from accrochage.streams.log_source import LogSource
from accrochage.streams.writer import WriterService
from accrochage.streams.writer_process import InProcessWriter, ProcessWriter
from tests.factories import delivered_event
from tests.test_tracker import write_config


class HardExit(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class SlowIngestor:
    """Stands for `Ingestor.ingest_from_log`: a transaction that takes a while, or fails."""

    def __init__(self, seconds: float, fail: bool = False, gated: bool = False) -> None:
        self.seconds = seconds
        self.fail = fail
        self.gate = threading.Event()
        """Held closed (`gated`): the transaction lasts until the test opens it."""
        if not gated:
            self.gate.set()
        self.started = threading.Event()
        self.finished = threading.Event()
        self.groups: list[int] = []
        self.store = SimpleNamespace(stop_waiting=lambda: None)
        """The store the writer tells to stop waiting at a stop: its writes never wait."""

    def ingest_from_log(self, source: LogSource, items: list[Any]) -> list[Any]:
        self.started.set()
        assert self.gate.wait(120), "the test never let the transaction end"
        time.sleep(self.seconds)
        if self.fail:
            raise StoreError("disk full")  # what a real full disk raises
        self.groups.append(len(items))
        self.finished.set()
        return []


def _pending(ingestor: SlowIngestor, monkeypatch: pytest.MonkeyPatch) -> Pending:
    def hard_exit(code: int) -> None:
        raise HardExit(code)

    monkeypatch.setattr(pending_module.os, "_exit", hard_exit)
    monkeypatch.setattr(pending_module.logging, "shutdown", lambda: None)
    service = WriterService(ingestor)  # type: ignore[arg-type]
    pending = Pending(InProcessWriter(service, LogSource("topic", "rejected")))
    message = SimpleNamespace(value=b"{}", topic="topic", partition=0, offset=7, key=b"k")
    pending.add(message)
    return pending


async def test_a_stop_while_a_group_is_stored_waits_for_it_and_is_no_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ingestor = SlowIngestor(0.5)
    pending = _pending(ingestor, monkeypatch)
    await pending.commit()  # hands the group to the writer thread and returns
    task = asyncio.create_task(pending.drain())
    assert await asyncio.to_thread(ingestor.started.wait, 60)
    task.cancel()  # what faust does to its agents and timers on SIGTERM
    with pytest.raises(asyncio.CancelledError):
        await task
    assert ingestor.finished.is_set(), "the commit returned while its transaction still ran"
    assert ingestor.groups == [1]
    pending.writer.shutdown(wait=True)


async def test_a_failing_store_still_stops_the_process_hard(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ingestor = SlowIngestor(0.05, fail=True)
    pending = _pending(ingestor, monkeypatch)
    await pending.commit()
    with pytest.raises(HardExit) as exited:
        await pending.drain()
    assert exited.value.code == EXIT_UNEXPECTED
    pending.writer.shutdown(wait=True)


async def test_the_next_group_accumulates_while_one_is_stored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ingestor = SlowIngestor(0, gated=True)
    pending = _pending(ingestor, monkeypatch)
    await pending.commit()  # returns while the transaction is held open
    assert await asyncio.to_thread(ingestor.started.wait, 60)
    for offset in (8, 9):
        pending.add(
            SimpleNamespace(value=b"{}", topic="topic", partition=0, offset=offset, key=b"k")
        )
    assert not ingestor.finished.is_set()
    ingestor.gate.set()
    await pending.commit()  # waits for the first group, then hands over the second
    await pending.drain()
    assert ingestor.groups == [1, 2]
    assert pending.committed == 3
    pending.writer.shutdown(wait=True)


async def test_a_stop_does_not_cancel_a_group_handed_to_the_writer_process(
    tmp_path: Path,
) -> None:
    """wrap_future() passes a waiter's cancellation on to the future it waits for: the group
    must still be stored and its future resolved (a cancelled one made the collector fail)."""
    config = write_config(tmp_path)
    writer = ProcessWriter(partial(build_writer_parts, config))
    try:
        event = json.dumps(delivered_event()).encode()
        stored = writer.submit([Incoming(event, "kafka:t:0:0", 0, 0, b"pix")])
        waiter = asyncio.ensure_future(asyncio.wrap_future(stored))
        await asyncio.sleep(0)
        waiter.cancel()  # faust cancelling the agent on SIGTERM
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert not stored.cancelled()
        assert await asyncio.to_thread(stored.result, 60) == 1
    finally:
        writer.shutdown(wait=True)
    conn = sqlite3.connect(tmp_path / "var" / "state.db")
    try:
        offsets = conn.execute("SELECT partition, next_offset FROM input_offsets").fetchall()
        records = conn.execute("SELECT count(*) FROM records").fetchone()[0]
    finally:
        conn.close()
    assert (offsets, records) == ([(0, 1)], 1)


class Groups:
    """A writer that keeps the groups it is given, each stored at once."""

    def __init__(self) -> None:
        self.groups: list[list[int]] = []

    def submit(self, items: list[Any]) -> Any:
        self.groups.append([len(item.raw) for item in items])
        done: futures.Future[Any] = futures.Future()
        done.set_result(None)
        return done


async def test_groups_are_bounded_by_bytes_too() -> None:
    """A backlog of 1 MB events held four groups of a thousand in flight: 2.5 GB for 600 of
    them. A group weighs `GROUP_BYTES` at most, or holds one event heavier than that."""
    writer = Groups()
    pending = Pending(writer)  # type: ignore[arg-type]
    sizes = [1_000_000] * 9 + [GROUP_BYTES + 1] + [100] * 3
    records = [
        SimpleNamespace(value=b"x" * size, topic="t", partition=0, offset=n, key=None)
        for n, size in enumerate(sizes)
    ]
    await pending.receive(records)
    await pending.commit()
    assert [len(group) for group in writer.groups] == [4, 4, 1, 1, 3]
    assert all(sum(g) <= GROUP_BYTES or len(g) == 1 for g in writer.groups)
    assert [size for group in writer.groups for size in group] == sizes, "in order, all"
    assert pending.items == [] and pending.bytes == 0
