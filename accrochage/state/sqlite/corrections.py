"""Correction requests in SQLite (CONTRACT §9): their rows, their answers, their closing.

Requests are keyed by record id and never joined to a record when stored, so a request on a
record the tracker does not know yet simply finds it when it arrives. The certifier shown is
the record's once it is known (the one its deadline and alerts are owed to), else the one the
request was entered with. What other queries read of the open requests (the
outstanding listing, the summary, the watch job) is in `correction_queries.py`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from accrochage.models.corrections import (
    AnswerKind,
    CorrectionRequest,
    RequestClosure,
    corrected_by,
    to_json,
)
from accrochage.models.vocabulary import RequestSource, RequestStatus
from accrochage.state.queries import RequestKey
from accrochage.state.sqlite.rows import placeholders, stamp
from accrochage.state.values import JsonRow

COLUMNS = (
    "request_id",
    "record_id",
    "certifier",
    "source",
    "received_on",
    "deadline",
    "status",
    "note",
    "opened_at",
    "answer_kind",
    "answer_text",
    "answered_at",
    "held_hash",
)
_OPEN = RequestStatus.OPEN.value
_SELECT = (
    "SELECT q.*, coalesce(r.certifier, q.certifier) AS shown_certifier "
    "FROM correction_requests q LEFT JOIN records r ON r.record_id = q.record_id"
)
"""A request is owed by its record's certifier once the record is known (a `--certifier`
mistyped); entered for another one, no acceptance closes it by itself (`close_requests`,
`mismatched`)."""


# -- values <-> rows -------------------------------------------------------------------------


def _values(request: CorrectionRequest) -> tuple[Any, ...]:
    return (
        request.request_id,
        request.record_id,
        request.certifier,
        request.source.value,
        request.received_on.isoformat(),
        request.deadline.isoformat(),
        request.status.value,
        request.note,
        stamp(request.opened_at),
        None if request.answer_kind is None else request.answer_kind.value,
        request.answer_text,
        None if request.answered_at is None else stamp(request.answered_at),
        request.held_hash,
    )


def _request(row: sqlite3.Row) -> CorrectionRequest:
    answered = row["answered_at"]
    return CorrectionRequest(
        request_id=row["request_id"],
        record_id=row["record_id"],
        certifier=row["certifier"],
        source=RequestSource(row["source"]),
        received_on=date.fromisoformat(row["received_on"]),
        deadline=date.fromisoformat(row["deadline"]),
        status=RequestStatus(row["status"]),
        note=row["note"],
        opened_at=datetime.fromisoformat(row["opened_at"]),
        answer_kind=AnswerKind(row["answer_kind"]) if row["answer_kind"] else None,
        answer_text=row["answer_text"],
        answered_at=datetime.fromisoformat(answered) if answered else None,
        held_hash=row["held_hash"],
    )


def as_json(row: sqlite3.Row, as_of: date, margin_days: int) -> JsonRow:
    """A row of `_SELECT` as CONTRACT §9's object (`models.corrections.to_json`)."""
    return to_json(_request(row), row["shown_certifier"], as_of, margin_days)


# -- the write side --------------------------------------------------------------------------


def add_request(conn: sqlite3.Connection, request: CorrectionRequest) -> None:
    conn.execute(
        f"INSERT INTO correction_requests ({', '.join(COLUMNS)}) VALUES ({placeholders(COLUMNS)})",
        _values(request),
    )


def open_like(conn: sqlite3.Connection, asked: CorrectionRequest) -> CorrectionRequest | None:
    """The open request that says what `asked` says (its record, day, source, certifier and
    note), if one is."""
    row = conn.execute(
        "SELECT * FROM correction_requests WHERE record_id = ? AND received_on = ? "
        "AND source = ? AND status = ? AND certifier IS ? AND note IS ? "
        "ORDER BY julianday(opened_at) LIMIT 1",
        (
            asked.record_id,
            asked.received_on.isoformat(),
            asked.source.value,
            _OPEN,
            asked.certifier,
            asked.note,
        ),
    ).fetchone()
    return None if row is None else _request(row)


def request(conn: sqlite3.Connection, request_id: str) -> CorrectionRequest | None:
    row = conn.execute(
        "SELECT * FROM correction_requests WHERE request_id = ?", (request_id,)
    ).fetchone()
    return None if row is None else _request(row)


def save_answer(conn: sqlite3.Connection, answered: CorrectionRequest) -> None:
    conn.execute(
        "UPDATE correction_requests SET status = ?, answer_kind = ?, answer_text = ?, "
        "answered_at = ? WHERE request_id = ?",
        (
            answered.status.value,
            None if answered.answer_kind is None else answered.answer_kind.value,
            answered.answer_text,
            None if answered.answered_at is None else stamp(answered.answered_at),
            answered.request_id,
        ),
    )


