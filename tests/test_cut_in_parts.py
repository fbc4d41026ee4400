"""A batch larger than `CUT_PER_TRANSACTION` is cut in parts, one write transaction each, so
that a service's writer never waits for the whole of a CDC-sized batch (issue 13, item 4);
while it is being cut, no other flusher writes its file, and a flush killed between two parts
leaves a whole batch and pending records: every record once in one file."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import accrochage.streams.cut_group as cut_group_module
from accrochage.app import Core
from accrochage.generate import GeneratedCertifier, generate_events
from accrochage.state.base import Transaction
from accrochage.streams.flush_report import FlushReport
from tests.support.crash import (
    cli_command,
    finished,
    id_techniques,
    killed_at,
    query,
    released_files,
    write_config,
    write_generated_events,
)
from tests.test_tracker import TODAY, ingest, make_core, rows

GENERATED = [GeneratedCertifier("pix", ("RS5875", "RNCP37873"))]
PART = 30
WAIT = 120.0
"""Seconds a test waits at most for another flusher's thread (a loaded machine)."""


@pytest.fixture(autouse=True)
def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cut_group_module, "CUT_PER_TRANSACTION", PART)


def _events(count: int) -> list[dict[str, Any]]:
    return list(generate_events(count, GENERATED, today=TODAY, seed=5))


def _batched(core: Core) -> int:
    return int(rows(core, "SELECT count(*) AS n FROM records WHERE status = 'batched'")[0]["n"])


@contextmanager
def after_each_commit(core: Core, hook: Any) -> Iterator[None]:
    """`hook(n)` after the store's n-th write transaction commits (1 the first)."""
    store = core.store
    original = store.transaction
    commits = 0

    @contextmanager
    def observed() -> Iterator[Transaction]:
        nonlocal commits
        with original() as tx:
            yield tx
        commits += 1
        hook(commits)

    store.transaction = observed  # type: ignore[method-assign]
    try:
        yield
    finally:
        store.transaction = original  # type: ignore[method-assign]


def test_a_large_batch_is_cut_in_parts_of_its_own_transaction_each(tmp_path: Path) -> None:
    core, clock = make_core(tmp_path, batching={"max_records": 100})
    events = _events(100)
    batched_after: list[int] = []
    try:
        assert all(r.accepted for r in ingest(core, *events))
        report = FlushReport()
        core.store.let_writers_in = lambda: batched_after.append(-1)  # type: ignore[method-assign]
        with after_each_commit(core, lambda _: batched_after.append(_batched(core))):
            core.flusher.cut(report, force=True)
        (batch,) = rows(core, "SELECT * FROM batches")
        members = rows(
            core, "SELECT record_id FROM batch_members WHERE batch_id = ?", batch["batch_id"]
        )
        entries = rows(
            core,
            "SELECT record_id, at, reason, batch_id FROM history WHERE to_status = 'batched'",
        )
        written = FlushReport()
        core.flusher.write_unwritten(written)
    finally:
        core.close()
    # each part in its own transaction, other writers let in between two (-1)
    assert [n for n in batched_after if n] == [30, -1, 60, -1, 90, -1, 100]
    assert len(report.cut) == 1 and report.cut[0].passages == 100 == batch["passages"]
    assert sorted(m["record_id"] for m in members) == sorted(e["record_id"] for e in events)
    assert Counter(e["record_id"] for e in entries) == Counter(m["record_id"] for m in members)
    for entry in entries:
        assert entry["batch_id"] == batch["batch_id"]
        assert (entry["at"], entry["reason"]) == (
            clock.now().isoformat(),
            f"batch cut: {report.cut[0].reason}",
        )
    (file,) = written.written
    assert file.passages == 100
    assert sorted(id_techniques(file.path)) == sorted(e["record_id"] for e in events)


def test_a_member_changed_since_the_plan_is_left_pending_in_a_later_part(
    tmp_path: Path,
) -> None:
    core, _ = make_core(tmp_path, batching={"max_records": 100})
    events = _events(100)
    try:
        assert all(r.accepted for r in ingest(core, *events))
        plan = core.flusher.plan(FlushReport(), force=True)
        (group,) = plan.groups
        changed = group.members[2 * PART + 5].record_id  # in the third part
        original = next(e for e in events if e["record_id"] == changed)
        corrected = dict(original, event_id=str(uuid.uuid4()), mention="MENTION_TRES_BIEN")
        assert ingest(core, corrected)[0].accepted
        report = FlushReport()
        core.flusher.write_planned(plan, report)
        (batch,) = rows(core, "SELECT * FROM batches")
        members = {m["record_id"] for m in rows(core, "SELECT record_id FROM batch_members")}
        status = rows(core, "SELECT status FROM records WHERE record_id = ?", changed)
    finally:
        core.close()
    assert report.ok and batch["passages"] == 99 == len(members) and changed not in members
    assert status == [{"status": "pending"}]
    (file,) = report.written
    assert file.passages == 99 and changed not in id_techniques(file.path)


