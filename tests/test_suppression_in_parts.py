"""A SUPPRESSION file is planned by a reader and cut in transactions of its own, a large one in
parts of `CUT_PER_TRANSACTION` (issue 13, item 4): a mass revocation no longer holds a
service's writer for the whole cut. Each part takes only the records still to withdraw as
planned, so that a correction taken back meanwhile is not withdrawn and two flushers never
send one withdrawal twice; a flush killed between two parts loses and repeats nothing."""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import accrochage.streams.cut_group as cut_group_module
from accrochage.app import Core
from accrochage.generate import GeneratedCertifier, generate_events
from accrochage.streams.flush_report import FlushReport
from tests.factories import revoked_event
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
from tests.test_cdc_loop import action_of, answer, assert_bundled_valid
from tests.test_cut_in_parts import WAIT, after_each_commit
from tests.test_tracker import TODAY, ingest, make_core, processed_report, rows

GENERATED = [GeneratedCertifier("pix", ("RS5875", "RNCP37873"))]
PART = 30
CUT_PARTS = {"accrochage.streams.cut_group.CUT_PER_TRANSACTION": PART}


@pytest.fixture(autouse=True)
def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cut_group_module, "CUT_PER_TRANSACTION", PART)


def _accepted(core: Core, shared_dir: Path, count: int) -> list[dict[str, Any]]:
    """`count` events sent in one CREATION file, which the CDC accepted."""
    events = list(generate_events(count, GENERATED, today=TODAY, seed=7))
    assert all(r.accepted for r in ingest(core, *events))
    report = core.flusher.flush(force=True)
    (written,) = report.written
    answer(core, shared_dir, written.batch_id, ok=[e["record_id"] for e in events])
    return events


def _revoked(core: Core, shared_dir: Path, count: int) -> list[dict[str, Any]]:
    """`count` events the CDC accepted, then revoked: to withdraw, in one SUPPRESSION."""
    events = _accepted(core, shared_dir, count)
    assert all(r.accepted for r in ingest(core, *(_revocation(e) for e in events)))
    return events


def _revocation(event: dict[str, Any]) -> dict[str, Any]:
    return revoked_event(
        record_id=event["record_id"],
        event_id=str(uuid.uuid4()),
        certification=event["certification"],
    )


def _correction(event: dict[str, Any]) -> dict[str, Any]:
    return dict(event, event_id=str(uuid.uuid4()), mention="MENTION_TRES_BIEN")


def _in_suppressions(core: Core) -> int:
    return int(
        rows(
            core,
            "SELECT count(*) AS n FROM records r JOIN batches b ON b.batch_id = r.batch_id "
            "WHERE b.action = 'SUPPRESSION'",
        )[0]["n"]
    )


def _suppressions(core: Core) -> list[dict[str, Any]]:
    return rows(core, "SELECT * FROM batches WHERE action = 'SUPPRESSION'")


def test_a_large_suppression_is_cut_in_parts_of_its_own_transaction_each(
    tmp_path: Path, shared_dir: Path
) -> None:
    core, clock = make_core(tmp_path, batching={"max_records": 100})
    in_flight_after: list[int] = []
    try:
        events = _revoked(core, shared_dir, 100)
        report = FlushReport()
        core.store.let_writers_in = lambda: in_flight_after.append(-1)  # type: ignore[method-assign]
        with after_each_commit(core, lambda _: in_flight_after.append(_in_suppressions(core))):
            core.flusher.cut(report, force=True)
        (batch,) = _suppressions(core)
        members = rows(
            core, "SELECT record_id FROM batch_members WHERE batch_id = ?", batch["batch_id"]
        )
        entries = rows(
            core, "SELECT record_id, at, reason FROM history WHERE batch_id = ?", batch["batch_id"]
        )
        written = FlushReport()
        core.flusher.write_unwritten(written)
    finally:
        core.close()
    # each part in its own transaction, other writers let in between two (-1)
    assert [n for n in in_flight_after if n] == [30, -1, 60, -1, 90, -1, 100]
    (cut,) = report.cut
    assert cut.action.value == "SUPPRESSION" and cut.passages == 100 == batch["passages"]
    assert sorted(m["record_id"] for m in members) == sorted(e["record_id"] for e in events)
    assert Counter(e["record_id"] for e in entries) == Counter(m["record_id"] for m in members)
    assert {(e["at"], e["reason"]) for e in entries} == {
        (clock.now().isoformat(), f"SUPPRESSION cut (revoked): {cut.reason}")
    }
    (file,) = written.written
    assert file.passages == 100 and action_of(file.path) == "SUPPRESSION"
    assert sorted(id_techniques(file.path)) == sorted(e["record_id"] for e in events)
    assert_bundled_valid(file.path)


