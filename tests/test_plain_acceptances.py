"""A CREATION report's plain acceptances (PassagesOK, records waiting for nothing else) are
applied by SQL, as `models/batch_life.accepted_plain` says (issue 13: a report of 100,000
passages held the write lock 7.7 s, one record at a time in Python); what they become is
exactly what the record's life makes of them, and every other outcome still goes through it.
"""

from __future__ import annotations

import sqlite3
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import accrochage.streams.report_outcomes as report_outcomes_module
from accrochage.app import Core
from accrochage.generate import GeneratedCertifier, generate_events
from accrochage.models.batch_life import accepted_as, apply_report
from accrochage.models.record import Record
from accrochage.models.suppression_report import apply_suppression_report
from accrochage.streams.flush_report import FlushReport
from tests.factories import revoked_event
from tests.test_cdc_loop import answer
from tests.test_tracker import TODAY, ingest, make_core, rows

GENERATED = [GeneratedCertifier("pix", ("RS5875", "RNCP37873"))]
REJECTED = "Aucun titulaire ne correspond aux critères obligatoires"
ALREADY = "Le passage certification existe déjà en base"


def _written(core: Core, events: list[dict[str, Any]]) -> str:
    assert all(r.accepted for r in ingest(core, *events))
    report = core.flusher.flush(force=True, report=FlushReport())
    (written,) = report.written
    return written.batch_id


def _expected(record: Record, batch_id: str, now: datetime, label: str) -> tuple[Record, Any]:
    change = apply_report(
        record, accepted=True, message=None, report_batch=batch_id, now=now, label=label
    )
    assert change.record is not None and change.history is not None
    return accepted_as(record, change.record, None), change.history


def _counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ids of the records whose outcome goes through the record's life from now on."""
    through_python: list[str] = []
    original = report_outcomes_module.apply_verdict

    def counted(ctx: Any, record: Record, verdict: Any) -> Any:
        through_python.append(record.record_id)
        return original(ctx, record, verdict)

    monkeypatch.setattr(report_outcomes_module, "apply_verdict", counted)
    return through_python


def _seen(
    core: Core, ids: list[str], batch_id: str, request_id: str
) -> tuple[dict[str, Record], dict[str, dict[str, Any]], list[dict[str, Any]], dict[str, int]]:
    """After the report: the records, the history entries it wrote for `batch_id` by record,
    the request's status, and each record's `outstanding` column."""
    with core.store.transaction() as tx:
        after = tx.records(ids)
    entries = {
        e["record_id"]: e
        for e in rows(
            core,
            "SELECT record_id, at, from_status, to_status, reason, batch_id, report, "
            "event_id FROM history WHERE batch_id = ? AND report IS NOT NULL",
            batch_id,
        )
    }
    request = rows(core, "SELECT status FROM correction_requests WHERE request_id = ?", request_id)
    outstanding = {
        r["record_id"]: r["outstanding"]
        for r in rows(core, "SELECT record_id, outstanding FROM records")
    }
    return after, entries, request, outstanding


@pytest.mark.parametrize("deposited", [False, True], ids=["batched", "deposited"])
def test_plain_acceptances_are_what_the_record_life_says_by_one_statement(
    tmp_path: Path, shared_dir: Path, monkeypatch: pytest.MonkeyPatch, deposited: bool
) -> None:
    core, clock = make_core(tmp_path, batching={"max_records": 100})
    try:
        events = list(generate_events(40, GENERATED, today=TODAY, seed=11))
        ids = [e["record_id"] for e in events]
        sent_again = ids[3]
        first = _written(core, [e for e in events if e["record_id"] == sent_again])
        answer(core, shared_dir, first, ko={sent_again: REJECTED})
        core.operations.retry([sent_again])
        requested = core.corrections.add(ids[5], date(2026, 11, 30)).request.request_id
        clock.advance(timedelta(hours=1))
        fixed = next(e for e in events if e["record_id"] == ids[5])
        others = [e for e in events if e["record_id"] != sent_again]
        assert ingest(core, dict(fixed, event_id=str(uuid.uuid4()), score="300"))[0].accepted
        clock.advance(timedelta(hours=1))
        batch_id = _written(core, others)
        if deposited:
            core.operations.deposited([batch_id])
        revoked, corrected = events[10], events[11]
        revocation = revoked_event(
            record_id=revoked["record_id"],
            event_id=str(uuid.uuid4()),
            certification=revoked["certification"],
        )
        correction = dict(corrected, event_id=str(uuid.uuid4()), mention="MENTION_TRES_BIEN")
        assert all(r.accepted for r in ingest(core, revocation, correction))
        with sqlite3.connect(core.settings.paths.state) as conn:
            # held under another idTechnique by an earlier answer: accepted under its own now
            conn.execute("UPDATE records SET cdc_held_as = '1559735' WHERE record_id = ?", [ids[1]])
        with core.store.transaction() as tx:
            before = tx.records(ids)
        assert before[sent_again].batch_id == batch_id and before[sent_again].cdc_message
        through_python = _counted(monkeypatch)
        summary = answer(
            core,
            shared_dir,
            batch_id,
            ok=[i for i in ids if i not in (ids[12], ids[13])],
            ko={ids[12]: REJECTED, ids[13]: ALREADY},
        )
        after, entries, request, outstanding = _seen(core, ids, batch_id, requested)
    finally:
        core.close()
    python_path = {revoked["record_id"], corrected["record_id"], ids[12], ids[13]}
    assert sorted(through_python) == sorted(python_path)
    assert sorted(summary.accepted) == sorted(i for i in ids if i != ids[12])
    assert request == [{"status": "corrected"}]
    label = entries[ids[12]]["report"]
    assert label and entries.keys() == set(ids)
    now = clock.now().replace(microsecond=0)
    waiting = "deposited" if deposited else "batched"
    for record_id in set(ids) - python_path:
        record, history = _expected(before[record_id], batch_id, now, label)
        assert after[record_id] == record
        assert entries[record_id] == {
            "record_id": record_id,
            "at": now.isoformat(),
            "from_status": waiting,
            "to_status": "accepted",
            "reason": history.reason,
            "batch_id": batch_id,
            "report": label,
            "event_id": None,
        }
        assert outstanding[record_id] == int(record.outstanding) == 0
    assert after[sent_again].cdc_message is None and after[sent_again].cdc_reason is None
    assert before[ids[1]].cdc_held_as and after[ids[1]].cdc_held_as is None
    assert not after[ids[0]].outstanding and after[ids[0]].delivery_met


