"""A service being stopped does not wait for a command that holds the state.

A Kafka worker's group waits for the state as long as another process holds it
(`test_write_lock.py`). A SIGTERM meanwhile waited two minutes for that group before the writer
was told to stop, then up to `state.lock_wait` more. The stop now gives the wait up at once;
the group's events stay in the log. And once a log's group is not stored, no later group of
that log is: its offsets would skip the events of the one not stored.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from accrochage.api.protocol import ApiRunner
from accrochage.errors import StoreBusyError
from accrochage.models.deadline import FixedClock
from accrochage.runtimes.embedded import build_service
from accrochage.state.sqlite import SqliteStore
from accrochage.streams.ingest import Ingestor
from accrochage.streams.log_source import LogSource
from accrochage.streams.writer import WriterService
from tests.test_decoding import NOW, registry
from tests.test_tracker import event, ingest, make_core, rows
from tests.test_write_lock import (
    BOUND,
    held,
    log_group,
    read_only,
    release,
    stored_records,
    until,
)

LONG_WAIT = 600.0
"""Longer than any test runs: a wait that ends is one that was given up, not one that ran out."""


@pytest.fixture()
def patient_store(tmp_path: Path) -> SqliteStore:
    opened = SqliteStore(tmp_path / "state.db", lock_wait_seconds=LONG_WAIT)
    yield opened  # type: ignore[misc]
    opened.close()


def test_a_write_waiting_for_another_process_gives_up_when_waits_are_stopped(
    patient_store: SqliteStore,
) -> None:
    outcome: list[BaseException | None] = []

    def write() -> None:
        try:
            with patient_store.transaction():
                pass
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    with held(patient_store.path) as holder:
        writing = threading.Thread(target=write)
        writing.start()
        until(lambda: holder_waited_on(patient_store))
        patient_store.stop_waiting()
        writing.join(BOUND)
        assert not writing.is_alive(), "the write still waits for the holder"
        assert len(outcome) == 1 and isinstance(outcome[0], StoreBusyError)
        with pytest.raises(StoreBusyError), patient_store.transaction():  # nor do later writes
            pass
        release(holder)
    with patient_store.transaction() as tx:  # a free state is still written
        tx.save_offsets("topic", {0: 1})
    assert read_only(patient_store, "SELECT next_offset FROM input_offsets") == [1]


def holder_waited_on(store: SqliteStore) -> bool:
    """A writer of this process waits for the lock (a thread waiting on the holder)."""
    return any(t.name == "write-lock-wait" for t in threading.enumerate())


def test_an_abandoned_wait_fails_its_group_and_every_later_group_of_its_log(
    patient_store: SqliteStore,
) -> None:
    service = WriterService(Ingestor(patient_store, registry(), FixedClock(NOW)))
    source = LogSource("topic")
    try:
        with held(patient_store.path) as holder:
            waiting = service.submit(log_group(5), source)
            until(lambda: holder_waited_on(patient_store))
            service.abandon_waits()
            with pytest.raises(StoreBusyError):
                waiting.result(BOUND)
            release(holder)
        # The state is free now; stored, this group would move the partition's offset past
        # the five events above, which nothing would ever read again.
        later = service.submit(log_group(8)[5:], source)
        with pytest.raises(RuntimeError, match="an earlier group of this log was not stored"):
            later.result(BOUND)
        request = service.submit(log_group(1))  # not from the log: stored as before
        assert [r.outcome for r in request.result(BOUND)] == ["created"]
    finally:
        service.stop(BOUND)
    assert stored_records(patient_store) == 1
    assert read_only(patient_store, "SELECT count(*) FROM input_offsets") == [0]


def test_a_log_s_group_gives_up_when_its_store_stops_waiting(
    patient_store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    """The stop gives the store's waits up (for the batch timer) before the writer is told:
    a Kafka group sharing that store (`worker --no-separate-writer`) retried at once, again
    and again, 2,000 warnings a second, until the writer was stopped."""
    service = WriterService(Ingestor(patient_store, registry(), FixedClock(NOW)))
    try:
        with held(patient_store.path) as holder:
            waiting = service.submit(log_group(5), LogSource("topic"))
            until(lambda: holder_waited_on(patient_store))
            patient_store.stop_waiting()
            with pytest.raises(StoreBusyError):
                waiting.result(BOUND)
            release(holder)
    finally:
        service.stop(BOUND)
    said = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(said) < 10, f"{len(said)} warnings: the group retried without waiting"
    assert stored_records(patient_store) == 0


async def test_a_service_stop_does_not_wait_for_its_batch_timer_behind_another_writer(
    tmp_path: Path,
) -> None:
    """The batch timer waiting for the state another process holds kept the stop waiting
    up to `state.lock_wait` (seen on a worker: 22 s between the stop and the exit)."""
    core, _ = make_core(
        tmp_path,
        batching={"tick": "1s", "max_delay": "1s"},
        state={"lock_wait": f"{int(LONG_WAIT)}s"},
    )
    try:
        ingest(core, event("AW-1"))
        runner = ApiRunner(build_service(core, timer=True))
        await runner.setup()
        with held(core.settings.paths.state) as holder:
            await asyncio.to_thread(until, lambda: holder_waited_on(core.store))
            await asyncio.wait_for(runner.cleanup(), timeout=BOUND)
            release(holder)
    finally:
        core.close()
    statuses = rows(core, "SELECT status FROM records WHERE record_id = 'AW-1'")
    assert statuses == [{"status": "pending"}], "nothing was cut under the holder"
