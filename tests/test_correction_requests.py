"""Correction requests (CONTRACT §9) through the store, the service, the CLI and HTTP.

Cores are built by the composition root on a TOML file with a `FixedClock` (2026-12-01,
Paris); the CLI runs on the system clock, so its dates are taken relative to the real today.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from accrochage.api import schemas as s
from accrochage.api.openapi import openapi
from accrochage.app import Core
from accrochage.cli import main
from accrochage.commands.record_text import record_cell, request_steps
from accrochage.errors import BadParameter
from accrochage.models.corrections import RequestClosed, RequestClosure, RequestNotFound
from accrochage.models.deadline import PARIS, FixedClock, SystemClock, paris_today
from accrochage.models.problems import GIVEN_TWICE
from accrochage.streams.doctor_files import requests_of_another_certifier_findings
from accrochage.streams.receivers import Receiver, Webhook
from tests.test_alerts import REPEAT, receiver, tick
from tests.test_http import serving
from tests.test_metrics import scrape, total
from tests.test_tracker import (
    TODAY,
    event,
    ingest,
    make_core,
    outstanding,
    outstanding_ids,
    record,
    write_config,
)

CONTRACT_KEYS = [
    "request_id",
    "record_id",
    "certifier",
    "source",
    "received_on",
    "deadline",
    "days_left",
    "status",
    "answer",
]
TOKEN = "operator-token-0123456789-abcdefghij"


def path_of(request: dict[str, Any]) -> str:
    return f"/correction-requests/{request['request_id']}/answer"


@pytest.fixture()
def core(tmp_path: Path) -> Iterator[Core]:
    built, _ = make_core(tmp_path)
    yield built
    built.close()


def accept(core: Core, *record_ids: str) -> None:
    """Records the CDC accepted (what an imported report does to them)."""
    conn = sqlite3.connect(core.settings.paths.state)
    try:
        conn.executemany(
            "UPDATE records SET status = 'accepted', outstanding = 0 WHERE record_id = ?",
            [(r,) for r in record_ids],
        )
        conn.commit()
    finally:
        conn.close()


def listed(core: Core, *, open_only: bool = False, as_of: date = TODAY) -> list[dict[str, Any]]:
    return core.corrections.list(open_only=open_only, as_of=as_of)


# -- the service and the store ---------------------------------------------------------------


def test_deadline_shape_and_urgency_by_as_of(core: Core) -> None:
    ingest(core, event("PX-1"))
    first = core.corrections.add("PX-1", date(2026, 1, 31), note="asked by phone")
    assert first.record_known and first.request.deadline == date(2026, 4, 30)
    soon = core.corrections.add("PX-1", date(2026, 9, 10), source="holder")
    rows = listed(core)
    assert [r["request_id"] for r in rows] == [first.request.request_id, soon.request.request_id]
    assert list(rows[0])[: len(CONTRACT_KEYS)] == CONTRACT_KEYS
    assert rows[0] | {"request_id": "x", "opened_at": "y"} == {
        "request_id": "x",
        "record_id": "PX-1",
        "certifier": "pix",
        "source": "cdc",
        "received_on": "2026-01-31",
        "deadline": "2026-04-30",
        "days_left": (date(2026, 4, 30) - TODAY).days,
        "status": "open",
        "answer": None,
        "at_risk": False,
        "overdue": True,
        "note": "asked by phone",
        "opened_at": "y",
    }
    assert rows[1]["at_risk"] and not rows[1]["overdue"] and rows[1]["days_left"] == 9
    assert rows[1]["source"] == "holder"
    later = listed(core, as_of=date(2026, 12, 11))[1]
    assert later["overdue"] and not later["at_risk"] and later["days_left"] == -1
    early = listed(core, as_of=date(2026, 11, 1))[1]
    assert not early["overdue"] and not early["at_risk"]
    with core.store.reading() as reader:
        summary = reader.summary(TODAY, core.settings.batching.margin_days)
    assert summary["correction_requests"] == {
        "open": 2,
        "at_risk": 1,
        "overdue": 1,
        "by_certifier": {"pix": {"open": 2, "at_risk": 1, "overdue": 1}},
    }


def test_answered_unfounded_corrected_by_hand_and_never_twice(core: Core) -> None:
    ingest(core, event("PX-1"))
    one = core.corrections.add("PX-1", date(2026, 11, 20)).request.request_id
    two = core.corrections.add("PX-1", date(2026, 11, 21)).request.request_id
    with pytest.raises(BadParameter, match="reason"):
        core.corrections.answer(one, unfounded=" ")
    with pytest.raises(BadParameter, match="exactly one"):
        core.corrections.answer(one, unfounded="x", corrected=True)
    done = core.corrections.answer(one, unfounded="the birth date is the diploma's")
    assert done["status"] == "answered"
    assert done["answer"]["kind"] == "unfounded" and done["answer"]["at"].startswith("2026-12-01")
    assert done["answer"]["text"] == "the birth date is the diploma's"
    assert core.corrections.answer(two, corrected=True)["status"] == "corrected"
    with pytest.raises(RequestClosed, match="already answered"):
        core.corrections.answer(one, corrected=True)
    with pytest.raises(RequestClosed, match="already answered"):
        core.corrections.answer(one, unfounded="another reason")
    again = core.corrections.answer(one, unfounded=" the birth date is the diploma's ")
    assert again == done, "the same answer again (a retry whose answer was lost) is that answer"
    assert core.corrections.answer(two, corrected=True)["status"] == "corrected"
    with pytest.raises(RequestNotFound):
        core.corrections.answer("CR-NOPE", corrected=True)
    assert listed(core, open_only=True) == []
    assert [r["status"] for r in listed(core)] == ["answered", "corrected"]
    # Closed: no deadline runs (it read "-1 days" the day after, as if overdue).
    assert [r["days_left"] for r in listed(core)] == [None, None]
    assert [r["overdue"] for r in listed(core, as_of=date(2027, 6, 1))] == [False, False]
    assert record(core, "PX-1")["correction_request"] is None


def test_an_answer_by_hand_is_in_the_record_s_history_as_a_closure_by_the_cdc_is(
    core: Core,
) -> None:
    """A holder who says the request was never answered is shown the record's history (and
    its evidence's history.json): an answer by hand is there once, with when, and without the
    operator's free text (it may name the person)."""
    ingest(core, event("PX-1"))
    one = core.corrections.add("PX-1", date(2026, 11, 20)).request.request_id
    two = core.corrections.add("PX-1", date(2026, 11, 21)).request.request_id
    before = len(record(core, "PX-1")["history"])
    core.corrections.answer(one, unfounded="the birth name is Haba, as on the diploma")
    core.corrections.answer(one, unfounded="the birth name is Haba, as on the diploma")
    core.corrections.answer(two, corrected=True)
    added = record(core, "PX-1")["history"][before:]
    assert [(e["from_status"], e["to_status"]) for e in added] == [("pending", "pending")] * 2
    assert added[0]["at"].startswith("2026-12-01")
    assert added[0]["reason"] == (
        f"correction request {one} closed: unfounded, answered by the operator"
    )
    assert added[1]["reason"] == (
        f"correction request {two} closed: corrected data sent (declared by the operator)"
    )


