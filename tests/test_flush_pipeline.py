"""Flush cuts and writes at once: each batch goes to the sink as soon as its transaction
commits, and the XML outbox starts writing it in its processes before the next is cut."""

from __future__ import annotations

import os
import signal
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from functools import partial
from pathlib import Path
from typing import Any
from unittest.mock import Mock

import pytest

from accrochage.app import Core
from accrochage.errors import SchemaValidationError, StoreError
from accrochage.generate import GeneratedCertifier, generate_events
from accrochage.models.batch import FrozenBatch, ReleasedFile
from accrochage.models.vocabulary import BatchState
from accrochage.pool import HelperDied, HelperPool
from accrochage.processes import RENDERING
from accrochage.sinks import xml_outbox
from accrochage.sinks.base import Outcome
from accrochage.sinks.xml_outbox import RenderJob, XmlOutbox, release_batch
from accrochage.state.sqlite.reader import SqliteReader
from accrochage.streams import verify
from accrochage.streams.failed_retries import FIRST_WAIT, LONGEST_WAIT, FailedRetries
from accrochage.streams.flush_report import FlushReport
from tests.test_tracker import TODAY, event, ingest, make_core, rows

GENERATED = [GeneratedCertifier("pix", ("RS5875", "RNCP37873"))]
WAIT = 120.0
"""Seconds a test waits at most for a file a render process writes (a loaded machine)."""


def _events(count: int) -> list[dict[str, object]]:
    return list(generate_events(count, GENERATED, today=TODAY, seed=9))


def test_each_batch_reaches_the_sink_as_soon_as_it_is_cut(tmp_path: Path) -> None:
    core, _ = make_core(tmp_path, batching={"max_records": 40})
    steps: list[str] = []
    sink = core.flusher.sink
    original = sink.write_many

    def recording(
        batches: Iterable[FrozenBatch], *, passages: int = 0
    ) -> Iterator[tuple[FrozenBatch, Outcome]]:
        def received() -> Iterator[FrozenBatch]:
            for batch in batches:
                steps.append(f"sink {batch.batch_id}")
                yield batch

        yield from original(received(), passages=passages)

    sink.write_many = recording  # type: ignore[method-assign]
    try:
        assert all(r.accepted for r in ingest(core, *_events(150)))
        report = FlushReport(on_cut=lambda cut: steps.append(f"cut {cut.batch_id}"))
        core.flusher.flush(force=True, report=report)
    finally:
        core.close()
    assert report.ok and len(report.cut) == 4 and len(report.written) == 4
    expected = []
    for cut in report.cut:
        expected += [f"cut {cut.batch_id}", f"sink {cut.batch_id}"]
    assert steps == expected


def _two_batches_cut(core: Core) -> tuple[FrozenBatch, FrozenBatch]:
    """80 events cut into two batches of 40 (the core's `max_records`), not written yet."""
    assert all(r.accepted for r in ingest(core, *_events(80)))
    core.flusher.cut(FlushReport(), force=True)
    with core.store.reading() as reader:
        first, second = reader.batches_to_write()
    return first, second


def test_the_outbox_writes_a_batch_before_it_is_handed_the_next(tmp_path: Path) -> None:
    """The second batch is handed over only once the first one's file exists: an outbox that
    waited for every batch before writing would never see it (the wait is bounded)."""
    core, _ = make_core(tmp_path, batching={"max_records": 40, "render_processes": 1})
    try:
        first, second = _two_batches_cut(core)
        sink = core.flusher.sink
        assert isinstance(sink, XmlOutbox)
        first_file = sink.place(first.certifier.key, sink.file_name(first), BatchState.WRITTEN)

        def handed() -> Iterator[FrozenBatch]:
            yield first
            deadline = time.monotonic() + WAIT
            while not first_file.is_file():
                assert time.monotonic() < deadline, "the first batch was not written meanwhile"
                time.sleep(0.05)
            yield second

        outcomes = list(sink.write_many(handed(), passages=80))
    finally:
        core.close()
    assert [batch.batch_id for batch, _ in outcomes] == [first.batch_id, second.batch_id]
    assert all(isinstance(outcome, ReleasedFile) for _, outcome in outcomes)