def test_a_correction_taken_back_since_the_plan_is_not_withdrawn_in_a_later_part(
    tmp_path: Path, shared_dir: Path
) -> None:
    """The platform sent the content the CDC holds again while the file was being cut: that
    record has nothing left to withdraw, and the part that planned it leaves it out."""
    core, _ = make_core(tmp_path, batching={"max_records": 100})
    try:
        events = _accepted(core, shared_dir, 100)
        assert all(r.accepted for r in ingest(core, *(_correction(e) for e in events)))
        with core.store.reading() as reader:
            planned = [s.member.record_id for s in reader.suppressible()]
        taken_back = next(e for e in events if e["record_id"] == planned[2 * PART + 5])

        sent_again: list[str] = []

        def take_back_after_the_first_part(_: int) -> None:
            if not sent_again and _in_suppressions(core) == PART:
                sent_again.append(str(uuid.uuid4()))
                assert ingest(core, dict(taken_back, event_id=sent_again[0]))[0].accepted

        report = FlushReport()
        with after_each_commit(core, take_back_after_the_first_part):
            core.flusher.flush(force=True, report=report)
        (batch,) = _suppressions(core)
        (kept,) = rows(core, "SELECT * FROM records WHERE record_id = ?", taken_back["record_id"])
    finally:
        core.close()
    assert report.ok and batch["passages"] == 99
    assert kept["batch_id"] == kept["accepted_batch_id"] and kept["correction_version"] is None
    (file,) = report.written
    assert file.passages == 99 and taken_back["record_id"] not in id_techniques(file.path)


def test_a_suppression_superseded_while_it_is_cut_takes_no_more_members(
    tmp_path: Path, shared_dir: Path
) -> None:
    core, _ = make_core(tmp_path, batching={"max_records": 100})
    original = core.store.transaction

    def supersede_after_the_first_part(_: int) -> None:
        if _in_suppressions(core) == PART:
            (batch,) = _suppressions(core)
            with original() as tx:
                tx.batch_superseded(batch["batch_id"], None)

    try:
        _revoked(core, shared_dir, 100)
        report = FlushReport()
        with after_each_commit(core, supersede_after_the_first_part):
            core.flusher.cut(report, force=True)
        (batch,) = _suppressions(core)
        members = rows(
            core, "SELECT count(*) AS n FROM batch_members WHERE batch_id = ?", batch["batch_id"]
        )
        with core.store.reading() as reader:
            left = len(reader.suppressible())
    finally:
        core.close()
    assert batch["state"] == "superseded" and batch["passages"] == PART == members[0]["n"]
    assert report.cut[-1].passages == PART and left == 100 - PART


def test_a_stop_between_two_parts_writes_the_smaller_suppression_whole(
    tmp_path: Path, shared_dir: Path
) -> None:
    core, _ = make_core(tmp_path, batching={"max_records": 100})
    stopping = threading.Event()

    def stop_after_the_first_part(_: int) -> None:
        if _in_suppressions(core) == PART:
            stopping.set()

    try:
        events = _revoked(core, shared_dir, 100)
        with after_each_commit(core, stop_after_the_first_part):
            stopped = core.flusher.flush(force=True, stopping=stopping)
        with core.store.reading() as reader:
            left = len(reader.suppressible())
        rest = core.flusher.flush(force=True)
    finally:
        core.close()
    assert stopped.ok and [c.passages for c in stopped.cut] == [PART] and left == 100 - PART
    (first,) = stopped.written
    assert len(id_techniques(first.path)) == PART
    (second,) = rest.written
    seen = Counter([*id_techniques(first.path), *id_techniques(second.path)])
    assert set(seen.values()) == {1} and seen.keys() == {e["record_id"] for e in events}