def test_a_request_entered_by_mistake_is_cancelled_and_holds_nothing(core: Core) -> None:
    """A request typed on the wrong record id (or day) could only be answered unfounded or
    corrected: a false answer, in the evidence of a record no one asked about. Cancelled, it
    says it was entered by mistake and what was meant; it no longer holds its record."""
    ingest(core, event("PX-1"), event("PX-11"))
    accept(core, "PX-1", "PX-11")
    wrong = core.corrections.add("PX-11", date(2026, 11, 20)).request.request_id
    assert outstanding_ids(core) == ["PX-11"], "an open request holds an accepted record"
    with pytest.raises(BadParameter, match="what was meant"):
        core.corrections.answer(wrong, cancelled="  ")
    with pytest.raises(BadParameter, match="exactly one"):
        core.corrections.answer(wrong, cancelled="PX-1 was meant", corrected=True)
    before = len(record(core, "PX-11")["history"])
    done = core.corrections.answer(wrong, cancelled="PX-1 was meant")
    assert done["status"] == "cancelled" and done["answer"]["kind"] == "cancelled"
    assert done["answer"]["text"] == "PX-1 was meant" and done["days_left"] is None
    assert core.corrections.answer(wrong, cancelled="PX-1 was meant") == done, "a retry"
    with pytest.raises(RequestClosed, match="already cancelled"):
        core.corrections.answer(wrong, unfounded="right as sent")
    assert outstanding_ids(core) == []
    (entry,) = record(core, "PX-11")["history"][before:]
    assert entry["reason"] == (
        f"correction request {wrong} closed: cancelled by the operator, entered by mistake"
    )
    with core.store.reading() as reader:
        assert reader.summary(TODAY, 14)["correction_requests"]["open"] == 0


def test_a_request_on_an_unknown_record_attaches_when_the_record_arrives(core: Core) -> None:
    opened = core.corrections.add("OLD-7", date(2026, 11, 25), certifier="school")
    assert not opened.record_known and opened.json["certifier"] == "school"
    bare = core.corrections.add("OLD-8", date(2026, 11, 25))
    assert bare.json["certifier"] is None
    assert "OLD-7" not in outstanding_ids(core)
    with pytest.raises(BadParameter, match="unknown certifier"):
        core.corrections.add("OLD-9", date(2026, 11, 25), certifier="nobody")
    ingest(core, event("OLD-8"))
    (row,) = [r for r in outstanding(core) if r["record_id"] == "OLD-8"]
    assert row["correction_request"] == {
        "request_id": bare.request.request_id,
        "deadline": "2027-02-25",
        "days_left": (date(2027, 2, 25) - TODAY).days,
        "status": "open",
    }
    detail = record(core, "OLD-8")
    assert detail["correction_request"]["request_id"] == bare.request.request_id
    assert [r["request_id"] for r in detail["correction_requests"]] == [bare.request.request_id]
    shown = {r["record_id"]: r["certifier"] for r in listed(core)}
    assert shown == {"OLD-7": "school", "OLD-8": "pix"}  # the record's, now that it is known
    with pytest.raises(BadParameter, match="belongs to pix"):
        core.corrections.add("OLD-8", date(2026, 11, 25), certifier="school")


def test_a_request_entered_for_the_wrong_certifier_counts_under_the_record_s(core: Core) -> None:
    """Entered with `--certifier pix` before its record arrived, the record is school's: the
    request is owed by school (its counts, its alert, its listing), not by pix."""
    core.corrections.add("OLD-10", date(2026, 11, 25), certifier="pix")
    ingest(core, event("OLD-10", certifier="school"))
    assert {r["record_id"]: r["certifier"] for r in listed(core)} == {"OLD-10": "school"}
    with core.store.reading() as reader:
        summary = reader.summary(TODAY, core.settings.batching.margin_days)
    assert set(summary["correction_requests"]["by_certifier"]) == {"school"}