def test_a_suppression_s_revoked_records_are_withdrawn_as_the_record_life_says_by_one_statement(
    tmp_path: Path, shared_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    core, clock = make_core(tmp_path, batching={"max_records": 100})
    try:
        events = list(generate_events(30, GENERATED, today=TODAY, seed=12))
        ids = [e["record_id"] for e in events]
        created = _written(core, events)
        answer(core, shared_dir, created, ok=ids)
        clock.advance(timedelta(hours=1))
        requested = core.corrections.add(ids[4], TODAY).request.request_id
        corrections = [
            dict(e, event_id=str(uuid.uuid4()), mention="MENTION_TRES_BIEN") for e in events[19:25]
        ]
        revocations = [
            revoked_event(
                record_id=e["record_id"],
                event_id=str(uuid.uuid4()),
                certification=e["certification"],
            )
            for e in events[:20]
        ]
        assert all(r.accepted for r in ingest(core, *corrections, *revocations))
        withdrawal = _written(core, [])
        with sqlite3.connect(core.settings.paths.state) as conn:
            # fields the record's life clears on a withdrawal, whatever they held
            for column, value, record_id in (
                ("deadline", "2027-03-01", ids[5]),
                ("suppression_rejected", 1, ids[6]),
                ("cdc_message", REJECTED, ids[7]),
            ):
                update = f"UPDATE records SET {column} = ? WHERE record_id = ?"
                conn.execute(update, [value, record_id])
        with core.store.transaction() as tx:
            before = tx.records(ids)
        assert before[ids[19]].correction_version and before[ids[19]].revocation_pending
        assert before[ids[5]].deadline and before[ids[6]].suppression_rejected
        assert before[ids[7]].cdc_message
        through_python = _counted(monkeypatch)
        summary = answer(
            core,
            shared_dir,
            withdrawal,
            ok=[i for i in ids[:25] if i != ids[2]],
            ko={ids[2]: REJECTED},
        )
        after, entries, request, outstanding = _seen(core, ids, withdrawal, requested)
    finally:
        core.close()
    corrected_only = set(ids[20:25])
    assert sorted(through_python) == sorted({*corrected_only, ids[2]})
    assert sorted(summary.accepted) == sorted(i for i in ids[:25] if i != ids[2])
    assert request == [{"status": "corrected"}]
    label = entries[ids[2]]["report"]
    assert label and entries.keys() == set(ids[:25])
    now = clock.now().replace(microsecond=0)
    for record_id in set(ids[:20]) - {ids[2]}:
        change = apply_suppression_report(
            before[record_id],
            batch_id=withdrawal,
            accepted=True,
            message=None,
            now=now,
            label=label,
            correction=None,
        )
        assert change.record is not None and change.history is not None
        assert after[record_id] == change.record and after[record_id].status.value == "withdrawn"
        assert outstanding[record_id] == int(change.record.outstanding) == 0
        assert entries[record_id] == {
            "record_id": record_id,
            "at": now.isoformat(),
            "from_status": "accepted",
            "to_status": "withdrawn",
            "reason": change.history.reason,
            "batch_id": withdrawal,
            "report": label,
            "event_id": None,
        }
    assert after[ids[19]].correction_version is None
    assert all(after[i].status.value == "pending" for i in corrected_only)
