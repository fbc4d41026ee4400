"""The work of the state's queries the service runs on every tick, counted in SQLite's virtual
machine steps (never timed): it follows what the query must read, not the whole state."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

import accrochage.state.sqlite.store as store_module
from accrochage.models.deadline import PARIS, FixedClock
from accrochage.state.sqlite import SqliteStore
from accrochage.state.sqlite.batch_queries import (
    batch_detail,
    batches,
    batches_of_record,
    left_out,
)
from accrochage.state.sqlite.changes import changes
from accrochage.state.sqlite.correction_queries import held_due
from accrochage.state.sqlite.observe import (
    _next_deadlines,
    by_certifier,
    dashboard,
    unknown_deadlines,
)
from accrochage.state.sqlite.store import connect
from accrochage.state.sqlite.withdrawals import to_supersede
from tests.test_tracker import event, ingest, make_core

STAMP = "2026-11-02T10:00:00+01:00"
STEPS = 100
"""Steps between two calls of the progress handler: the unit of the counts below."""


def _record(
    record_id: str, status: str, batch_id: str | None, correction: int | None
) -> dict[str, Any]:
    return {
        "record_id": record_id,
        "certifier": "pix",
        "code": "RS5875",
        "status": status,
        "outstanding": 0,
        "version": 1,
        "content_hash": f"hash-{record_id}",
        "batch_id": batch_id,
        "accepted_batch_id": batch_id,
        "correction_version": correction,
        "created_at": STAMP,
        "updated_at": STAMP,
    }


def _batch(batch_id: str, action: str) -> dict[str, Any]:
    return {
        "batch_id": batch_id,
        "certifier": "pix",
        "created_at": STAMP,
        "schema_version": "1.1.5",
        "emitter_id_client": "03VML243",
        "nature": "CERTIFICATEUR",
        "certifier_id_client": "03VML243",
        "id_contrat": "MCFCER000209",
        "state": "written",
        "passages": 1,
        "file_name": f"03VML243_pix_20261102T100000_{batch_id}.xml",
        "action": action,
    }


def _insert(conn: sqlite3.Connection, table: str, rows: list[dict[str, Any]]) -> None:
    columns = list(rows[0])
    conn.executemany(
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
        [tuple(row[c] for c in columns) for row in rows],
    )


def _state(path: Path, suppressions: int, flagged: int) -> None:
    """`flagged` accepted records with a correction, in CREATION files long reported, and
    `suppressions` SUPPRESSION files never deposited, one record each."""
    SqliteStore(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    records = [_record(f"F-{n:05d}", "accepted", f"old-{n // 100}", 2) for n in range(flagged)]
    batches = [_batch(f"sup-{n}", "SUPPRESSION") for n in range(suppressions)]
    records += [_record(f"S-{n:05d}", "accepted", f"sup-{n}", 2) for n in range(suppressions)]
    _insert(conn, "records", records)
    _insert(conn, "batches", batches)
    conn.close()


def _steps(path: Path, query: Callable[[sqlite3.Connection], Any]) -> int:
    conn = connect(path, readonly=True)
    counted = [0]

    def count() -> int:
        counted[0] += 1
        return 0

    conn.set_progress_handler(count, STEPS)
    try:
        query(conn)
    finally:
        conn.close()
    return counted[0]


def test_files_to_supersede_read_each_suppression_files_records_not_every_flagged_one(
    tmp_path: Path,
) -> None:
    """Every batch-cut tick looks for SUPPRESSION files never deposited whose correction was
    taken back, in a write transaction: its work must grow with those files' records, not
    with those files times every flagged record of the state (0.9 s each tick at 1,000,000
    records, 44 such files and 8,233 corrected accepted records)."""
    few, many = tmp_path / "few.db", tmp_path / "many.db"
    _state(few, suppressions=1, flagged=2000)
    _state(many, suppressions=40, flagged=2000)
    one, forty = _steps(few, to_supersede), _steps(many, to_supersede)
    assert forty < 2 * one, (one, forty)


IMPORTED = "2026-11-09T12:00:00+01:00"
"""When the reports below were imported: the `julianday` calls on it count the reports read."""


def _reported_state(path: Path, batches: int) -> None:
    """`batches` reported CREATION files, one record and one report each."""
    SqliteStore(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    ids = [f"rep-{n:04d}" for n in range(batches)]
    _insert(conn, "batches", [_batch(b, "CREATION") | {"state": "reported"} for b in ids])
    _insert(
        conn, "records", [_record(f"R-{n:04d}", "accepted", b, None) for n, b in enumerate(ids)]
    )
    conn.executemany(
        "INSERT INTO batch_members VALUES (?, 'RS5875', ?, 1)",
        [(b, f"R-{n:04d}") for n, b in enumerate(ids)],
    )
    conn.executemany(
        "INSERT INTO reports VALUES (?, ?, NULL, NULL, ?, ?, ?)",
        [
            (f"sha-{b}", f"AR_{b}.xml", b, IMPORTED, json.dumps({"accepted": [f"R-{n:04d}"]}))
            for n, b in enumerate(ids)
        ],
    )
    conn.close()


def _reports_read(path: Path, query: Callable[[sqlite3.Connection], Any]) -> tuple[int, Any]:
    """How many reports `query` gathered (its `julianday` calls on their stamp), its answer."""
    conn = connect(path, readonly=True)
    read = [0]

    def julianday(stamp: str | None) -> float | None:
        if stamp is None:
            return None
        read[0] += stamp == IMPORTED
        return datetime.fromisoformat(stamp).timestamp() / 86400 + 2440587.5

    conn.create_function("julianday", 1, julianday, deterministic=True)
    try:
        answer = query(conn)
    finally:
        conn.close()
    return read[0], answer


def test_a_records_or_a_batchs_reports_are_read_alone(tmp_path: Path) -> None:
    """`show` (GET /records/{id}), GET /batches/{id} and a page of GET /batches gather their
    batches' reports, not every report of the state (140 ms each at 1,000,000 records)."""
    path = tmp_path / "state.db"
    _reported_state(path, batches=300)
    read, carried = _reports_read(path, lambda conn: batches_of_record(conn, "R-0042"))
    assert [b["report"]["accepted"] for b in carried] == [1]
    assert read == 1
    read, detail = _reports_read(path, lambda conn: batch_detail(conn, "rep-0007"))
    assert detail is not None and detail["report"]["accepted"] == 1
    assert read == 1
    read, page = _reports_read(path, lambda conn: batches(conn, limit=10))
    assert len(page) == 10 and all(b["report"]["accepted"] == 1 for b in page)
    assert read == 10