def test_a_batch_superseded_while_it_is_cut_takes_no_more_members(tmp_path: Path) -> None:
    core, _ = make_core(tmp_path, batching={"max_records": 100})
    original = core.store.transaction

    def supersede_after_the_first_part(commit: int) -> None:
        if _batched(core) == PART:
            (batch,) = rows(core, "SELECT batch_id FROM batches")
            with original() as tx:
                tx.batch_superseded(batch["batch_id"], None)

    try:
        assert all(r.accepted for r in ingest(core, *_events(100)))
        report = FlushReport()
        with after_each_commit(core, supersede_after_the_first_part):
            core.flusher.cut(report, force=True)
        (batch,) = rows(core, "SELECT * FROM batches")
        members = rows(core, "SELECT count(*) AS n FROM batch_members")[0]["n"]
        pending = rows(core, "SELECT count(*) AS n FROM records WHERE status = 'pending'")[0]["n"]
    finally:
        core.close()
    assert batch["state"] == "superseded" and batch["passages"] == PART == members
    assert report.cut[0].passages == PART and pending == 100 - PART


def test_a_stop_between_two_parts_writes_the_smaller_batch_whole(tmp_path: Path) -> None:
    """A service being stopped does not wait for the rest of a large batch: the parts cut
    make the batch, its file written whole, and the other records wait, pending."""
    core, _ = make_core(tmp_path, batching={"max_records": 100})
    stopping = threading.Event()

    def stop_after_the_first_part(commit: int) -> None:
        if _batched(core) == PART:
            stopping.set()

    try:
        assert all(r.accepted for r in ingest(core, *_events(100)))
        with after_each_commit(core, stop_after_the_first_part):
            report = core.flusher.flush(force=True, stopping=stopping)
        pending = rows(core, "SELECT count(*) AS n FROM records WHERE status = 'pending'")[0]["n"]
        (batch,) = rows(core, "SELECT state, passages FROM batches")
    finally:
        core.close()
    assert report.ok and report.cut[0].passages == PART == batch["passages"]
    assert batch["state"] == "written" and pending == 100 - PART
    (file,) = report.written
    assert len(id_techniques(file.path)) == PART


def test_another_flusher_writes_a_batch_only_once_it_is_cut_whole(tmp_path: Path) -> None:
    """A flusher of another process (here another store on the same state) that looks for
    batches to write while one is half cut waits for the cut lock: it writes the whole batch,
    never a file lacking the members of the parts still to come."""
    cutting, _ = make_core(tmp_path, batching={"max_records": 100})
    other, _ = make_core(tmp_path, batching={"max_records": 100})
    events = _events(100)
    looked = threading.Event()
    other_reading = other.store.reading

    @contextmanager
    def reading_seen() -> Iterator[Any]:
        looked.set()
        with other_reading() as reader:
            yield reader

    other.store.reading = reading_seen  # type: ignore[method-assign]
    written = FlushReport()
    writing = threading.Thread(target=other.flusher.write_unwritten, args=(written,))

    def start_the_other_after_the_first_part(commit: int) -> None:
        if writing.is_alive() or writing.ident is not None or _batched(cutting) != PART:
            return
        writing.start()
        deadline = time.monotonic() + WAIT
        while not (looked.is_set() or _waiting_for_a_lock()):
            assert time.monotonic() < deadline, "the other flusher neither read nor waited"
            time.sleep(0.01)

    try:
        assert all(r.accepted for r in ingest(cutting, *events))
        report = FlushReport()
        with after_each_commit(cutting, start_the_other_after_the_first_part):
            cutting.flusher.cut(report, force=True)
        writing.join(WAIT)
        assert not writing.is_alive()
    finally:
        cutting.close()
        other.close()
    assert report.cut[0].passages == 100
    (file,) = written.written
    assert file.passages == 100
    assert sorted(id_techniques(file.path)) == sorted(e["record_id"] for e in events)


def _waiting_for_a_lock() -> bool:
    return any(t.name == "write-lock-wait" for t in threading.enumerate())


def test_a_flush_killed_between_two_parts_loses_and_repeats_no_record(tmp_path: Path) -> None:
    config = write_config(tmp_path, max_records=100)
    events = write_generated_events(config, tmp_path / "events.jsonl", 200, seed=3)
    finished(cli_command(config, "ingest", str(events)), cwd=tmp_path)
    small_parts = {"accrochage.streams.cut_group.CUT_PER_TRANSACTION": PART}
    killed_at("flush:cut-part", config, "flush", "--force", cwd=tmp_path, constants=small_parts)
    state = tmp_path / "state.db"
    (half,) = query(state, "SELECT batch_id, state, passages FROM batches")
    assert (half["state"], half["passages"]) == ("cut", 2 * PART)
    batched = query(state, "SELECT count(*) AS n FROM records WHERE status = 'batched'")
    assert batched[0]["n"] == 2 * PART
    finished(cli_command(config, "flush", "--force"), cwd=tmp_path)
    seen = Counter(i for path in released_files(tmp_path / "outbox") for i in id_techniques(path))
    record_ids = {json.loads(line)["record_id"] for line in events.read_text().splitlines()}
    assert set(seen.values()) == {1} and seen.keys() == record_ids
    (file,) = query(state, "SELECT file_path FROM batches WHERE batch_id = ?", [half["batch_id"]])
    assert len(id_techniques(Path(file["file_path"]))) == 2 * PART
