"""States written by earlier versions, opened by this one (migrations m110-m130): the review
built them with the old versions themselves; here a state of today is put back as those
versions left it, its repairs unapplied, and opened again."""

from __future__ import annotations

import logging
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from accrochage.app import Core, build_core
from accrochage.models.deadline import FixedClock
from accrochage.settings import load_settings
from tests.factories import revoked_event
from tests.test_cdc_loop import V115, answer, flush, only_written
from tests.test_tracker import (
    ALREADY,
    NOW,
    batch_row,
    event,
    ingest,
    passages,
    record,
    replay,
    write_config,
)

HELD_AS = "1559735"
REPAIRS = (
    "m110_held_under_another_id_again",
    "m120_no_deadline_while_leaving_the_cdc",
    "m140_legal_date_of_accepted_records",
)
REPORTED = "m130_reported_batches"


def state_of(config: Path) -> Path:
    return load_settings(config).paths.state


def as_before(config: Path, repairs: tuple[str, ...], *statements: str) -> None:
    """The state as an earlier version left it: `statements` undo what this one stores, and
    the repairs are not applied yet."""
    with sqlite3.connect(state_of(config)) as conn:
        for statement in statements:
            conn.execute(statement)
        conn.executemany("DELETE FROM _sqlite_migrations WHERE name = ?", [(r,) for r in repairs])
    conn.close()


def test_records_held_elsewhere_and_waiting_to_leave_are_repaired(
    tmp_path: Path, shared_dir: Path
) -> None:
    config = write_config(tmp_path, schema=V115)
    built = build_core(load_settings(config), FixedClock(NOW))
    try:
        held, refused, corrected = event("UR-1"), event("UR-2"), event("UR-3", score="100")
        ingest(built, held, refused, corrected)
        (written,) = flush(built).written
        answer(
            built,
            shared_dir,
            written.batch_id,
            ok=["UR-2", "UR-3"],
            ko={"UR-1": ALREADY.format(rid=HELD_AS)},
        )
        fixed = replay(corrected)
        fixed["score"] = "250"
        ingest(built, revoked_event(record_id="UR-2"), fixed)
        suppression, _ = only_written(flush(built))
        answer(built, shared_dir, suppression, ko={"UR-2": ALREADY.format(rid="3333")})
        assert record(built, "UR-2")["cdc_held_as"] == "3333"
        assert record(built, "UR-3")["deadline"] is None
        legal = record(built, "UR-1")["deadline"]
    finally:
        built.close()
    as_before(
        config,
        REPAIRS,
        # m090's first form marked acceptances only, and before m004 no record had a reason.
        "UPDATE records SET cdc_held_as = NULL, cdc_reason = NULL",
        # m070 left the delivery's deadline on accepted records waiting to leave the CDC.
        "UPDATE records SET deadline = '2026-12-20' WHERE record_id = 'UR-3'",
        # ...and null on an accepted one whose correction was taken back.
        "UPDATE records SET deadline = NULL WHERE record_id = 'UR-1'",
    )

    built = build_core(load_settings(config), FixedClock(NOW))
    try:
        assert record(built, "UR-1")["cdc_held_as"] == HELD_AS
        assert record(built, "UR-2")["cdc_held_as"] == "3333"
        assert [o.item for o in built.operations.retry_rejected()] == [], "no SUPPRESSION"
        assert record(built, "UR-3")["deadline"] is None
        assert legal is not None
        assert record(built, "UR-1")["deadline"] == legal, "nothing waits: its date shows"
        with built.store.reading() as reader:
            summary = reader.summary(NOW.date(), 14)
        assert (summary["at_risk"], summary["overdue"]) == (0, 0)
    finally:
        built.close()


def test_files_reported_before_the_reported_state_are_reported(
    tmp_path: Path, shared_dir: Path
) -> None:
    config = write_config(tmp_path, schema=V115)
    built = build_core(load_settings(config), FixedClock(NOW))
    try:
        ingest(built, event("UR-5"), event("UR-6"))
        batch, _ = only_written(flush(built))
        answer(built, shared_dir, batch, ok=["UR-5", "UR-6"])
        done = Path(batch_row(built, batch)["file_path"])
    finally:
        built.close()
    assert done.parent.name == "done"
    top = done.parent.parent / done.name
    shutil.move(done, top)  # where the versions before `reported` left it
    as_before(
        config,
        (REPORTED,),
        f"UPDATE batches SET state = 'written', file_path = '{top}' WHERE batch_id = '{batch}'",
    )

    built = build_core(load_settings(config), FixedClock(NOW))
    try:
        row = batch_row(built, batch)
        assert (row["state"], Path(row["file_path"])) == ("reported", done)
        with built.store.reading() as reader:
            seen = reader.observe(NOW.date(), 14, NOW)
        assert seen.to_deposit == 0 and not seen.unreported
        report = built.flusher.flush()
        assert any("moved" in note for note in report.notes), report.notes
        assert done.exists() and not top.exists()
        assert set(passages(done)) == {"UR-5", "UR-6"}
    finally:
        built.close()


def test_an_upgrade_is_said_in_the_log_a_new_state_is_not(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A service started on an older state migrated it without a word: the log could not
    tell when an upgrade happened, nor what it did."""
    from accrochage.state.sqlite import SqliteStore

    state = tmp_path / "state.db"
    with caplog.at_level(logging.INFO, logger="accrochage.state"):
        SqliteStore(state).close()
        assert not [r for r in caplog.records if "migrated" in r.getMessage()], "a new state"
        with sqlite3.connect(state) as conn:  # the state as the version before m220 left it
            conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm220_refused_dates'")
        conn.close()
        SqliteStore(state).close()
    (said,) = [r.getMessage() for r in caplog.records if "migrated" in r.getMessage()]
    assert said == f"migrated the state {state}: 1 migration(s) applied (m220_refused_dates)"


def test_unusable_events_kept_before_m230_are_filed_under_their_certifier(
    tmp_path: Path,
) -> None:
    """m230 gave new unusable rows the certifier their event names; the rows kept before
    named none, and `unusable --certifier pix` never listed them."""

    def unusable(event_id: str, **fields: Any) -> dict[str, Any]:
        return event("UC") | {"record_id": 5, "event_id": event_id, **fields}

    config = write_config(tmp_path)
    named, resent = unusable("uc-named"), unusable("uc-resent")
    built = build_core(load_settings(config), FixedClock(NOW))
    try:
        ingest(built, named, unusable("uc-long", certifier="k" * 65), '{"certifier": "pix",')
        ingest(built, resent)
    finally:
        built.close()
    as_before(config, ("m240_unusable_certifier_backfill",), "UPDATE unusable SET certifier = NULL")
    built = build_core(load_settings(config), FixedClock(NOW))
    try:
        assert filed_under(built, "pix") == {"uc-named", "uc-resent"}, "a long key names none"
        assert len(filed_under(built, None)) == 4
    finally:
        built.close()
    as_before(config, (), "UPDATE unusable SET certifier = NULL WHERE event_id = 'uc-resent'")
    built = build_core(load_settings(config), FixedClock(NOW))
    try:
        ingest(built, resent)  # sent again: the row kept without a certifier is filed
        assert filed_under(built, "pix") == {"uc-named", "uc-resent"}
    finally:
        built.close()


def filed_under(core: Core, certifier: str | None) -> set[str | None]:
    with core.store.reading() as reader:
        return {row["event_id"] for row in reader.unusable(certifier=certifier)}