def _accepted_state(path: Path, accepted: int) -> None:
    """`accepted` records accepted by ten reported CREATION files, one reported file with a
    record its report left `deposited`, and one whose record a SUPPRESSION it carried left
    accepted by another file: the two `left_out` must find."""
    _reported_state(path, batches=10)
    conn = sqlite3.connect(path, isolation_level=None)
    _insert(
        conn,
        "records",
        [_record(f"A-{n:05d}", "accepted", f"rep-{n % 10:04d}", None) for n in range(accepted)],
    )
    _insert(conn, "batches", [_batch(b, "CREATION") | {"state": "reported"} for b in ("L1", "L2")])
    _insert(
        conn,
        "records",
        [
            _record("LEFT-1", "deposited", "L1", None),
            _record("LEFT-2", "accepted", "L2", None) | {"accepted_batch_id": "rep-0000"},
        ],
    )
    conn.close()


def test_the_records_a_report_left_out_are_found_without_reading_every_accepted_one(
    tmp_path: Path,
) -> None:
    """`summary`, the dashboard (every 30 s) and `doctor` look for them: it read every record
    of every reported batch, about a second at 1,000,000 records (the scale review). Its work
    follows the reported batches (two index seeks each), not the records they carried."""
    few, many = tmp_path / "few.db", tmp_path / "many.db"
    _accepted_state(few, accepted=100)
    _accepted_state(many, accepted=3000)
    _left_out_found_flat(few, many)