def test_a_request_entered_for_another_certifier_is_closed_by_no_acceptance(
    tmp_path: Path,
) -> None:
    """A request entered for school, its id then taken by a pix record (a mistyped
    `--certifier`, or pix's platform using school's id): pix's acceptance closed school's
    legal request as corrected. It waits for the operator now, and doctor names it."""
    core, clock = make_core(tmp_path)
    try:
        asked = core.corrections.add("TTP-1", date(2026, 11, 25), certifier="school")
        ingest(core, event("TTP-1"))  # a pix record
        clock.advance(timedelta(hours=1))
        with core.store.transaction() as tx:
            closed = tx.close_correction_requests(
                [RequestClosure("TTP-1", 1)], clock.now(), "report-ok.xml"
            )
        assert closed == []
        (still,) = listed(core)
        assert (still["request_id"], still["status"]) == (asked.request.request_id, "open")
        with core.store.reading() as reader:
            assert reader.requests_of_another_certifier() == [
                (asked.request.request_id, "TTP-1", "school", "pix")
            ]
        (said,) = requests_of_another_certifier_findings(core.store)
        assert said.action and f"request {asked.request.request_id} of school" in said.message
        assert "TTP-1, a record of pix" in said.message
        assert "--cancelled TEXT" in said.message, "a mistyped request is no unfounded one"
        assert "--unfounded" not in said.message
    finally:
        core.close()


def test_a_request_entered_again_in_other_words_is_that_request(core: Core) -> None:
    """Naming the record's own certifier, or the note's accent written apart (as macOS
    writes it): the same request, not a second one counted and alerting beside it."""
    import unicodedata

    ingest(core, event("DUP-1"))
    note = "rappeler Mme Lefèvre"
    first = core.corrections.add("DUP-1", TODAY, note=note)
    named = core.corrections.add("DUP-1", TODAY, note=note, certifier="pix")
    decomposed = core.corrections.add("DUP-1", TODAY, note=unicodedata.normalize("NFD", note))
    assert named.already and decomposed.already
    assert {named.request.request_id, decomposed.request.request_id} == {first.request.request_id}
    assert len(listed(core)) == 1


def test_an_accepted_record_with_an_open_request_is_outstanding(core: Core) -> None:
    ingest(core, event("PX-1"), event("PX-2"), event("PX-3", delivered_on="2026-09-01"))
    accept(core, "PX-1", "PX-2")
    assert outstanding_ids(core) == ["PX-3"]
    request = core.corrections.add("PX-1", date(2026, 9, 15)).request
    rows = outstanding(core)
    assert [r["record_id"] for r in rows] == ["PX-3", "PX-1"]  # by deadline: 12-01, 12-15
    held = rows[1]
    assert held["status"] == "accepted" and held["deadline"] == "2026-12-15"
    assert held["correction_request"]["request_id"] == request.request_id
    assert outstanding_ids(core, due_within=14) == ["PX-3", "PX-1"]
    assert outstanding_ids(core, due_within=13) == ["PX-3"]
    assert outstanding_ids(core, overdue=True) == []
    assert outstanding_ids(core, limit=1) == ["PX-3"]
    assert outstanding_ids(core, statuses=("accepted",)) == ["PX-1"]
    assert outstanding_ids(core, certifier="school") == []
    every = outstanding(core, only_outstanding=False)
    assert [r["record_id"] for r in every] == ["PX-3", "PX-1", "PX-2"]
    assert every[2]["correction_request"] is None
    with core.store.reading() as reader:
        summary = reader.summary(TODAY, 14)
    assert summary["outstanding"] == 2 and summary["correction_requests"]["at_risk"] == 1
    (step,) = request_steps(record(core, "PX-1"))  # what `show` says next
    assert f"correction-request answer {request.request_id} --corrected" in step
    assert request_steps(record(core, "PX-2")) == [], "no request open"
    core.corrections.add("PX-3", date(2026, 9, 15))
    assert request_steps(record(core, "PX-3")) == [], "not accepted: sent first"


def test_a_request_due_before_the_records_own_deadline_is_what_is_due(core: Core) -> None:
    """A holder asks on 10 September; the record, rejected, is corrected with a later
    delivery date: its own deadline (20 February) came before the request's (10 December) in
    every listing, so `--due-within 14` and the batch plan missed what the law makes due."""
    ingest(core, event("PX-5", delivered_on="2026-11-20"), event("PX-6"))
    request = core.corrections.add("PX-5", date(2026, 9, 10)).request
    core.corrections.add("PX-6", date(2026, 11, 25))  # due 2027-02-25, after its own
    rows = {r["record_id"]: r for r in outstanding(core)}
    assert (rows["PX-5"]["deadline"], rows["PX-5"]["days_left"]) == ("2026-12-10", 9)
    assert rows["PX-5"]["correction_request"]["request_id"] == request.request_id
    assert rows["PX-6"]["deadline"] == record(core, "PX-6")["deadline"] != "2027-02-25"
    assert outstanding_ids(core, due_within=14) == ["PX-5"]
    assert record(core, "PX-5")["deadline"] == "2026-12-10", "show agrees"
    ingest(core, event("PX-8", delivered_on="2026-09-05"))  # its own: 5 December
    core.corrections.add("PX-8", date(2026, 9, 1))  # due today: held, counted once
    assert outstanding_ids(core, due_within=14) == ["PX-8", "PX-5"]
    with core.store.reading() as reader:
        assert reader.summary(TODAY, 14)["at_risk"] == 2
        seen = reader.observe(TODAY, 14, datetime(2026, 12, 1, tzinfo=UTC))
        assert seen.at_risk == {"pix": 2} and seen.overdue == {}
        assert seen.next_deadline["pix"] == TODAY
    cut = core.flusher.flush()
    assert cut.ok and len(cut.written) == 1, "the plan cuts the file: a record of it is due"
    assert record(core, "PX-5")["status"] == "batched"