def test_a_flush_reads_no_byte_of_the_files_already_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each tick looks for missing files with a stat: hashing every released file (years of
    them) is `verify`'s job, not the batch timer's."""
    core, _ = make_core(tmp_path, batching={"max_records": 40})
    try:
        assert all(r.accepted for r in ingest(core, *_events(80)))
        assert len(core.flusher.flush(force=True).written) == 2

        def no_hashing(path: Path) -> str:
            raise AssertionError(f"flush read {path.name}")

        monkeypatch.setattr(verify, "sha256_of", no_hashing)
        assert all(r.accepted for r in ingest(core, *_events(120)[80:]))
        report = core.flusher.flush(force=True)
    finally:
        core.close()
    assert report.ok and len(report.written) == 1


def test_a_plan_reads_the_pending_records_without_the_write_lock(tmp_path: Path) -> None:
    """Planning reads every pending record (who is due, each certifier's members) and every
    record to withdraw: a reader does it, so that a writer never waits for it; only the
    supersede takes the lock (a SUPPRESSION due is cut in transactions of its own), whatever
    the backlog."""
    core, _ = make_core(tmp_path, batching={"max_records": 40})
    ingest(core, *_events(200))
    store = core.flusher.store
    original = store.transaction
    taken = 0

    def counted() -> Any:
        nonlocal taken
        taken += 1
        return original()

    store.transaction = counted  # type: ignore[method-assign]
    try:
        plan = core.flusher.plan(FlushReport(), force=True)
    finally:
        store.transaction = original  # type: ignore[method-assign]
        core.close()
    assert sum(len(group.members) for group in plan.groups) == 200
    assert taken == 1


def test_a_damaged_state_read_by_a_plan_is_a_storage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader meets damage as a transaction does: the storage error that says what to
    do, never SQLite's own exception (the command line prints the first, not the second)."""
    core, _ = make_core(tmp_path)
    ingest(core, *_events(10))

    def damaged(self: SqliteReader) -> None:
        raise sqlite3.DatabaseError("database disk image is malformed")

    monkeypatch.setattr(SqliteReader, "pending_stats", damaged)
    try:
        with pytest.raises(StoreError) as raised:
            core.flusher.plan(FlushReport(), force=True)
    finally:
        core.close()
    assert "refused an operation" in str(raised.value)


def _render_process_killed(job: RenderJob) -> ReleasedFile:
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable")


def _state_unreadable(job: RenderJob) -> ReleasedFile:
    raise StoreError("the state store refused an operation: database disk image is malformed")


@pytest.mark.parametrize(
    ("render", "raised", "said"),
    [
        (_render_process_killed, HelperDied, "try again"),
        (_state_unreadable, StoreError, "malformed"),
    ],
    ids=["killed", "state-unreadable"],
)
def test_a_render_failing_for_no_fault_of_its_batch_leaves_it_to_write_once(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    render: Callable[[RenderJob], ReleasedFile],
    raised: type[Exception],
    said: str,
) -> None:
    """A render process killed (the OOM killer), or one that cannot read the state, is no
    fault of the batch: the flush stops saying so, the batches stay to write (not failed:
    a failed one waits, as one failing for what it holds), and the next flush writes them,
    each once. The render pool of a service lives on: a broken one is replaced, or every
    later tick would fail."""
    core, _ = make_core(tmp_path, batching={"max_records": 40, "render_processes": 2})
    try:
        assert all(r.accepted for r in ingest(core, *_events(80)))
        monkeypatch.setattr(xml_outbox, "release_batch", render)
        with pytest.raises(raised, match=said):
            core.flusher.flush(force=True)
        with core.store.reading() as reader:
            assert len(reader.batches_to_write()) == 2
            assert reader.batches(state=BatchState.FAILED) == []
        monkeypatch.undo()
        report = core.flusher.flush(force=True)
    finally:
        core.close()
    assert report.ok and len(report.written) == 2 and not report.failed
    outbox = tmp_path / "var" / "outbox" / "pix"
    assert sorted(p.name for p in outbox.glob("*.xml")) == sorted(
        w.path.name for w in report.written
    )


def timed_retries(core: Core) -> list[float]:
    """The flusher's retries on a clock the test moves (`now[0]`, seconds)."""
    now = [0.0]
    core.flusher.retries = FailedRetries(seconds=lambda: now[0])
    return now


def test_a_folder_that_cannot_be_written_is_tried_again_at_the_next_flush(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An OSError (permissions, a full disk) may be fixed at any moment: no wait."""
    core, _ = make_core(tmp_path)
    timed_retries(core)  # the clock never moves
    denied = PermissionError(13, "Permission denied", "/srv/outbox/pix")
    monkeypatch.setattr(core.flusher.sink, "write", Mock(side_effect=denied))
    try:
        ingest(core, event("PD-1"))
        for flush in (partial(core.flusher.flush, force=True), core.flusher.flush):
            assert [f.certifier for f in flush().failed] == ["pix"]
        assert core.flusher.retries.waiting() == 0, "tried again at once"
        monkeypatch.undo()
        assert len(core.flusher.flush().written) == 1
    finally:
        core.close()


def _dies_once_another_is_answered(dying: str, job: RenderJob) -> ReleasedFile:
    """The render process of batch `dying` dies once another batch's answer came back."""
    if job.batch.batch_id != dying:
        return release_batch(job)
    deadline = time.monotonic() + WAIT
    while not (job.outbox.parent / "answered").exists():
        assert time.monotonic() < deadline, "the other batch was never answered"
        time.sleep(0.01)
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable")


def test_a_file_released_before_a_render_process_died_is_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first batch's process dies after the second one's file was released and
    answered: the first stays to write, the second is recorded as written, not rendered
    again."""
    core, _ = make_core(tmp_path, batching={"max_records": 40, "render_processes": 2})
    try:
        first, _ = _two_batches_cut(core)
        submit = HelperPool.submit

        def noting_answers(pool: HelperPool, fn: Any, *args: Any) -> Future[Any]:
            future = submit(pool, fn, *args)
            if args[0].batch.batch_id != first.batch_id:
                future.add_done_callback(lambda _: (tmp_path / "var" / "answered").touch())
            return future

        monkeypatch.setattr(HelperPool, "submit", noting_answers)
        killing = partial(_dies_once_another_is_answered, first.batch_id)
        monkeypatch.setattr(xml_outbox, "release_batch", killing)
        with pytest.raises(HelperDied):
            core.flusher.flush(force=True)
        with core.store.reading() as reader:
            assert [b.batch_id for b in reader.batches_to_write()] == [first.batch_id]
        monkeypatch.undo()
        report = core.flusher.flush(force=True)
    finally:
        core.close()
    assert report.ok and [w.batch_id for w in report.written] == [first.batch_id]


def test_a_batch_failing_for_what_it_holds_is_tried_again_later_and_after_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch timer wrote a failed batch again at every tick: the same XSD refusal, a
    CDC-size batch's seconds of CPU every few seconds, forever, ahead of the other
    certifiers' new files. It waits now, longer each time; a folder that cannot be written
    (it may be fixed any moment) is still tried at every flush (test_tracker's)."""
    core, _ = make_core(tmp_path)
    now = timed_retries(core)
    sink = core.flusher.sink
    real = sink.write
    tried: list[str] = []

    def refusing_pix(batch: FrozenBatch) -> ReleasedFile:
        tried.append(batch.certifier.key)
        if batch.certifier.key == "pix":
            raise SchemaValidationError("idContrat: not accepted by the configured XSD")
        return real(batch)

    monkeypatch.setattr(sink, "write", refusing_pix)
    try:
        ingest(core, event("PX-1"), event("SC-1", certifier="school"))
        first = core.flusher.flush(force=True)
        assert [f.certifier for f in first.failed] == ["pix"] and first.written
        tried.clear()
        assert core.flusher.flush().ok and tried == [], "not again at the next tick"
        now[0] += FIRST_WAIT
        assert [f.certifier for f in core.flusher.flush().failed] == ["pix"]
        now[0] += FIRST_WAIT  # the wait doubled: not yet
        tried.clear()
        core.flusher.flush()
        assert tried == []
        now[0] += FIRST_WAIT
        ingest(core, event("SC-2", certifier="school"))
        tried.clear()
        core.flusher.flush(force=True)
        assert tried[-1] == "pix" and "pix" not in tried[:-1], "after the batches never tried"
        with core.store.reading() as reader:
            (failed,) = reader.batches(state=BatchState.FAILED)
        assert failed["certifier"] == "pix"
    finally:
        core.close()


def test_the_wait_before_a_failed_batch_is_tried_again_is_bounded() -> None:
    now = [0.0]
    retries = FailedRetries(seconds=lambda: now[0])
    for _ in range(20):
        retries.failed("B", "why")
    now[0] += LONGEST_WAIT
    assert retries.waiting() == 0
    retries.written("B")
    retries.failed("B", "why")
    assert retries.waiting() == 1
    now[0] += FIRST_WAIT
    assert retries.waiting() == 0


def test_a_failed_batch_gone_from_the_state_is_no_longer_said_failing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed batch superseded by a correction stayed in the retries: the batch timer
    said it failing at each tick for as long as the service ran."""
    core, _ = make_core(tmp_path)
    timed_retries(core)  # the clock never moves
    sink = core.flusher.sink
    real = sink.write

    refused = [True]

    def refusing(batch: FrozenBatch) -> ReleasedFile:
        if refused[0]:
            raise SchemaValidationError("intituleCertification: not accepted by the XSD")
        return real(batch)

    monkeypatch.setattr(sink, "write", refusing)
    try:
        ingest(core, event("GB-1"))
        (failed,) = core.flusher.flush(force=True).failed
        assert list(core.flusher.retries.held()) == [failed.batch_id]
        refused[0] = False
        ingest(core, event("GB-1", score="301"))  # a correction supersedes the failed batch
        report = core.flusher.flush(force=True)
        assert report.ok and len(report.written) == 1
        assert core.flusher.retries.held() == {} and core.flusher.retries.waiting() == 0
    finally:
        core.close()


def test_the_sink_hears_what_a_flush_will_write_before_the_first_cut(tmp_path: Path) -> None:
    """The count comes before any cut, so a sink's helpers can start while the flush cuts."""
    core, _ = make_core(tmp_path, batching={"max_records": 40})
    steps: list[str] = []
    core.flusher.sink.expect = lambda passages: steps.append(f"expect {passages}")  # type: ignore[method-assign]
    try:
        core.flusher.flush(report=FlushReport())  # nothing pending
        assert all(r.accepted for r in ingest(core, *_events(150)))
        report = FlushReport(on_cut=lambda cut: steps.append("cut"))
        core.flusher.flush(force=True, report=report)
    finally:
        core.close()
    assert report.ok and len(report.cut) == 4
    assert steps == ["expect 0", "expect 150", "cut", "cut", "cut", "cut"]


@pytest.mark.parametrize(
    ("processes", "threshold", "passages", "pool", "starts"),
    [
        (2, 2000, 2000, None, True),
        (2, 2000, 1999, None, False),  # a one-off flush renders these in its own process
        (2, 0, 1, None, True),  # a service: any file goes to the render processes
        (2, 0, 0, None, False),  # nothing to write
        (0, 0, 5000, None, False),  # no render processes configured
        (2, 0, 500, "running", False),  # a service's later ticks: they run already
        (2, 0, 500, "broken", True),  # the next write starts new ones
    ],
)
def test_the_outbox_starts_the_fork_server_only_for_its_render_processes(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    processes: int,
    threshold: int,
    passages: int,
    pool: str | None,
    starts: bool,
) -> None:
    core, _ = make_core(tmp_path)
    started: list[tuple[object, ...]] = []
    monkeypatch.setattr(xml_outbox, "helper_context", lambda *args: started.append(args))
    try:
        sink = core.flusher.sink
        assert isinstance(sink, XmlOutbox)
        sink.render_processes, sink.pool_threshold = processes, threshold
        if pool is not None:
            sink._pool = Mock(broken=pool == "broken")
        sink.expect(passages)
    finally:
        core.close()
    assert started == ([(RENDERING,)] if starts else [])  # what the render processes run


def test_each_member_cut_gets_one_history_entry_of_its_own_batch(tmp_path: Path) -> None:
    """The store writes the cut's history itself (`MembersMoved`): each record taken gets one
    entry, pending to batched, at the cut, naming its own batch; a record planned but
    corrected before its batch was cut stays pending, and its history says nothing of it."""
    core, clock = make_core(tmp_path, batching={"max_records": 40})
    events = _events(80)
    try:
        assert all(r.accepted for r in ingest(core, *events))
        plan = core.flusher.plan(FlushReport(), force=True)
        corrected = dict(events[7], event_id=str(uuid.uuid4()), mention="MENTION_TRES_BIEN")
        assert ingest(core, corrected)[0].accepted
        report = FlushReport()
        core.flusher.write_planned(plan, report)
        entries = rows(
            core,
            "SELECT record_id, at, from_status, to_status, reason, batch_id, report, event_id "
            "FROM history WHERE to_status = 'batched'",
        )
        members = rows(core, "SELECT record_id, batch_id FROM batch_members")
        created = {r["batch_id"]: r["created_at"] for r in rows(core, "SELECT * FROM batches")}
    finally:
        core.close()
    assert report.ok and len(report.cut) == 2
    assert len(members) == 79 and events[7]["record_id"] not in {m["record_id"] for m in members}
    assert sorted((e["record_id"], e["batch_id"]) for e in entries) == sorted(
        (m["record_id"], m["batch_id"]) for m in members
    )
    reasons = {cut.batch_id: f"batch cut: {cut.reason}" for cut in report.cut}
    for entry in entries:
        assert entry["at"] == created[entry["batch_id"]] == clock.now().isoformat()
        assert (entry["from_status"], entry["reason"]) == ("pending", reasons[entry["batch_id"]])
        assert entry["report"] is None and entry["event_id"] is None