def test_two_flushers_never_send_one_withdrawal_twice(tmp_path: Path, shared_dir: Path) -> None:
    """Another flusher (another store on the same state) that plans while the file is half
    cut plans the records still to take; it cuts none of them once the first has."""
    cutting, _ = make_core(tmp_path, batching={"max_records": 100})
    other, _ = make_core(tmp_path, batching={"max_records": 100})
    other_report = FlushReport()
    planned_by_the_other: list[int] = []
    other_reading = other.store.reading

    def other_cut() -> None:
        with other_reading() as reader:
            planned_by_the_other.append(len(reader.suppressible()))
        other.flusher.cut(other_report, force=True)

    cutting_after = threading.Thread(target=other_cut)

    def start_the_other_after_the_first_part(_: int) -> None:
        if cutting_after.ident is None and _in_suppressions(cutting) == PART:
            cutting_after.start()

    try:
        events = _revoked(cutting, shared_dir, 100)
        report = FlushReport()
        with after_each_commit(cutting, start_the_other_after_the_first_part):
            cutting.flusher.cut(report, force=True)
        cutting_after.join(WAIT)
        assert not cutting_after.is_alive()
        members = rows(
            cutting,
            "SELECT m.record_id FROM batch_members m JOIN batches b ON b.batch_id = m.batch_id "
            "WHERE b.action = 'SUPPRESSION'",
        )
    finally:
        cutting.close()
        other.close()
    assert planned_by_the_other and planned_by_the_other[0] >= 100 - 2 * PART
    assert [c.passages for c in report.cut] == [100] and other_report.cut == []
    seen = Counter(m["record_id"] for m in members)
    assert set(seen.values()) == {1} and seen.keys() == {e["record_id"] for e in events}


def test_a_flush_killed_between_two_parts_of_a_suppression_loses_and_repeats_nothing(
    tmp_path: Path, shared_dir: Path
) -> None:
    config = write_config(tmp_path, max_records=200, version="1.1.5")
    events = write_generated_events(config, tmp_path / "events.jsonl", 150, seed=8)
    delivered = [json.loads(line) for line in events.read_text().splitlines()]
    record_ids = [e["record_id"] for e in delivered]
    by_certifier = Counter(e["certifier"] for e in delivered)
    most, count = by_certifier.most_common(1)[0]
    assert count > 2 * PART, "the SUPPRESSION needs more than two parts"
    revoked = [e for e in delivered if e["certifier"] == most]
    finished(cli_command(config, "ingest", str(events)), cwd=tmp_path)
    finished(cli_command(config, "flush", "--force"), cwd=tmp_path)
    state = tmp_path / "state.db"
    for number, creation in enumerate(query(state, "SELECT batch_id, file_name FROM batches")):
        report = tmp_path / f"report-{number}.xml"
        report.write_bytes(
            processed_report(
                shared_dir,
                file_name=creation["file_name"],
                id_flux=creation["batch_id"],
                ok=record_ids,
            )
        )
        finished(cli_command(config, "import-report", str(report)), cwd=tmp_path)
    accepted = query(state, "SELECT count(*) AS n FROM records WHERE status = 'accepted'")
    assert accepted[0]["n"] == len(record_ids)
    revocations = tmp_path / "revocations.jsonl"
    with revocations.open("w", encoding="utf-8") as out:
        for event in revoked:
            out.write(json.dumps(_revocation(event)) + "\n")
    finished(cli_command(config, "ingest", str(revocations)), cwd=tmp_path)
    killed_at("flush:cut-part", config, "flush", "--force", cwd=tmp_path, constants=CUT_PARTS)
    (half,) = query(
        state, "SELECT batch_id, state, passages FROM batches WHERE action = 'SUPPRESSION'"
    )
    assert (half["state"], half["passages"]) == ("cut", 2 * PART)
    finished(cli_command(config, "flush", "--force"), cwd=tmp_path)
    withdrawn = [
        path for path in released_files(tmp_path / "outbox") if action_of(path) == "SUPPRESSION"
    ]
    seen = Counter(i for path in withdrawn for i in id_techniques(path))
    assert set(seen.values()) == {1} and seen.keys() == {e["record_id"] for e in revoked}
    (file,) = query(state, "SELECT file_path FROM batches WHERE batch_id = ?", [half["batch_id"]])
    assert len(id_techniques(Path(file["file_path"]))) == 2 * PART