def test_a_record_whose_delivery_date_is_unknown_stays_at_risk_with_a_request(
    core: Core,
) -> None:
    """Opening a request is no correction: the record's delivery is still due on a day
    nobody knows, perhaps long past. It took the request's deadline (62 days away) and left
    the at-risk and unknown counts; it stays in both, shown with the request's deadline (the
    one day known to be due), until that passes: then it is overdue."""
    ingest(core, event("PX-7", delivered_on="2026-02-30"))
    with core.store.reading() as reader:
        before = reader.summary(TODAY, 14)
    assert before["deadline_unknown"] == 1 and before["at_risk"] == 1
    core.corrections.add("PX-7", date(2026, 11, 1))

    def counts(as_of: date) -> tuple[int, int, int, int, int, int]:
        with core.store.reading() as reader:
            summary = reader.summary(as_of, 14)
            seen = reader.observe(as_of, 14, datetime(2026, 12, 1, tzinfo=UTC))
        return (
            summary["deadline_unknown"],
            summary["at_risk"],
            summary["overdue"],
            sum(seen.deadline_unknown.values()),
            sum(seen.at_risk.values()),
            sum(seen.overdue.values()),
        )

    assert counts(TODAY) == (1, 1, 0, 1, 1, 0)
    # Its request late: overdue, and no longer among the at-risk records of unknown date.
    assert counts(date(2027, 2, 2)) == (0, 0, 1, 0, 0, 1)
    with core.store.reading() as reader:
        (soon,) = reader.summary(TODAY, 14)["next_deadlines"]
        assert (soon["record_id"], soon["urgency"]) == ("PX-7", "at_risk"), "not on_time"
        chart = reader.dashboard(TODAY).deadlines
        seen = reader.observe(TODAY, 14, datetime(2026, 12, 1, tzinfo=UTC))
        assert chart == {} and seen.deadline_unknown == {"pix": 1}, "one bar: date unknown"
        late = date(2027, 2, 2)
        assert reader.dashboard(late).deadlines == {("pix", date(2027, 2, 1)): 1}
    (row,) = outstanding(core)
    assert (row["deadline"], row["days_left"]) == ("2027-02-01", 62)
    assert outstanding_ids(core, deadline_unknown=True) == ["PX-7"]
    assert record(core, "PX-7")["deadline"] == "2027-02-01"


def test_the_deadline_unknown_listing_holds_what_the_summary_counts_there(core: Core) -> None:
    """The summary says how many records are due on a day unknown, "listed by `outstanding
    --deadline-unknown`". One whose open request is late counts overdue instead: the listing
    still showed it there, one more than the count, while `--overdue` lists it too."""
    ingest(core, event("PX-7", delivered_on="2026-02-30"), event("PX-8", delivered_on="02/30"))
    core.corrections.add("PX-7", date(2026, 11, 1))  # due 2027-02-01
    for day in (date(2027, 2, 1), date(2027, 2, 2)):
        with core.store.reading() as reader:
            counted = reader.summary(day, 14)["deadline_unknown"]
        listed = outstanding_ids(core, as_of=day, deadline_unknown=True)
        assert counted == len(listed), (day, counted, listed)
    assert outstanding_ids(core, as_of=date(2027, 2, 1), deadline_unknown=True) == [
        "PX-7",
        "PX-8",
    ]
    assert outstanding_ids(core, as_of=date(2027, 2, 2), deadline_unknown=True) == ["PX-8"]
    assert outstanding_ids(core, as_of=date(2027, 2, 2), overdue=True) == ["PX-7"]


def test_an_acceptance_closes_only_requests_opened_before_its_content(
    tmp_path: Path,
) -> None:
    core, clock = make_core(tmp_path)
    try:
        ingest(core, event("PX-1"), event("PX-2"), event("PX-3"))  # content v1 of each
        clock.advance(timedelta(hours=1))
        first = core.corrections.add("PX-1", date(2026, 11, 30)).request.request_id
        core.corrections.add("PX-2", date(2026, 11, 30))
        gone = core.corrections.add("PX-3", date(2026, 11, 30)).request.request_id
        clock.advance(timedelta(hours=1))
        with core.store.transaction() as tx:
            assert tx.correction_deadlines(["PX-1", "PX-2", "NONE"]) == {
                "PX-1": date(2027, 2, 28),
                "PX-2": date(2027, 2, 28),
            }
            stale = tx.close_correction_requests(
                [RequestClosure("PX-1", 1)], clock.now(), "report-old.xml"
            )
        assert stale == []  # v1 was stored before the request: not its correction
        ingest(core, event("PX-1", score="300"))  # corrected content, v2
        clock.advance(timedelta(hours=1))
        late = core.corrections.add("PX-1", date(2026, 12, 1)).request.request_id
        with core.store.transaction() as tx:
            closed = tx.close_correction_requests(
                [RequestClosure("PX-1", 2), RequestClosure("PX-3", None)],
                clock.now() - timedelta(minutes=30),
                "report-ok.xml",
            )
        assert closed == [first, gone]  # `late` was opened after the acceptance
        by_id = {r["request_id"]: r for r in listed(core)}
        assert by_id[first]["status"] == "corrected"
        assert "report-ok.xml" in by_id[first]["answer"]["text"]
        assert by_id[late]["status"] == "open"
        detail = record(core, "PX-1")
        assert detail["correction_request"]["request_id"] == late
        (entry,) = [h for h in detail["history"] if first in h["reason"]]
        assert entry["from_status"] == entry["to_status"] == detail["status"]
        assert entry["reason"].startswith(f"correction request {first} closed: ")
    finally:
        core.close()


