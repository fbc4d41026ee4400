"""Each write transaction tells the store's observer how long it waited for the state and how
long it held it (`Store.observe_writes`): what `/metrics` serves as
`accrochage_write_lock_wait_seconds` and `accrochage_write_lock_held_seconds`."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from functools import partial
from pathlib import Path

import pytest

from accrochage.app_writers import build_writer_parts
from accrochage.errors import StoreBusyError
from accrochage.runtimes.embedded import build_service
from accrochage.settings import load_settings
from accrochage.state.base import WriteTime
from accrochage.state.sqlite import SqliteStore
from accrochage.streams.incoming import Incoming
from accrochage.streams.metrics import Metrics
from accrochage.streams.write_times import WriteTimes
from accrochage.streams.writer_process import ProcessWriter
from tests.test_http_writer_process import post, serving
from tests.test_metrics import Samples, parse, scrape, total
from tests.test_tracker import event, ingest, make_core, write_config
from tests.test_write_lock import held, lock_of, until

HELD_FOR = 0.4
"""How long another process keeps the state in these tests (a lower bound to check, never an
upper one: the machine's speed moves the rest)."""


def a_writer_waits(lock: Path) -> bool:
    """Whether a process waits for the `flock` on `lock` (a waiter's line in `/proc/locks`:
    `N: -> FLOCK ADVISORY WRITE pid maj:min:inode ...`)."""
    inode = str(lock.stat().st_ino)
    for line in Path("/proc/locks").read_text(encoding="ascii").splitlines():
        fields = line.split()
        waiter = len(fields) > 6 and fields[1:3] == ["->", "FLOCK"]
        if waiter and fields[6].rpartition(":")[2] == inode:
            return True
    return False


@contextmanager
def held_for(state: Path, seconds: float = HELD_FOR) -> Iterator[None]:
    """Another process holds `state`'s write lock; once a writer waits for it, it lets go
    `seconds` later: that writer waited `seconds` at least, whatever the machine's speed."""
    with held(state) as holder:
        assert holder.stdin is not None
        stdin = holder.stdin

        def let_go() -> None:
            try:
                until(lambda: a_writer_waits(lock_of(state)))
                time.sleep(seconds)
            finally:
                stdin.close()

        letting_go = threading.Thread(target=let_go, name="let-go")
        letting_go.start()
        try:
            yield
        finally:
            letting_go.join()


def observed(store: SqliteStore) -> list[WriteTime]:
    told: list[WriteTime] = []
    store.observe_writes(told.append)
    return told


def test_a_write_is_told_the_wait_another_process_caused_and_how_long_it_held_the_state(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state.db"
    store = SqliteStore(state)
    told = observed(store)
    try:
        with store.transaction():
            pass
        with held_for(state), store.transaction():
            time.sleep(0.1)
        assert len(told) == 2
        alone, behind = told
        assert alone.held is not None
        assert behind.waited >= HELD_FOR
        assert behind.held is not None and behind.held >= 0.1
    finally:
        store.close()


def test_a_write_that_gives_up_waiting_is_told_it_never_held_the_state(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    SqliteStore(state).close()
    store = SqliteStore(state, lock_wait_seconds=HELD_FOR)
    told = observed(store)
    try:
        with held(state), pytest.raises(StoreBusyError), store.transaction():
            pytest.fail("the state was held by another process")
        assert len(told) == 1
        assert told[0].held is None and told[0].waited >= 0.9 * HELD_FOR  # its bound
    finally:
        store.close()


def test_a_write_that_fails_is_told_too_and_no_observer_means_nothing_is_told(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "state.db")
    told = observed(store)
    try:
        with pytest.raises(RuntimeError), store.transaction():
            raise RuntimeError("a write that fails half way")
        assert len(told) == 1 and told[0].held is not None
        store.observe_writes(None)
        with store.transaction():
            pass
        assert len(told) == 1
    finally:
        store.close()


def histogram(samples: Samples, name: str, process: str) -> tuple[float, float]:
    """The count and the sum of a write lock's histogram for `process`."""
    return (
        total(samples, f"{name}_count", process=process),
        total(samples, f"{name}_sum", process=process),
    )


WAIT = "accrochage_write_lock_wait_seconds"
HELD = "accrochage_write_lock_held_seconds"


async def test_the_http_writer_process_s_wait_and_the_service_s_writes_are_served(
    tmp_path: Path,
) -> None:
    """An event stored while a command holds the state: `/metrics` shows the writer process's
    wait (its times travel with its answer), and the batch cut of the serving process."""
    core, _ = make_core(tmp_path)
    state = core.settings.paths.state
    try:
        async with serving(build_service(core, timer=False, separate_writer=True)) as client:
            status, _ = await post(client, event("PX-1"))  # the writer process is up
            assert status == 201
            with held_for(state):
                status, body = await post(client, event("PX-2"))
            assert status == 201, body
            core.flusher.flush(force=True)
            async with client.get("/metrics") as response:
                assert response.status == 200
                samples = parse(await response.text())
    finally:
        core.close()
    waits, waited = histogram(samples, WAIT, "writer")
    assert waits >= 2 and waited >= HELD_FOR
    holds, _ = histogram(samples, HELD, "writer")
    assert holds == waits  # every write of the writer process held the state in the end
    over = total(samples, f"{WAIT}_bucket", process="writer", le="+Inf") - total(
        samples, f"{WAIT}_bucket", process="writer", le="0.25"
    )
    assert over >= 1  # the wait behind the command, in its bucket
    cuts, _ = histogram(samples, HELD, "service")
    assert cuts >= 1  # the flush's transactions, in the serving process
    for labels, _ in samples[f"{WAIT}_bucket"]:
        assert set(labels) == {"process", "le"}


async def test_the_kafka_writer_process_s_wait_is_counted_where_metrics_are_served(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path)
    state = load_settings(config).paths.state
    SqliteStore(state).close()  # a state that exists: the writer process does not migrate it
    counted = Metrics()
    writer = ProcessWriter(partial(build_writer_parts, config), metrics=counted)
    try:
        for offset, record in enumerate(("PX-1", "PX-2")):
            raw = json.dumps(event(record)).encode()
            source = f"kafka:t:0:{offset}"
            # The first is stored alone (the writer process is up), the second behind a command.
            with held_for(state) if offset else nullcontext():
                stored = writer.submit([Incoming(raw, source, 0, offset, b"pix")])
                assert await asyncio.to_thread(stored.result, 60) == 1
    finally:
        writer.shutdown(wait=True)
    samples = scrape(counted)
    waits, waited = histogram(samples, WAIT, "writer")
    assert waits >= 2 and waited >= HELD_FOR
    assert histogram(samples, WAIT, "service") == (0, 0)  # nothing of the serving process's


def test_a_writer_process_keeps_its_times_within_a_bound_and_says_what_it_left_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    times = WriteTimes(kept=2)
    for waited in (0.1, 0.2, 0.3):
        times.add(WriteTime(waited, 0.01))
    with caplog.at_level(logging.WARNING, logger="accrochage.writer"):
        assert times.ship() == [(0.1, 0.01), (0.2, 0.01)]
        assert times.ship() == []
    said = [r.getMessage() for r in caplog.records]
    assert said == ["1 write-lock time(s) were not counted: no answer took them"]


def test_the_state_s_write_ahead_log_size_is_served_as_it_is_on_the_disk(tmp_path: Path) -> None:
    core, _ = make_core(tmp_path)
    wal = core.settings.paths.state.with_name(core.settings.paths.state.name + "-wal")
    try:
        ingest(core, event("PX-1"), event("PX-2"))
        size = wal.stat().st_size
        assert size > 0
        assert scrape(core.metrics)["accrochage_state_wal_bytes"] == [({}, float(size))]
    finally:
        core.close()
    assert not wal.exists()  # the last connection copied it back and took it away
    assert scrape(core.metrics)["accrochage_state_wal_bytes"] == [({}, 0.0)]
