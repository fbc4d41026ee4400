"""A certification dated more than a day ahead of Paris is refused as "in the future". The
date is not the certification's while it is refused: the record has no deadline from it
(`decode`). Once that day has come the record is checked again, by the services once a day
and by `flush` before it cuts: it becomes valid, with its deadline. Before, it stayed invalid
until someone thought of `revalidate`, and slid into overdue."""

from __future__ import annotations

import sqlite3
from datetime import date, datetime, timedelta
from pathlib import Path

from accrochage.models.deadline import PARIS, FixedClock
from accrochage.streams.revalidate import DatesCome, Revalidator
from tests.test_cli_tracker import run
from tests.test_tracker import event, ingest, make_core, record, replay, write_config

ON_4_DECEMBER = datetime(2026, 12, 4, 9, 0, tzinfo=PARIS)


def test_a_record_refused_for_its_date_is_valid_once_the_day_has_come(tmp_path: Path) -> None:
    core, clock = make_core(tmp_path, FixedClock(ON_4_DECEMBER))
    try:
        ingest(
            core,
            event("AHEAD", delivered_on="2026-12-07"),
            event("UNREADABLE", delivered_on="07/12/2026"),
            event("OTHER", delivered_on="2026-11-20", certification={"code": "RS0000"}),
        )
        before = record(core, "AHEAD")
        assert (before["status"], before["delivered_on"], before["deadline"]) == (
            "invalid",
            None,
            None,
        )
        assert not core.revalidator().dates_come().changed, "the day has not come"

        clock.advance(timedelta(days=2))  # 6 December: the 7th is tomorrow, overseas today
        report = core.revalidator().dates_come()
        assert [(c.record_id, c.before, c.after) for c in report.changed] == [
            ("AHEAD", "invalid", "pending")
        ]
        assert report.checked == 2, "the records an error on delivered_on holds back, only"
        after = record(core, "AHEAD")
        assert (after["status"], after["delivered_on"], after["deadline"]) == (
            "pending",
            "2026-12-07",
            "2027-03-07",
        )
        assert record(core, "UNREADABLE")["status"] == "invalid"
        assert record(core, "OTHER")["status"] == "invalid"
        history = [h["reason"] for h in after["history"]]
        assert "checked again: its delivery date has come" in history
    finally:
        core.close()


def test_the_services_check_the_dates_once_a_day(tmp_path: Path) -> None:
    clock = FixedClock(ON_4_DECEMBER)
    made: list[date] = []
    core, _ = make_core(tmp_path, clock)
    try:

        def revalidator() -> Revalidator:
            made.append(clock.now().date())
            return core.revalidator()

        job = DatesCome(revalidator, clock)
        job.run()
        clock.advance(timedelta(hours=14))  # 23:00 in Paris, the same day
        job.run()
        clock.advance(timedelta(hours=2))
        job.run()
        assert made == [date(2026, 12, 4), date(2026, 12, 5)]
    finally:
        core.close()


def test_flush_checks_the_dates_before_it_cuts(tmp_path: Path) -> None:
    """Stored on 1 November with a date of 20 November; flushed today (a later date)."""
    core, _ = make_core(tmp_path, FixedClock(datetime(2026, 11, 1, 9, 0, tzinfo=PARIS)))
    try:
        ingest(core, event("LATER", delivered_on="2026-11-20"))
        assert record(core, "LATER")["status"] == "invalid"
    finally:
        core.close()
    out = run(write_config(tmp_path), "flush", "--force").stdout
    assert (
        "checked again LATER (pix), refused for a delivery date in the future: invalid -> "
        "pending" in out
    ), out
    assert "cut " in out and "1 passages" in out, out


def test_a_correction_refused_for_its_date_is_checked_again_once_the_day_has_come(
    tmp_path: Path,
) -> None:
    """A record in a batch keeps its content; its stored correction, refused for a date in the
    future, was never looked at again by the daily check."""
    core, clock = make_core(tmp_path, FixedClock(ON_4_DECEMBER))
    try:
        first = event("C-1", delivered_on="2026-11-20")
        ingest(core, first)
        core.flusher.flush(force=True)
        corrected = replay(first)
        corrected["delivered_on"] = "2026-12-07"
        ingest(core, corrected)
        assert record(core, "C-1")["correction_errors"], "stored, refused for its date"
        clock.advance(timedelta(days=3))
        report = core.revalidator().dates_come()
        assert [(c.record_id, c.before, c.after) for c in report.changed] == [
            ("C-1", "invalid correction", "valid correction")
        ]
    finally:
        core.close()


def test_a_record_an_earlier_version_stored_with_its_refused_date_loses_it(
    tmp_path: Path,
) -> None:
    """Before, the refused date and the deadline it gave were kept: a year ahead for a
    mistyped year. The migration drops both (the deadline unknown, counted at risk); a date
    that could not be read at all is left as it was (none already)."""
    core, _ = make_core(tmp_path, FixedClock(ON_4_DECEMBER))
    ingest(core, event("OLD", delivered_on="2027-06-30"))
    state = core.settings.paths.state
    core.close()
    with sqlite3.connect(state) as conn:
        conn.execute(
            "UPDATE records SET delivered_on = '2027-06-30', deadline = '2027-09-30' "
            "WHERE record_id = 'OLD'"
        )
        conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm220_refused_dates'")
    conn.close()
    core, _ = make_core(tmp_path, FixedClock(ON_4_DECEMBER))
    try:
        detail = record(core, "OLD")
        assert (detail["status"], detail["delivered_on"], detail["deadline"]) == (
            "invalid",
            None,
            None,
        )
    finally:
        core.close()