def test_the_content_the_cdc_held_accepted_again_answers_nothing(
    tmp_path: Path, shared_dir: Path
) -> None:
    """Accepted, asked to correct, corrected, then the correction taken back after its
    SUPPRESSION left: the CDC deletes, then accepts again exactly what it held when the
    request came. Nothing was corrected: the request stays open, its deadline running."""
    from tests.test_cdc_loop import accepted, action_of, answer, flush, only_written
    from tests.test_tracker import replay

    core, clock = make_core(tmp_path, schema={"version": "1.1.5"})
    try:
        original = event("HH-1", score="100")
        accepted(core, shared_dir, original)
        clock.advance(timedelta(hours=1))
        asked = core.corrections.add("HH-1", TODAY).request.request_id
        clock.advance(timedelta(hours=1))
        ingest(core, dict(replay(original), score="200"))
        suppression, path = only_written(flush(core))
        assert action_of(path) == "SUPPRESSION"
        core.operations.deposited([suppression])
        clock.advance(timedelta(hours=1))
        assert ingest(core, replay(original))[0].outcome == "correction_stored"

        answer(core, shared_dir, suppression, ok=["HH-1"])
        creation, path = only_written(flush(core))
        assert action_of(path) == "CREATION"
        clock.advance(timedelta(hours=1))
        answer(core, shared_dir, creation, ok=["HH-1"])
        assert record(core, "HH-1")["status"] == "accepted"
        (request,) = listed(core)
        assert (request["request_id"], request["status"]) == (asked, "open")
        assert record(core, "HH-1")["correction_request"]["request_id"] == asked
    finally:
        core.close()


def test_existe_deja_for_a_first_sending_answers_no_request(
    tmp_path: Path, shared_dir: Path
) -> None:
    """Requests on records the tracker did not know yet (older data, at the CDC already): the
    records' first CREATION answered "existe déjà en base", under their own idTechnique or
    another one. The CDC kept the passage it held, whatever that holds: nothing was corrected,
    so the requests stay open, their deadlines running (the operator answers them)."""
    from tests.test_cdc_loop import answer, flush, only_written
    from tests.test_tracker import ALREADY

    core, clock = make_core(tmp_path, schema={"version": "1.1.5"})
    try:
        same = core.corrections.add("OLD-1", TODAY).request.request_id
        other = core.corrections.add("OLD-2", TODAY).request.request_id
        clock.advance(timedelta(hours=1))
        ingest(core, event("OLD-1"), event("OLD-2"))
        creation, _ = only_written(flush(core))
        clock.advance(timedelta(hours=1))
        kept = {"OLD-1": ALREADY.format(rid="OLD-1"), "OLD-2": ALREADY.format(rid="1559735")}
        summary = answer(core, shared_dir, creation, ko=kept)
        assert summary.requests_closed == []
        assert record(core, "OLD-1")["status"] == record(core, "OLD-2")["status"] == "accepted"
        assert {r["request_id"]: r["status"] for r in listed(core)} == {
            same: "open",
            other: "open",
        }
        assert record(core, "OLD-1")["correction_request"]["request_id"] == same
        assert record(core, "OLD-2")["correction_request"]["request_id"] == other
    finally:
        core.close()


def test_the_problem_cell_of_an_accepted_record_names_its_open_request(
    tmp_path: Path, shared_dir: Path
) -> None:
    """Accepted with "existe déjà en base", outstanding for its request alone: the listings'
    problem column names the request (what is due), not the acceptance's message."""
    from tests.test_cdc_loop import answer, flush, only_written
    from tests.test_tracker import ALREADY

    core, clock = make_core(tmp_path, schema={"version": "1.1.5"})
    try:
        request = core.corrections.add("OLD-3", TODAY).request
        clock.advance(timedelta(hours=1))
        ingest(core, event("OLD-3"), event("OLD-4"))
        creation, _ = only_written(flush(core))
        clock.advance(timedelta(hours=1))
        kept = {rid: ALREADY.format(rid=rid) for rid in ("OLD-3", "OLD-4")}
        answer(core, shared_dir, creation, ko=kept)
        (row,) = outstanding(core)
        assert record_cell(row, "problem") == (
            f"correction request {request.request_id} due {request.deadline.isoformat()}"
        )
        assert record_cell(record(core, "OLD-4"), "problem").startswith("CDC already_exists: "), (
            "said still"
        )
    finally:
        core.close()


def test_a_withdrawal_closes_a_request_as_a_withdrawal(tmp_path: Path, shared_dir: Path) -> None:
    from tests.factories import revoked_event
    from tests.test_cdc_loop import accepted, answer, flush, only_written

    core, clock = make_core(tmp_path, schema={"version": "1.1.5"})
    try:
        accepted(core, shared_dir, event("WD-1"))
        clock.advance(timedelta(hours=1))
        core.corrections.add("WD-1", TODAY)
        ingest(core, revoked_event(record_id="WD-1"))
        suppression, _ = only_written(flush(core))
        answer(core, shared_dir, suppression, ok=["WD-1"])
        (request,) = listed(core)
        assert request["status"] == "corrected"
        assert request["answer"]["text"].startswith("record withdrawn from the CDC (")
    finally:
        core.close()


