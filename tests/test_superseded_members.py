"""A superseded batch's members that wait for nothing go back to pending by one statement
(`Transaction.return_plain`), not one record at a time in Python: the same rows and history
entries as `models/withdrawal.apply_superseded` says, the revoked and corrected members still
through it."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import accrochage.streams.supersede_due as supersede_due_module
import accrochage.streams.withdraw as withdraw_module
from accrochage.app import Core
from accrochage.generate import GeneratedCertifier, generate_events
from accrochage.models.batch import BatchInfo
from accrochage.models.deadline import FixedClock
from accrochage.models.record import Change, Record
from accrochage.models.withdrawal import apply_superseded
from accrochage.streams.flush_report import FlushReport
from tests.factories import revoked_event
from tests.support.crash import (
    cli_command,
    finished,
    killed_at,
    query,
    write_config,
    write_generated_events,
)
from tests.test_cut_in_parts import after_each_commit
from tests.test_tracker import TODAY, ingest, make_core, rows


def test_plain_members_go_back_as_the_model_says_by_one_statement(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    core, clock = make_core(tmp_path, batching={"max_records": 60})
    through_python: list[str] = []
    original = withdraw_module.apply_superseded

    def counted(record: Record, *args: Any, **kwargs: Any) -> Any:
        through_python.append(record.record_id)
        return original(record, *args, **kwargs)

    try:
        batch_id, events = _written_batch_then_two_changes(core, clock)
        corrected, revoked = events[10], events[20]
        with core.store.transaction() as tx:
            before = tx.records_in_batch(batch_id)
            info = tx.batch(batch_id)
        assert info is not None and len(before) == 50
        monkeypatch.setattr(withdraw_module, "apply_superseded", counted)
        report = FlushReport()
        core.flusher.plan(report)
        with core.store.transaction() as tx:
            after = tx.records([r.record_id for r in before])
        entries = rows(
            core,
            "SELECT record_id, at, from_status, to_status, reason, batch_id, report, event_id "
            "FROM history WHERE batch_id = ? AND to_status != 'batched'",
            batch_id,
        )
    finally:
        core.close()
    assert report.superseded == [batch_id]
    assert sorted(through_python) == sorted([corrected["record_id"], revoked["record_id"]])
    assert after[revoked["record_id"]].status.value == "withdrawn"
    assert (after[corrected["record_id"]].status.value, after[corrected["record_id"]].version) == (
        "pending",
        2,
    )
    now = clock.now().replace(microsecond=0)
    by_record = {e["record_id"]: e for e in entries}
    assert len(by_record) == len(entries) == 50
    for record in before:
        if record.record_id in through_python:
            continue
        said = _expected(record, info, now)
        assert after[record.record_id] == said.record and said.history is not None
        assert by_record[record.record_id] == {
            "record_id": record.record_id,
            "at": now.isoformat(),
            "from_status": "batched",
            "to_status": "pending",
            "reason": said.history.reason,
            "batch_id": batch_id,
            "report": None,
            "event_id": None,
        }


def _expected(record: Record, info: BatchInfo, now: datetime) -> Change:
    change = apply_superseded(record, info.batch_id, now, None, info.cut_at, written=True)
    assert change.changed and change.history is not None
    return change


def _written_batch_then_two_changes(
    core: Core, clock: FixedClock
) -> tuple[str, list[dict[str, Any]]]:
    """50 records cut and written in one batch, then, two hours later (pending again since the
    cut, not since now), the 11th corrected and the 21st revoked."""
    events = list(
        generate_events(50, [GeneratedCertifier("pix", ("RS5875",))], today=TODAY, seed=8)
    )
    assert all(r.accepted for r in ingest(core, *events))
    (written,) = core.flusher.flush(force=True).written
    clock.advance(timedelta(hours=2))
    fixed = dict(events[10], event_id=str(uuid.uuid4()), mention="MENTION_TRES_BIEN")
    revocation = revoked_event(
        event_id=str(uuid.uuid4()),
        record_id=events[20]["record_id"],
        certification=events[20]["certification"],
    )
    assert all(r.accepted for r in ingest(core, fixed, revocation))
    return written.batch_id, events


def test_a_large_batch_is_superseded_in_parts_of_its_own_transaction_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(supersede_due_module, "SUPERSEDE_PER_TRANSACTION", 20)
    core, clock = make_core(tmp_path, batching={"max_records": 60})
    left: list[tuple[str, int]] = []

    def batched_in_it(commit: int) -> None:
        (state,) = rows(core, "SELECT state FROM batches WHERE batch_id = ?", batch_id)
        n = rows(core, "SELECT count(*) AS n FROM records WHERE batch_id = ?", batch_id)[0]["n"]
        left.append((state["state"], n))

    try:
        batch_id, _ = _written_batch_then_two_changes(core, clock)
        report = FlushReport()
        core.store.let_writers_in = lambda: left.append(("let in", -1))  # type: ignore[method-assign]
        with after_each_commit(core, batched_in_it):
            core.flusher.plan(report)
        statuses = rows(core, "SELECT status, count(*) AS n FROM records GROUP BY status")
    finally:
        core.close()
    assert report.superseded == [batch_id]
    parts = [n for state, n in left if state != "written"]
    # 20 plain, 20 plain, then 8 plain and the 2 others; other writers let in between two
    assert parts[:5] == [30, -1, 10, -1, 0], left
    assert {s["status"]: s["n"] for s in statuses} == {"pending": 49, "withdrawn": 1}


def test_a_flush_killed_between_two_parts_of_a_supersession_is_finished_by_the_next(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, max_records=200)
    events = write_generated_events(config, tmp_path / "events.jsonl", 60, seed=4)
    finished(cli_command(config, "ingest", str(events)), cwd=tmp_path)
    finished(cli_command(config, "flush", "--force"), cwd=tmp_path)
    state = tmp_path / "state.db"
    first = json.loads(events.read_text().splitlines()[0])
    (batch,) = query(
        state, "SELECT batch_id FROM records WHERE record_id = ?", [first["record_id"]]
    )
    members = query(state, "SELECT count(*) AS n FROM records WHERE batch_id = ?", [batch[0]])
    assert members[0]["n"] > 20, "the batch needs more than one part"
    fixed = dict(first, event_id=str(uuid.uuid4()), mention="MENTION_TRES_BIEN")
    (tmp_path / "fix.jsonl").write_text(json.dumps(fixed) + "\n")
    finished(cli_command(config, "ingest", str(tmp_path / "fix.jsonl")), cwd=tmp_path)
    small_parts = {"accrochage.streams.supersede_due.SUPERSEDE_PER_TRANSACTION": 20}
    killed_at("flush:supersede-part", config, "flush", cwd=tmp_path, constants=small_parts)
    (half,) = query(state, "SELECT state FROM batches WHERE batch_id = ?", [batch[0]])
    still = query(state, "SELECT count(*) AS n FROM records WHERE batch_id = ?", [batch[0]])
    assert half["state"] == "superseded" and still[0]["n"] == members[0]["n"] - 20
    finished(cli_command(config, "flush", "--force"), cwd=tmp_path)
    left = query(state, "SELECT count(*) AS n FROM records WHERE batch_id = ?", [batch[0]])
    assert left[0]["n"] == 0
    placed = query(
        state,
        "SELECT count(*) AS n FROM records r JOIN batches b ON b.batch_id = r.batch_id "
        "WHERE r.status = 'batched' AND b.state = 'written'",
    )
    assert placed[0]["n"] == 60, "every record is in a file to deposit again"