def _left_out_found_flat(few: Path, many: Path) -> None:
    """Both states' `left_out` finds the two of `_accepted_state`, `many`'s for about the
    work of `few`'s."""
    for path in (few, many):
        conn = connect(path, readonly=True)
        try:
            found = {(row["batch_id"], row["records"]) for row in left_out(conn)}
        finally:
            conn.close()
        assert found == {("L1", 1), ("L2", 1)}
    assert _steps(many, left_out) < 2 * _steps(few, left_out) + 5


def test_the_records_a_report_left_out_are_found_without_reading_every_record_in_flight(
    tmp_path: Path,
) -> None:
    """At 1,000,000 records, 340,000 are batched or deposited, nearly all in files whose
    report has not come: `left_out` read each one's table row for its batch (0.7 s at each
    refresh of the dashboard). Its work now follows the reported batches alone."""
    few, many = tmp_path / "few.db", tmp_path / "many.db"
    for path, in_flight in ((few, 100), (many, 3000)):
        _accepted_state(path, accepted=100)
        conn = sqlite3.connect(path, isolation_level=None)
        _insert(conn, "batches", [_batch("W", "CREATION"), _batch("D", "CREATION")])
        conn.execute("UPDATE batches SET state = 'deposited' WHERE batch_id = 'D'")
        _insert(
            conn,
            "records",
            [
                _record(f"W-{n:05d}", ("batched", "deposited")[n % 2], "WD"[n % 2], None)
                for n in range(in_flight)
            ],
        )
        conn.close()
    _left_out_found_flat(few, many)


def _revalidation_steps(directory: Path, in_batches: int, monkeypatch: pytest.MonkeyPatch) -> int:
    """The steps of the daily check of delivery dates and of `revalidate`, on a state of one
    record refused for its date and `in_batches` records in batches, none corrected."""
    directory.mkdir()
    core, _ = make_core(directory, FixedClock(datetime(2026, 12, 4, 9, 0, tzinfo=PARIS)))
    try:
        ingest(core, event("AHEAD", delivered_on="2026-12-07"))
        conn = sqlite3.connect(core.store.path, isolation_level=None)
        rows = [_record(f"B-{n:05d}", "batched", "b", None) for n in range(in_batches)]
        _insert(conn, "records", [row | {"outstanding": 1} for row in rows])
        conn.close()
        assert core.revalidator().run("another").checked == 0, "of pix"
        counted = [0]

        def counting(path: Path, readonly: bool = False) -> sqlite3.Connection:
            opened = connect(path, readonly=readonly)
            opened.set_progress_handler(lambda: counted.__setitem__(0, counted[0] + 1), 1)
            return opened

        monkeypatch.setattr(store_module, "connect", counting)
        assert core.revalidator().dates_come().changed == [], "the day has not come"
        assert core.revalidator().run().checked == 1
        monkeypatch.undo()
        return counted[0]
    finally:
        core.close()