# -- metrics and alerts ----------------------------------------------------------------------


def test_the_gauge_and_the_at_risk_alert(tmp_path: Path) -> None:
    from accrochage.runtimes.watching import watch_for

    core, _ = make_core(tmp_path)
    with receiver() as (url, sink):
        hook: list[Receiver] = [Webhook(url + "/hook", REPEAT)]
        try:
            ingest(core, event("PX-1"), event("SC-1", certifier="school"))
            accept(core, "PX-1", "SC-1")
            core.corrections.add("PX-1", date(2026, 11, 20))  # due 2027-02-20: not at risk
            watch_for(core).run()
            samples = scrape(core.metrics)
            assert total(samples, "accrochage_correction_requests_open", certifier="pix") == 1
            assert total(samples, "accrochage_correction_requests_open", certifier="school") == 0
            tick(core, hook)
            assert sink.bodies() == []
            late = core.corrections.add("SC-1", date(2026, 8, 1))  # due 2026-11-01: overdue
            tick(core, hook)
            firing = sink.bodies()
            # The accepted record it holds is overdue with it, as `outstanding --overdue` lists
            # it: the records' alerts fire as for any overdue record (CONTRACT §10).
            assert sorted(
                (f["alerts"][0]["labels"]["alertname"], f["alerts"][0]["labels"]["severity"])
                for f in firing
            ) == [
                ("AccrochageCorrectionRequestAtRisk", "warning"),
                ("AccrochageRecordsAtRisk", "warning"),
                ("AccrochageRecordsOverdue", "critical"),
            ]
            assert {f["alerts"][0]["labels"]["certifier"] for f in firing} == {"school"}
            assert "SC-1" not in json.dumps(firing)
            core.corrections.answer(late.request.request_id, unfounded="the data is right")
            tick(core, hook)
            assert [f["status"] for f in sink.bodies()[3:]] == ["resolved"] * 3
        finally:
            core.close()


# -- the command line ------------------------------------------------------------------------


