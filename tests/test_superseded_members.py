"""A superseded batch's members that wait for nothing go back to pending by one statement
(`Transaction.return_plain`), not one record at a time in Python: the same rows and history
entries as `models/withdrawal.apply_superseded` says, the revoked and corrected members still
through it."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import accrochage.streams.withdraw as withdraw_module
from accrochage.generate import GeneratedCertifier, generate_events
from accrochage.models.batch import BatchInfo
from accrochage.models.record import Change, Record
from accrochage.models.withdrawal import apply_superseded
from accrochage.streams.flush_report import FlushReport
from tests.factories import revoked_event
from tests.test_tracker import TODAY, ingest, make_core, rows


def test_plain_members_go_back_as_the_model_says_by_one_statement(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    core, clock = make_core(tmp_path, batching={"max_records": 60})
    events = list(
        generate_events(50, [GeneratedCertifier("pix", ("RS5875",))], today=TODAY, seed=8)
    )
    corrected, revoked = events[10], events[20]
    through_python: list[str] = []
    original = withdraw_module.apply_superseded

    def counted(record: Record, *args: Any, **kwargs: Any) -> Any:
        through_python.append(record.record_id)
        return original(record, *args, **kwargs)

    try:
        assert all(r.accepted for r in ingest(core, *events))
        (written,) = core.flusher.flush(force=True).written
        clock.advance(timedelta(hours=2))  # pending again since the cut, not since now
        fixed = dict(corrected, event_id=str(uuid.uuid4()), mention="MENTION_TRES_BIEN")
        revocation = revoked_event(
            event_id=str(uuid.uuid4()),
            record_id=revoked["record_id"],
            certification=revoked["certification"],
        )
        assert all(r.accepted for r in ingest(core, fixed, revocation))
        with core.store.transaction() as tx:
            before = tx.records_in_batch(written.batch_id)
            info = tx.batch(written.batch_id)
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
            written.batch_id,
        )
    finally:
        core.close()
    assert report.superseded == [written.batch_id]
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
            "batch_id": written.batch_id,
            "report": None,
            "event_id": None,
        }


def _expected(record: Record, info: BatchInfo, now: datetime) -> Change:
    change = apply_superseded(record, info.batch_id, now, None, info.cut_at, written=True)
    assert change.changed and change.history is not None
    return change