def test_the_records_checked_again_are_chosen_by_the_index_not_read_one_by_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`flush` checks the delivery dates refused before it cuts, and the services once a day;
    `revalidate` after each load of reference data. Each listed every outstanding record to
    keep the few that may change: 9 CPU seconds at 1,000,000 records (the scale review)."""
    few = _revalidation_steps(tmp_path / "few", 100, monkeypatch)
    many = _revalidation_steps(tmp_path / "many", 3000, monkeypatch)
    assert few > 0 and many < 2 * few, (few, many)


def _accepted_refused_none(path: Path, accepted: int) -> None:
    """`accepted` records accepted by the CDC, none refused, and 10 rejected."""
    SqliteStore(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    rows = [_record(f"A-{n:05d}", "accepted", f"old-{n // 100}", None) for n in range(accepted)]
    rows += [_record(f"R-{n:05d}", "rejected", "old-0", None) for n in range(10)]
    _insert(conn, "records", rows)
    conn.close()


def test_the_dashboards_reasons_read_the_rejected_and_refused_records_not_every_accepted_one(
    tmp_path: Path,
) -> None:
    """An open dashboard refreshes every 30 s: its refused suppressions (none) were counted
    by reading the row of every accepted record, 0.9 s each refresh at 1,000,000 records."""
    few, many = tmp_path / "few.db", tmp_path / "many.db"
    _accepted_refused_none(few, 100)
    _accepted_refused_none(many, 5000)
    today = datetime(2026, 12, 6, tzinfo=PARIS).date()
    small, large = (_steps(p, lambda conn: dashboard(conn, today)) for p in (few, many))
    assert large < 2 * small + 5, (small, large)


def test_each_certifiers_nearest_deadline_is_a_seek_not_a_read_of_every_outstanding_record(
    tmp_path: Path,
) -> None:
    """The watch, `summary` and the dashboard take each certifier's nearest deadline: a `min`
    grouped by certifier read all 430,000 outstanding records at 1,000,000 (0.4 s)."""
    steps = []
    for outstanding in (100, 3000):
        path = tmp_path / f"{outstanding}.db"
        SqliteStore(path).close()
        conn = sqlite3.connect(path, isolation_level=None)
        _insert(
            conn,
            "records",
            [
                _record(f"O-{n:05d}", "pending", None, None)
                | {"outstanding": 1, "deadline": f"2027-{n % 12 + 1:02d}-{n % 28 + 1:02d}"}
                for n in range(outstanding)
            ],
        )
        conn.close()
        conn = connect(path, readonly=True)
        try:
            assert _next_deadlines(conn, {"pix", "school"}) == {"pix": date(2027, 1, 1)}
        finally:
            conn.close()
        steps.append(_steps(path, lambda conn: _next_deadlines(conn, {"pix", "school"})))
    assert steps[1] < 2 * steps[0] + 5, steps


def test_each_certifiers_counts_read_its_matching_records_not_every_outstanding_one(
    tmp_path: Path,
) -> None:
    """The watch, `summary` and the dashboard count each certifier's overdue, at risk and
    undated records: grouped by certifier, each count read the entry of every outstanding
    record (80–160 ms a count at 1,000,000 records). Another certifier's records due later
    are now never read."""
    steps = []
    today = "2026-12-06"
    for later in (100, 3000):
        path = tmp_path / f"{later}.db"
        SqliteStore(path).close()
        conn = sqlite3.connect(path, isolation_level=None)
        overdue = [
            _record(f"P-{n:03d}", "pending", None, None)
            | {"outstanding": 1, "deadline": "2026-12-01"}
            for n in range(20)
        ]
        due_later = [
            _record(f"S-{n:05d}", "pending", None, None)
            | {"certifier": "school", "outstanding": 1, "deadline": "2027-03-01"}
            for n in range(later)
        ]
        _insert(conn, "records", overdue + due_later)
        conn.close()
        conn = connect(path, readonly=True)
        try:
            counts = by_certifier(conn, {"pix", "school"}, "deadline < ?", (today,))
            assert counts == {"pix": 20}
            assert unknown_deadlines(conn, {"pix", "school"}) == {}
        finally:
            conn.close()
        steps.append(
            _steps(
                path, lambda conn: by_certifier(conn, {"pix", "school"}, "deadline < ?", (today,))
            )
        )
    assert steps[1] < 2 * steps[0] + 5, steps


def test_a_held_record_finds_its_open_requests_by_its_id_not_among_every_open_request(
    tmp_path: Path,
) -> None:
    """Whether an open request holds a record (`HELD`, in every count and listing that leaves
    those out) took the earliest of its open requests by reading every open request: quadratic
    in the open requests (429 of them cost each count and listing 23 ms)."""
    steps = []
    for requests in (20, 400):
        path = tmp_path / f"{requests}.db"
        SqliteStore(path).close()
        conn = sqlite3.connect(path, isolation_level=None)
        ids = [f"H-{n:04d}" for n in range(requests)]
        _insert(
            conn,
            "records",
            [
                _record(i, "accepted", "old-0", 2) | {"outstanding": 1, "deadline": "2027-03-01"}
                for i in ids
            ],
        )
        conn.executemany(
            "INSERT INTO correction_requests (request_id, record_id, certifier, source, "
            "received_on, deadline, status, opened_at) "
            "VALUES (?, ?, 'pix', 'cdc', '2026-11-01', '2027-01-31', 'open', ?)",
            [(f"req-{i}", i, STAMP) for i in ids],
        )
        conn.close()
        conn = connect(path, readonly=True)
        try:
            assert len(held_due(conn)) == requests
        finally:
            conn.close()
        steps.append(_steps(path, held_due))
    assert steps[1] < 40 * steps[0], steps


def test_a_certifiers_changes_check_takeovers_on_its_own_records_alone(tmp_path: Path) -> None:
    """`GET /changes` for a token of some certifiers scans a window of history ids: whether a
    record was taken over from another certifier (a later entry of its history) was checked
    for every entry of the window before the entry's certifier was: a third of the CPU of each
    page for a certifier of few changes on a year's state (300 of 100 ms per 100,000 ids)."""
    path = tmp_path / "state.db"
    SqliteStore(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    others = [
        _record(f"S-{n:05d}", "accepted", None, None) | {"certifier": "school"} for n in range(500)
    ]
    own = [_record(f"P-{n:05d}", "accepted", None, None) for n in range(5)]
    _insert(conn, "records", others + own)
    conn.executemany(
        "INSERT INTO history (record_id, at, from_status, to_status, reason) "
        "VALUES (?, ?, ?, ?, 'step')",
        [
            (row["record_id"], STAMP, before, after)
            for row in others + own
            for before, after in ((None, "pending"), ("pending", "batched"))
        ],
    )
    conn.close()
    conn = connect(path, readonly=True)
    checked = [0]

    def substr(text: str, start: int, length: int) -> str:
        checked[0] += 1
        return text[start - 1 : start - 1 + length]

    conn.create_function("substr", 3, substr, deterministic=True)
    try:
        read = changes(conn, 0, 1000, 100_000, {"pix"})
    finally:
        conn.close()
    assert [row["record_id"] for row in read.changes] == [
        r["record_id"] for r in own for _ in (1, 2)
    ]
    assert checked[0] == len(own), checked


def test_the_dashboards_chart_reads_the_dated_deadlines_from_an_index_alone(
    tmp_path: Path,
) -> None:
    """The chart counts every outstanding record by deadline, each 30 s while a dashboard is
    open. In one query with the test of a deadline unknown (`delivery_met`, in no index),
    SQLite read the row of every outstanding record: 0.3–0.8 s at 1,000,000 records."""
    path = tmp_path / "state.db"
    SqliteStore(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    rows = [("D-1", "2027-01-05", 0), ("D-2", "2027-01-05", 0), ("D-3", "2027-02-01", 0)]
    rows += [("MET", None, 1), ("UNKNOWN", None, 0)]
    _insert(
        conn,
        "records",
        [
            _record(record_id, "pending", None, None)
            | {"outstanding": 1, "deadline": day, "delivery_met": met}
            for record_id, day, met in rows
        ],
    )
    conn.close()
    conn = connect(path, readonly=True)
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        numbers = dashboard(conn, date(2026, 12, 6))
        conn.set_trace_callback(None)
        (dated,) = [s for s in statements if "deadline IS NOT NULL" in s and "GROUP BY" in s]
        plan = " ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {dated}"))
    finally:
        conn.close()
    assert numbers.deadlines == {
        ("pix", date(2027, 1, 5)): 2,
        ("pix", date(2027, 2, 1)): 1,
        ("pix", None): 1,
    }
    assert "COVERING INDEX records_outstanding_certifier" in plan, plan