def close_requests(
    conn: sqlite3.Connection, closures: Sequence[RequestClosure], at: datetime, label: str
) -> list[str]:
    """Close as `corrected` the open requests an acceptance answers, with a history row each.

    A request closes when it was opened by `at` and, for an accepted content version,
    no later than that content was stored: data stored before the request cannot be the
    correction it asked for; nor can the very content the CDC held when it was opened, sent
    again after a correction taken back. Instants are compared as instants (offsets change
    with DST).
    """
    closed: list[str] = []
    with_open = _with_open_requests(conn, closures)
    for closure in closures:
        if closure.record_id not in with_open:
            continue
        rows = conn.execute(
            "SELECT * FROM correction_requests WHERE record_id = ? AND status = ? "
            "ORDER BY deadline, request_id",
            (closure.record_id, _OPEN),
        ).fetchall()
        if not rows:
            continue
        stored_at, accepted_hash = _stored(conn, closure)
        if closure.version is not None and stored_at is None:
            continue
        status = conn.execute(
            "SELECT status, certifier FROM records WHERE record_id = ?", (closure.record_id,)
        ).fetchone()
        for row in rows:
            found = _request(row)
            if found.opened_at > at or (stored_at is not None and found.opened_at > stored_at):
                continue
            if status is not None and found.certifier not in (None, status["certifier"]):
                continue  # entered for another certifier: the operator says which is right
            if accepted_hash is not None and accepted_hash == found.held_hash:
                continue
            done = corrected_by(found, label, at, withdrawn=closure.version is None)
            save_answer(conn, done)
            closed.append(done.request_id)
            if status is not None:
                conn.execute(
                    "INSERT INTO history (record_id, at, from_status, to_status, reason) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (
                        closure.record_id,
                        stamp(at),
                        status[0],
                        status[0],
                        f"correction request {done.request_id} closed: {done.answer_text}",
                    ),
                )
    return closed


def _with_open_requests(conn: sqlite3.Connection, closures: Sequence[RequestClosure]) -> set[str]:
    """Of the closures' records, those with an open request, in one statement: a report
    accepting 100,000 passages looked each one up, 1.4 s of its transaction."""
    record_ids = json.dumps([c.record_id for c in closures])
    return {
        record_id
        for (record_id,) in conn.execute(
            "SELECT DISTINCT q.record_id FROM json_each(?) AS c "
            "CROSS JOIN correction_requests AS q ON q.record_id = c.value WHERE q.status = ?",
            (record_ids, _OPEN),
        )
    }


def _stored(
    conn: sqlite3.Connection, closure: RequestClosure
) -> tuple[datetime | None, str | None]:
    """When the accepted content version was stored, and its hash (None, None: no version)."""
    if closure.version is None:
        return None, None
    row = conn.execute(
        "SELECT received_at, content_hash FROM contents WHERE record_id = ? AND version = ?",
        (closure.record_id, closure.version),
    ).fetchone()
    return (None, None) if row is None else (datetime.fromisoformat(row[0]), row[1])


# -- the read side ---------------------------------------------------------------------------


def listing(
    conn: sqlite3.Connection,
    *,
    open_only: bool,
    as_of: date,
    margin_days: int,
    limit: int | None = None,
    after: RequestKey | None = None,
    certifier: str | None = None,
) -> list[JsonRow]:
    """Open requests first by deadline; closed ones after them, the same order. `after`:
    those after a page's last (closed, deadline, request_id); `certifier`: those it owes."""
    where: list[str] = []
    params: list[object] = []
    if certifier is not None:
        where.append("coalesce(r.certifier, q.certifier) = ?")
        params.append(certifier)
    if open_only:
        where.append("q.status = ?")
        params.append(_OPEN)
    if after is not None:
        where.append("(q.status != ?, q.deadline, q.request_id) > (?, ?, ?)")
        params += [_OPEN, int(after[0]), after[1], after[2]]
    sql = _SELECT + (f" WHERE {' AND '.join(where)}" if where else "")
    sql += " ORDER BY q.status != ?, q.deadline, q.request_id"
    params.append(_OPEN)
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return [as_json(row, as_of, margin_days) for row in conn.execute(sql, params)]


def of_record(conn: sqlite3.Connection, record_id: str, as_of: date) -> list[JsonRow]:
    """A record's requests, oldest first (`show`); without `at_risk`, which needs the margin."""
    rows = conn.execute(
        _SELECT + " WHERE q.record_id = ? ORDER BY julianday(q.opened_at), q.request_id",
        (record_id,),
    )
    found = [as_json(row, as_of, 0) for row in rows]
    for one in found:
        del one["at_risk"]
    return found


def first_open(requests: Sequence[JsonRow]) -> JsonRow | None:
    """The open request of earliest deadline, in the outstanding listing's shape."""
    opened = [r for r in requests if r["status"] == _OPEN]
    if not opened:
        return None
    first = min(opened, key=lambda r: (r["deadline"], r["request_id"]))
    return {k: first[k] for k in ("request_id", "deadline", "days_left", "status")}


def mismatched(conn: sqlite3.Connection) -> list[tuple[str, str, str, str]]:
    """Open requests entered for one certifier whose record id another certifier's record
    holds: (request_id, record_id, the request's certifier, the record's)."""
    return [
        (str(a), str(b), str(c), str(d))
        for a, b, c, d in conn.execute(
            "SELECT q.request_id, q.record_id, q.certifier, r.certifier "
            "FROM correction_requests q JOIN records r ON r.record_id = q.record_id "
            "WHERE q.status = ? AND q.certifier IS NOT NULL AND r.certifier != q.certifier "
            "ORDER BY q.deadline, q.request_id",
            (_OPEN,),
        )
    ]
