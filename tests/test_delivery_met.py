"""A record the CDC accepted once has met its delivery deadline for good (CONTRACT §9): whatever
its later contents, what is due is the answer to an open correction request, in every listing,
count, chart, alert and batch plan alike."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from accrochage.app import Core, build_core
from accrochage.models.deadline import FixedClock
from accrochage.settings import load_settings
from tests.test_cdc_loop import accepted, answer, flush, later, only_written
from tests.test_correction_requests import accept
from tests.test_tracker import (
    ALREADY,
    NOW,
    TODAY,
    event,
    ingest,
    make_core,
    outstanding,
    processed_report,
    record,
    replay,
    write_config,
)

LATE = date(2026, 12, 20)
"""Past the request received on 10 September (due 10 December), before any other date here."""


@pytest.fixture()
def core(tmp_path: Path) -> Iterator[Core]:
    built, _ = make_core(tmp_path, schema={"version": "1.1.5"})
    yield built
    built.close()


def counted(core: Core, as_of: date) -> dict[str, Any]:
    """What the summary and the watch job count as of `as_of`, with a 14-day margin."""
    with core.store.reading() as reader:
        summary = reader.summary(as_of, 14)
        seen = reader.observe(as_of, 14, core.clock.now())
    return {
        "summary": (summary["at_risk"], summary["overdue"]),
        "observe": (sum(seen.at_risk.values()), sum(seen.overdue.values())),
        "next": seen.next_deadline.get("pix"),
    }


def corrected_through_a_suppression(
    core: Core, shared_dir: Path, record_id: str, *requested: date
) -> list[str]:
    """Accepted, asked to correct (a request received on each of `requested`), corrected,
    its SUPPRESSION accepted: pending with its new content. The requests' ids."""
    original = event(record_id, score="100")
    accepted(core, shared_dir, original)
    later(core)
    opened = [
        core.corrections.add(record_id, received_on=day, source="cdc").request.request_id
        for day in requested
    ]
    fixed = replay(original)
    fixed["score"] = "200"
    ingest(core, fixed)
    suppression, _ = only_written(flush(core))
    answer(core, shared_dir, suppression, ok=[record_id])
    assert record(core, record_id)["status"] == "pending"
    return opened


def test_a_request_answered_by_hand_leaves_no_deadline_behind(core: Core, shared_dir: Path) -> None:
    (request,) = corrected_through_a_suppression(core, shared_dir, "DM-1", date(2026, 9, 10))
    detail = record(core, "DM-1")
    assert (detail["deadline"], detail["days_left"]) == ("2026-12-10", 9), "the request's"

    core.corrections.answer(request, unfounded="the data was right as sent")
    detail = record(core, "DM-1")
    assert detail["correction_request"] is None
    assert detail["deadline"] is None, "no open request: nothing is due"
    assert [r["deadline"] for r in outstanding(core)] == [None]
    assert outstanding(core, as_of=LATE, overdue=True) == []
    assert counted(core, LATE) == {"summary": (0, 0), "observe": (0, 0), "next": None}


def test_an_answered_request_gives_way_to_the_next_one(core: Core, shared_dir: Path) -> None:
    first, _ = corrected_through_a_suppression(
        core, shared_dir, "DM-2", date(2026, 9, 10), date(2026, 11, 20)
    )
    core.corrections.answer(first, unfounded="the data was right as sent")
    (row,) = outstanding(core)
    assert (row["deadline"], row["days_left"]) == ("2027-02-20", 81)
    assert outstanding(core, due_within=14) == []
    assert record(core, "DM-2")["deadline"] == "2027-02-20"


def test_a_second_correction_does_not_bring_the_delivery_deadline_back(
    core: Core, shared_dir: Path
) -> None:
    original = event("DM-3", score="100", delivered_on="2026-09-15")
    original["exam"]["start"] = original["exam"]["end"] = "2026-09-10"
    original["registration"]["date"] = None
    ingest(core, original)
    assert record(core, "DM-3")["deadline"] == "2026-12-15"
    batch, _ = only_written(flush(core))
    answer(core, shared_dir, batch, ok=["DM-3"])
    for score in ("200", "300"):
        later(core)
        fixed = replay(original)
        fixed["score"] = score
        ingest(core, fixed)
        if record(core, "DM-3")["status"] == "accepted":
            suppression, _ = only_written(flush(core))
            answer(core, shared_dir, suppression, ok=["DM-3"])
    detail = record(core, "DM-3")
    assert (detail["status"], detail["version"]) == ("pending", 3)
    assert detail["deadline"] is None, "the CDC had it on time"
    assert counted(core, LATE) == {"summary": (0, 0), "observe": (0, 0), "next": None}


