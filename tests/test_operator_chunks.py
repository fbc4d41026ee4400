"""Operator commands and flushes over many records commit a chunk at a time, and a storage
failure midway says which items were not applied.

In one transaction, `retry --all-rejected` over 300,000 records, `deposited` of a thousand
files or a mass correction superseding hundreds of written files kept every other writer
(the service's clients) waiting past `state.lock_wait`. Each item is idempotent: a call cut
short is run again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest

from accrochage.app import Core
from accrochage.errors import StorageCorruptError, StorageFullError, StoreBusyError
from accrochage.streams import chunked, operations
from tests.test_tracker import batch_row, event, ingest, make_core, record

BUSY = "another writer has held the state for 30 s (in this test)"


@pytest.fixture()
def core(tmp_path: Path) -> Iterator[Core]:
    built, _ = make_core(tmp_path, batching={"max_records": 1})
    yield built
    built.close()


def fail_transaction(core: Core, monkeypatch: pytest.MonkeyPatch, number: int) -> Callable[[], int]:
    """The store's `number`-th transaction from now fails as a busy state would; returns
    how many were opened."""
    real = core.store.transaction
    opened: list[int] = []

    def transaction() -> AbstractContextManager[Any]:
        opened.append(1)
        if len(opened) == number:
            raise StoreBusyError(BUSY)
        return real()

    monkeypatch.setattr(core.store, "transaction", transaction)
    return lambda: len(opened)


def test_include_commits_a_chunk_at_a_time_and_refuses_what_a_failure_left(
    core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [f"K-{i}" for i in range(5)]
    ingest(core, *(event(i) for i in ids))
    core.operations.exclude(ids, "test cohort")
    monkeypatch.setattr(chunked, "CHUNK_RECORDS", 2)
    fail_transaction(core, monkeypatch, 2)
    outcomes = core.operations.include(ids)
    assert [(o.item, o.done) for o in outcomes] == [(i, i in ids[:2]) for i in ids]
    assert outcomes[2].message == f"not applied: {BUSY}"
    assert [o.message for o in outcomes[3:]] == ["not applied (see above)"] * 2
    assert [record(core, i)["status"] for i in ids] == ["pending"] * 2 + ["excluded"] * 3

    opened = fail_transaction(core, monkeypatch, 0)  # none fails: the call run again
    again = core.operations.include(ids)
    assert all(o.done for o in again[2:]) and opened() == 3
    assert [o.message for o in again[:2]] == ["already pending"] * 2, "included already"
    assert {record(core, i)["status"] for i in ids} == {"pending"}


def test_a_chunk_whose_commit_fails_is_reported_once_as_not_applied(
    core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk shows at COMMIT: the chunk's outcomes, computed in the transaction, must
    not be reported as done too."""
    ids = [f"C-{i}" for i in range(3)]
    ingest(core, *(event(i) for i in ids))
    core.operations.exclude(ids, "test cohort")
    monkeypatch.setattr(chunked, "CHUNK_RECORDS", 2)
    real = core.store.transaction

    @contextmanager
    def commit_fails() -> Iterator[Any]:
        with real() as tx:
            yield tx
            raise StorageFullError("the disk is full (in this test)")

    monkeypatch.setattr(core.store, "transaction", commit_fails)
    outcomes = core.operations.include(ids)
    assert [(o.item, o.done) for o in outcomes] == [(i, False) for i in ids]
    assert {record(core, i)["status"] for i in ids} == {"excluded"}


def test_a_damaged_state_stops_the_command_instead_of_refusing_each_item(
    core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest(core, event("B-1"))

    def damaged() -> Any:
        raise StorageCorruptError("the state database is damaged (in this test)")

    monkeypatch.setattr(core.store, "transaction", damaged)
    with pytest.raises(StorageCorruptError):
        core.operations.include(["B-1"])


def test_retry_and_include_go_by_chunks_too(core: Core, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = [f"I-{i}" for i in range(3)]
    ingest(core, *(event(i) for i in ids))
    core.operations.exclude(ids, "test cohort")
    monkeypatch.setattr(chunked, "CHUNK_RECORDS", 2)
    opened = fail_transaction(core, monkeypatch, 0)
    assert all(o.done for o in core.operations.include(ids)) and opened() == 2
    refused = core.operations.retry(ids)  # pending, not rejected: refused one by one
    assert [o.done for o in refused] == [False] * 3 and opened() == 4


def test_deposited_commits_a_file_at_a_time(core: Core, monkeypatch: pytest.MonkeyPatch) -> None:
    ingest(core, event("D-1"), event("D-2"))
    written = core.flusher.flush(force=True).written
    files = sorted((w.batch_id, w.path) for w in written)
    assert len(files) == 2
    fail_transaction(core, monkeypatch, 2)
    first, second = core.operations.deposited([str(path) for _, path in files])
    assert first.done and "deposited (1 records)" in first.message
    assert (second.done, second.message) == (False, f"not applied: {BUSY}")
    (_, path_1), (_, path_2) = files
    assert not path_1.exists() and path_2.exists()  # the first moved to deposited/
    deposited_files = list(path_1.parent.glob("deposited/*.xml"))
    assert [p.name for p in deposited_files] == [path_1.name]


def test_a_flush_supersedes_one_batch_a_transaction(
    core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest(core, event("S-1", score="100"), event("S-2", score="100"))
    written = sorted((w.batch_id, w.path) for w in core.flusher.flush(force=True).written)
    ingest(core, event("S-1", score="300"), event("S-2", score="300"))  # both to supersede
    fail_transaction(core, monkeypatch, 3)  # listing them, the first, then the second's
    with pytest.raises(StoreBusyError):
        core.flusher.flush(force=True)
    states = {batch_id: batch_row(core, batch_id)["state"] for batch_id, _ in written}
    assert sorted(states.values()) == ["superseded", "written"], states
    for batch_id, path in written:  # each file where the state says
        assert path.exists() is (states[batch_id] == "written")
    fail_transaction(core, monkeypatch, 0)
    report = core.flusher.flush(force=True)
    assert [b for b, s in states.items() if s == "written"] == report.superseded
    assert {batch_row(core, b)["state"] for b, _ in written} == {"superseded"}
    assert len(report.written) == 2  # both records cut again with their correction


def test_retry_rejected_leaves_a_record_no_longer_rejected_as_it_is(core: Core) -> None:
    """Its ids are chosen in one transaction and retried in later ones: a record a report
    or a correction changed in between is left as it is, not refused (exit 1)."""
    ingest(core, event("R-1"))
    ops = core.operations
    (outcome,) = ops._in_chunks(
        ["R-1"], lambda tx, chunk: ops._apply_in(tx, chunk, operations._if_rejected)
    )
    assert (outcome.done, outcome.message) == (True, "already pending")
    assert record(core, "R-1")["status"] == "pending"