def run(config: Path, *args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(main, ["--config", str(config), *args], catch_exceptions=False)
    assert result.exit_code == code, (result.stdout, result.stderr)
    return result


def test_the_commands(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    today = paris_today(SystemClock())
    ingest_file = tmp_path / "events.jsonl"
    delivered = (today - timedelta(days=10)).isoformat()
    ingest_file.write_text(json.dumps(event("PX-1", delivered_on=delivered)) + "\n")
    run(config, "ingest", str(ingest_file))
    received = (today - timedelta(days=3)).isoformat()
    added = run(config, "correction-request", "add", "PX-1", "--received-on", received)
    request_id = added.stdout.strip()
    assert request_id.startswith("CR-") and not added.stderr
    twice = run(config, "correction-request", "add", "PX-1", "--received-on", received)
    assert twice.stdout.strip() == request_id and "open already" in twice.stderr
    unknown = run(
        config, "correction-request", "add", "NEW-1", "--received-on", received,
        "--source", "holder", "--note", "call Mme X back",
    )  # fmt: skip
    assert "does not know record NEW-1" in unknown.stderr
    rows = json.loads(run(config, "correction-request", "list", "--format", "json").stdout)
    assert [list(r)[: len(CONTRACT_KEYS)] for r in rows] == [CONTRACT_KEYS] * 2
    assert {r["record_id"]: r["certifier"] for r in rows} == {"PX-1": "pix", "NEW-1": None}
    table = run(config, "correction-request", "list", "--open").stdout
    assert request_id in table and "NEW-1" in table
    csv_text = run(config, "correction-request", "list", "--format", "csv").stdout
    assert csv_text.splitlines()[0].startswith(",".join(CONTRACT_KEYS))
    run(config, "correction-request", "answer", request_id, code=2)
    both = ("--unfounded", "x", "--corrected")
    run(config, "correction-request", "answer", request_id, *both, code=2)
    done = run(config, "correction-request", "answer", request_id, "--unfounded", "right as sent")
    assert done.stdout.strip() == f"{request_id}: answered (unfounded)"
    again = run(config, "correction-request", "answer", request_id, "--corrected", code=1)
    assert "already answered" in again.stderr
    mistaken = run(config, "correction-request", "add", "PX-1", "--received-on", today.isoformat())
    mistaken_id = mistaken.stdout.strip()
    three = ("--cancelled", "x", "--corrected")
    run(config, "correction-request", "answer", mistaken_id, *three, code=2)
    cancelled = run(
        config, "correction-request", "answer", mistaken_id, "--cancelled", "meant PX-2"
    )
    assert cancelled.stdout.strip() == f"{mistaken_id}: cancelled (cancelled)"
    missing = run(config, "correction-request", "answer", "CR-0", "--corrected", code=1)
    assert "no correction request" in missing.stderr
    summary = run(config, "summary").stdout
    assert "correction requests: 1 open" in summary
    shown = json.loads(run(config, "show", "PX-1", "--format", "json").stdout)
    statuses = {r["request_id"]: r["status"] for r in shown["correction_requests"]}
    assert statuses == {request_id: "answered", mistaken_id: "cancelled"}
    outstanding_rows = json.loads(run(config, "outstanding", "--format", "json").stdout)
    assert outstanding_rows[0]["correction_request"] is None
    early = (today - timedelta(days=30)).isoformat()
    typo = run(config, "correction-request", "add", "PX-1", "--received-on", early)
    assert f"the request is dated {early}, before record PX-1 was delivered" in typo.stderr
    assert typo.stdout.strip().startswith("CR-"), "a warning: the request is opened"


# -- HTTP ------------------------------------------------------------------------------------


async def test_the_http_routes(tmp_path: Path) -> None:
    core, _ = make_core(tmp_path, api={"token": TOKEN})
    headers = {"Authorization": f"Bearer {TOKEN}"}
    try:
        ingest(core, event("PX-1"))
        async with serving(core) as client:

            async def call(method: str, path: str, body: Any = None, **kw: Any) -> Any:
                data = body if isinstance(body, str) else json.dumps(body)
                sent = {"Content-Type": "application/json", **kw.pop("headers", headers)}
                async with client.request(method, path, data=data, headers=sent, **kw) as response:
                    return response.status, await response.json()

            status, _ = await call("GET", "/correction-requests", headers={})
            assert status == 401
            new = {"record_id": "PX-1", "received_on": "2026-11-20", "note": "by mail"}
            status, opened = await call("POST", "/correction-requests", new)
            assert status == 201, opened
            s.CorrectionRequestOut.model_validate(opened)
            assert opened["deadline"] == "2027-02-20" and opened["certifier"] == "pix"
            assert opened["warnings"] == []
            # What the command says on stderr of a likely typo, the route answers too.
            typo = {"record_id": "PX-11", "received_on": "2026-11-20"}
            status, unknown = await call("POST", "/correction-requests", typo)
            assert status == 201 and unknown["certifier"] is None
            (warned,) = unknown["warnings"]
            assert warned["field"] == "record_id", warned
            assert "does not know record PX-11" in warned["message"]
            early = {"record_id": "PX-1", "received_on": "2020-01-02"}
            status, dated = await call("POST", "/correction-requests", early)
            assert status == 201
            assert [w["field"] for w in dated["warnings"]] == ["received_on"], dated
            assert "before record PX-1 was delivered" in dated["warnings"][0]["message"]
            for mistaken in (unknown, dated):
                path = f"/correction-requests/{mistaken['request_id']}/answer"
                status, closed = await call("POST", path, {"cancelled": "a typo"})
                assert (status, closed["status"]) == (200, "cancelled"), closed
            # Sent again (a retried POST): the same request, 200, nothing added; it made a
            # second open request, answered apart and alerting apart.
            status, again = await call("POST", "/correction-requests", new)
            assert (status, again["request_id"]) == (200, opened["request_id"]), again
            other = {**new, "note": "by phone, another field"}
            status, second = await call("POST", "/correction-requests", other)
            assert status == 201 and second["request_id"] != opened["request_id"]
            status, listed = await call("GET", "/correction-requests?open=true")
            assert len(listed["correction_requests"]) == 2, listed
            path = f"/correction-requests/{second['request_id']}/answer"
            status, _ = await call("POST", path, {"unfounded": "entered for the test"})
            assert status == 200
            status, _ = await call("POST", "/correction-requests", new, headers={})
            assert status == 401
            for bad, code in (
                ("not json", 400),
                ({"record_id": "PX-1"}, 422),
                ({"record_id": 7, "received_on": "2026-11-20"}, 422),
                ({"record_id": "PX-1", "received_on": "2026-02-30"}, 422),
                ({"record_id": "PX-1", "received_on": "2026-11-20", "x": 1}, 422),
                ({"record_id": "PX-1", "received_on": "2026-11-20", "source": "me"}, 422),
            ):
                status, error = await call("POST", "/correction-requests", bad)
                assert status == code, (bad, error)
                s.ErrorBody.model_validate(error)
            # Every field error of a body: 422 invalid_body naming its field. A lone surrogate
            # was a 500 (UnicodeEncodeError in the store); the rules of the request itself
            # were 400 bad_parameter without details.
            for field, bad_body in (
                ("note", '{"record_id": "PX-1", "received_on": "2026-11-20", "note": "a\\ud800"}'),
                ("note", {"record_id": "PX-1", "received_on": "2026-11-20", "note": "a\x00b"}),
                ("received_on", {"record_id": "PX-1", "received_on": "2099-11-20"}),
                ("record_id", {"record_id": " ", "received_on": "2026-11-20"}),
                ("certifier", {"record_id": "PX-1", "received_on": "2026-11-20", "certifier": "x"}),
            ):
                status, error = await call("POST", "/correction-requests", bad_body)
                assert (status, error["error"]["code"]) == (422, "invalid_body"), (bad_body, error)
                assert [d["field"] for d in error["error"]["details"]] == [field], error
            # In the events' words, not pydantic's; a key given twice is not read as its last.
            for bad_body, said in (
                ({"record_id": 7, "received_on": "2026-11-20"}, ["expected a string"]),
                ({"received_on": "2026-11-20"}, ["is required"]),
                (
                    {"record_id": "PX-1", "received_on": "2026-11-20", "source": "me"},
                    ["expected 'cdc' or 'holder'"],
                ),
                (
                    {"record_id": "PX-1", "received_on": "2026-11-20", "nte": "x"},
                    ["is not a field of a correction request (check its spelling)"],
                ),
                (
                    '{"record_id": "PX-1", "received_on": "2026-11-20", "record_id": "PX-2"}',
                    [GIVEN_TWICE],
                ),
                (  # beside the other errors; a nested object's keys are not the body's
                    '{"record_id": 5, "received_on": "2026-11-20", "nte": 1, "nte": 2, '
                    '"note": {"Jean Dupont": 1, "Jean Dupont": 2}}',
                    [
                        GIVEN_TWICE,
                        "expected a string",
                        "expected a string",
                        "is not a field of a correction request (check its spelling)",
                    ],
                ),
            ):
                status, error = await call("POST", "/correction-requests", bad_body)
                assert (status, error["error"]["code"]) == (422, "invalid_body"), (bad_body, error)
                assert [d["message"] for d in error["error"]["details"]] == said, error
                assert "Dupont" not in json.dumps(error)
            status, error = await call("POST", "/correction-requests", '[{"x": 1, "x": 2}]')
            assert (status, error["error"]["code"]) == (400, "bad_body")
            status, error = await call("POST", path_of(opened), {"corrected": "yes"})
            assert [d["message"] for d in error["error"]["details"]] == ["expected true or false"]
            status, page = await call("GET", "/correction-requests?open=true&as_of=2027-02-21")
            assert status == 200
            s.CorrectionRequestList.model_validate(page)
            (row,) = page["correction_requests"]
            assert row["overdue"] and row["days_left"] == -1
            status, error = await call("GET", "/correction-requests?open=maybe")
            assert status == 400
            path = path_of(opened)
            for bad in (
                {},
                {"corrected": False},
                {"corrected": True, "unfounded": "x"},
                {"cancelled": "x", "unfounded": "x"},
            ):
                status, error = await call("POST", path, bad)
                assert status == 422, (bad, error)
            for field, bad_answer in (
                ("unfounded", '{"unfounded": "a\\ud800"}'),
                ("unfounded", {"unfounded": "  "}),
                ("cancelled", {"cancelled": ""}),
            ):
                status, error = await call("POST", path, bad_answer)
                assert (status, error["error"]["code"]) == (422, "invalid_body"), error
                assert [d["field"] for d in error["error"]["details"]] == [field], error
            status, done = await call("POST", path, {"corrected": True})
            assert status == 200 and done["status"] == "corrected"
            s.CorrectionRequestOut.model_validate(done)
            assert await call("POST", path, {"corrected": True}) == (200, done), "a retry"
            status, error = await call("POST", path, {"unfounded": "no"})
            assert status == 409 and error["error"]["code"] == "request_closed"
            status, error = await call("POST", "/correction-requests/CR-NONE/answer", {})
            assert status == 422
            status, error = await call(
                "POST", "/correction-requests/CR-NONE/answer", {"corrected": True}
            )
            assert status == 404 and error["error"]["code"] == "not_found"
            status, detail = await call("GET", "/records/PX-1")
            s.RecordDetail.model_validate(detail)
            statuses = {r["request_id"]: r["status"] for r in detail["correction_requests"]}
            assert statuses == {
                opened["request_id"]: "corrected",
                second["request_id"]: "answered",
                dated["request_id"]: "cancelled",
            }
            status, records = await call("GET", "/records")
            s.RecordsPage.model_validate(records)
            status, summary = await call("GET", "/summary")
            s.Summary.model_validate(summary)
    finally:
        core.close()
    paths = openapi()["paths"]
    assert {"post", "get"} <= set(paths["/correction-requests"])
    answer = paths["/correction-requests/{request_id}/answer"]["post"]
    assert answer["security"] and "requestBody" in answer and "409" in answer["responses"]


def test_the_requests_one_certifier_owes(core: Core) -> None:
    """A trusted third party lists one certifier's requests (`--certifier`, `?certifier=`)."""
    ingest(core, event("OW-1"), event("OW-2", certifier="school"))
    core.corrections.add("OW-1", date(2026, 11, 25))
    core.corrections.add("OW-2", date(2026, 11, 25))
    core.corrections.add("OW-3", date(2026, 11, 25), certifier="school")  # not known yet
    owed = {
        key: sorted(r["record_id"] for r in core.corrections.list(certifier=key))
        for key in ("pix", "school", "nobody")
    }
    assert owed == {"pix": ["OW-1"], "school": ["OW-2", "OW-3"], "nobody": []}


def test_a_request_dated_tomorrow_in_paris_is_today_overseas(tmp_path: Path) -> None:
    """At 23:30 in Paris it is 02:30 the next day in La Réunion (and in New Caledonia from
    14:00): an operator there entering the day a request arrived was refused as "in the
    future". A day ahead of Paris is accepted with a warning (a mistyped day too would be:
    its deadline counts from it); two days ahead are refused."""
    evening = datetime(2026, 12, 1, 23, 30, tzinfo=PARIS)
    core, _ = make_core(tmp_path, FixedClock(evening))
    try:
        ingest(core, event("OV-1"))
        overseas = core.corrections.add("OV-1", date(2026, 12, 2))
        assert overseas.request.deadline == date(2027, 3, 2)
        (said,) = [w.message for w in overseas.warnings() if w.field == "received_on"]
        assert "dated 2026-12-02, tomorrow in Paris" in said and "2027-03-02" in said
        today = core.corrections.add("OV-1", date(2026, 12, 1), note="the same day in Paris")
        assert not [w for w in today.warnings() if w.field == "received_on"]
        with pytest.raises(BadParameter, match="in the future, even overseas"):
            core.corrections.add("OV-1", date(2026, 12, 3))
    finally:
        core.close()