def test_a_rejected_resend_of_an_accepted_record_is_never_overdue(
    core: Core, shared_dir: Path
) -> None:
    corrected_through_a_suppression(core, shared_dir, "DM-4")
    creation, _ = only_written(flush(core))
    answer(core, shared_dir, creation, ko={"DM-4": "Erreur technique"})
    detail = record(core, "DM-4")
    assert (detail["status"], detail["deadline"]) == ("rejected", None)
    assert outstanding(core, as_of=date(2027, 6, 1), overdue=True) == []


def test_a_pending_record_held_by_a_request_is_cut_by_its_margin(
    tmp_path: Path, shared_dir: Path
) -> None:
    """With a long `max_delay`, only the deadline margin makes a certifier due: the margin of
    the request holding a corrected record counts, as the listings show its deadline."""
    core, _ = make_core(tmp_path, schema={"version": "1.1.5"}, batching={"max_delay": "30d"})
    try:
        corrected_through_a_suppression(core, shared_dir, "DM-5")
        later(core)
        assert not core.flusher.flush().cut, "no deadline: waits for max_delay"
        core.corrections.add("DM-5", received_on=date(2026, 9, 10), source="holder")
        (row,) = outstanding(core)
        assert row["days_left"] == 9
        report = core.flusher.flush()
        assert [c.action for c in report.cut] == ["CREATION"]
        assert "day(s) left" in report.cut[0].reason
    finally:
        core.close()


def test_counts_charts_and_gauges_agree_with_the_listing(core: Core) -> None:
    def delivered(record_id: str, on: str) -> dict[str, Any]:
        built = event(record_id, delivered_on=on)
        built["exam"]["start"] = built["exam"]["end"] = on
        built["registration"]["date"] = None
        return built

    ingest(core, delivered("A", "2026-09-15"), delivered("B", "2026-09-15"))
    ingest(core, delivered("E", "2026-10-01"), delivered("F", "2026-08-01"))
    accept(core, "B", "E")
    core.corrections.add("B", date(2026, 9, 15))
    core.corrections.add("E", date(2026, 6, 1))
    listed = {r["record_id"]: r["days_left"] for r in outstanding(core)}
    assert listed == {"E": -91, "F": -30, "A": 14, "B": 14}

    assert counted(core, TODAY) == {
        "summary": (2, 2),
        "observe": (2, 2),
        "next": date(2026, 9, 1),
    }
    with core.store.reading() as reader:
        chart = reader.dashboard(TODAY).deadlines
        summary = reader.summary(TODAY, 14)
    assert sum(n for (certifier, _), n in chart.items() if certifier == "pix") == 4
    assert chart[("pix", date(2026, 9, 1))] == 1
    assert [(r["record_id"], r["urgency"]) for r in summary["next_deadlines"]] == [
        ("A", "at_risk"),
        ("B", "at_risk"),
    ]


def test_an_upgraded_state_forgets_the_deadline_of_a_record_accepted_once(
    tmp_path: Path, shared_dir: Path
) -> None:
    """Migration m070 marks the records the history shows accepted, and clears the deadline
    a corrected one had kept (its request's, copied once, or its new content's)."""
    config = write_config(tmp_path, schema={"version": "1.1.5"})
    core = build_core(load_settings(config), FixedClock(NOW))
    try:
        corrected_through_a_suppression(core, shared_dir, "DM-6")
    finally:
        core.close()
    state = load_settings(config).paths.state
    with sqlite3.connect(state) as conn:
        conn.execute(
            "UPDATE records SET delivery_met = 0, deadline = '2026-12-10' WHERE record_id = 'DM-6'"
        )
        conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm070_delivery_met'")
        conn.execute("ALTER TABLE records DROP COLUMN delivery_met")
    conn.close()
    core = build_core(load_settings(config), FixedClock(NOW))
    try:
        assert record(core, "DM-6")["deadline"] is None
        assert outstanding(core, as_of=LATE, overdue=True) == []
    finally:
        core.close()


def test_the_chart_counts_a_held_record_once(core: Core, shared_dir: Path) -> None:
    """Corrected while accepted: outstanding, without a deadline of its own, held by its
    request; the chart shows it at the request's day only."""
    original = event("DM-7", score="100")
    accepted(core, shared_dir, original)
    core.corrections.add("DM-7", received_on=date(2026, 9, 10), source="cdc")
    fixed = replay(original)
    fixed["score"] = "200"
    ingest(core, fixed)
    with core.store.reading() as reader:
        chart = reader.dashboard(TODAY).deadlines
    assert {k: n for k, n in chart.items() if n} == {("pix", date(2026, 12, 10)): 1}


def test_existe_deja_for_a_correction_sent_after_its_suppression_accepts_it(
    core: Core, shared_dir: Path
) -> None:
    """Once the CDC accepted the SUPPRESSION, it holds none of the earlier contents: its
    "existe déjà en base" for the correction's CREATION can only mean it holds the correction
    (the file was answered twice, or deposited twice). Taking it for the withdrawn content
    would cut a second SUPPRESSION, deleting the corrected certification at the CDC."""
    (request,) = corrected_through_a_suppression(core, shared_dir, "DM-7", date(2026, 9, 10))
    creation, _ = only_written(flush(core))
    answer(core, shared_dir, creation, ko={"DM-7": ALREADY.format(rid="DM-7")})
    detail = record(core, "DM-7")
    assert (detail["status"], detail["version"]) == ("accepted", 2)
    assert detail["correction_request"] is None, "the correction answered the request"
    assert detail["deadline"] is None
    later(core)
    assert not core.flusher.flush(force=True).cut, "nothing left to send: no SUPPRESSION"
    (closed,) = core.corrections.list()
    assert (closed["request_id"], closed["status"]) == (request, "corrected")


def test_a_report_applied_by_id_closes_the_request_its_acceptance_answers(
    core: Core, shared_dir: Path
) -> None:
    """The operator's `--by-id` applies the CDC's word to the records it names: accepting the
    corrected content answers the open request as a report of the batch would."""
    (request,) = corrected_through_a_suppression(core, shared_dir, "DM-8", date(2026, 9, 10))
    flush(core)
    data = processed_report(
        shared_dir, file_name="renamed-by-the-portal.xml", id_flux=None, ok=["DM-8"]
    )
    summary = core.feedback.import_report_bytes(data, "report-by-id.xml", by_id=True)
    assert (summary.batch_id, summary.accepted) == (None, ["DM-8"])
    assert summary.requests_closed == [request]
    (closed,) = core.corrections.list()
    assert (closed["request_id"], closed["status"]) == (request, "corrected")
    assert record(core, "DM-8")["correction_request"] is None


def test_a_record_whose_delivery_date_cannot_be_read_counts_at_risk_until_it_has_one(
    core: Core, shared_dir: Path
) -> None:
    """Its delivery deadline is due, on a day nobody knows: it counts at risk (the summary,
    the watch job's observation, so `/metrics`, the alert and `/ui`) until a correction gives
    it a date. A record whose deadline is met for good has none either and is not counted;
    one an open request holds counts once, with the request's deadline."""
    corrected_through_a_suppression(core, shared_dir, "MET-1")
    assert record(core, "MET-1")["deadline"] is None
    assert counted(core, TODAY)["summary"] == (0, 0)

    unreadable = event("UD-1", delivered_on="2026-11-20")
    unreadable["delivered_on"] = "20/11/2026"
    ingest(core, unreadable)
    detail = record(core, "UD-1")
    assert (detail["status"], detail["deadline"]) == ("invalid", None)
    assert counted(core, TODAY) == {"summary": (1, 0), "observe": (1, 0), "next": None}
    with core.store.reading() as reader:
        assert reader.summary(TODAY, 14)["deadline_unknown"] == 1
        assert reader.observe(TODAY, 14, core.clock.now()).deadline_unknown == {"pix": 1}
    ingest(core, event("SOON-1", delivered_on="2026-09-05"))
    ingest(core, dict(event("BAD-1", delivered_on="2026-11-20"), holder=None))
    assert (record(core, "BAD-1")["status"], record(core, "BAD-1")["deadline"]) == (
        "invalid",
        "2027-02-20",
    )
    assert [r["record_id"] for r in outstanding(core, deadline_unknown=True)] == ["UD-1"]
    assert [r["record_id"] for r in outstanding(core, due_within=14)] == ["SOON-1"]

    core.corrections.add("UD-1", received_on=date(2026, 9, 10), source="holder")
    assert counted(core, TODAY)["summary"] == (2, 0)  # the request's deadline, 10 December
    assert counted(core, LATE)["summary"] == (0, 2)  # past it: overdue
    due = [(r["record_id"], r["deadline"]) for r in outstanding(core, due_within=14)]
    assert due == [("SOON-1", "2026-12-05"), ("UD-1", "2026-12-10")]
    # Its delivery date is still unknown (a request is no correction): listed as such, with
    # the request's deadline, the one day known to be due.
    unknown = [(r["record_id"], r["deadline"]) for r in outstanding(core, deadline_unknown=True)]
    assert unknown == [("UD-1", "2026-12-10")]

    readable = replay(unreadable)
    readable["delivered_on"] = "2026-11-20"
    ingest(core, readable)
    # Its own deadline, 20 February, comes after its open request's: that one is due.
    assert record(core, "UD-1")["deadline"] == "2026-12-10"
    with core.store.reading() as reader:
        assert reader.summary(TODAY, 14)["deadline_unknown"] == 0
    assert counted(core, TODAY)["summary"] == (2, 0)
