"""Records as the operator reads them: outstanding, one record in full, the summary.

The queries of `SqliteReader` (reader.py) about records; batches are in batch_queries.py.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import accrochage.state.sqlite.correction_queries as open_requests
import accrochage.state.sqlite.corrections as correction_rows
from accrochage.models.deadline import Urgency, days_left, urgency
from accrochage.models.record import IDENTITY_PROCEDURE_AFTER
from accrochage.models.vocabulary import RecordOrder, RecordStatus
from accrochage.state.base import JsonRow, Observation
from accrochage.state.queries import OutstandingQuery, RecordKey, record_key, records_after
from accrochage.state.sqlite.batch_queries import batches_of_record, left_out
from accrochage.state.sqlite.observe import UNKNOWN_DEADLINE
from accrochage.state.sqlite.withdrawals import held_elsewhere


def fetch_all(
    conn: sqlite3.Connection, query: str, params: tuple[Any, ...] | list[Any] = ()
) -> list[JsonRow]:
    return [dict(row) for row in conn.execute(query, params)]


def outstanding(conn: sqlite3.Connection, query: OutstandingQuery) -> list[dict[str, Any]]:
    return list(iter_outstanding(conn, query))


def iter_outstanding(conn: sqlite3.Connection, query: OutstandingQuery) -> Iterator[dict[str, Any]]:
    """The records' rows, each with its `correction_request`, merged in order with the
    records an open request holds to its deadline (few: loaded at once, while the records
    stream), which show that deadline in every listing (see `held_open`).

    All of it is read in one snapshot: its statements run one after the other, and a record
    a writer moved between them (from the undated rows to the dated ones, into or out of
    those an open request holds) would otherwise be listed twice or not at all."""
    with _one_snapshot(conn):
        yield from _listed(conn, query)


def _listed(conn: sqlite3.Connection, query: OutstandingQuery) -> Iterator[dict[str, Any]]:
    after = None if query.cursor is None else records_after(query.cursor, query.order)
    opened = open_requests.open_refs(conn)
    merging = bool(opened)
    records = _record_rows(conn, query, after, skip_held=merging)
    rows = (open_requests.attach(row, opened, query.as_of) for row in records)
    if not merging:
        yield from rows
        return
    wider = replace(query, due_within=None, overdue=False, only_outstanding=False)
    where, params = _filters(wider)
    key = record_key(query.order)
    held = open_requests.held_open(
        conn,
        opened,
        where,
        params,
        lambda row: present(row, query.as_of),
        as_of=query.as_of,
        due_within=query.due_within,
        overdue=query.overdue,
        deadline_unknown=query.deadline_unknown,
    )
    held = sorted((row for row in held if after is None or key(row) > after), key=key)
    yield from open_requests.merged(rows, held, query.limit, key)


@contextmanager
def _one_snapshot(conn: sqlite3.Connection) -> Iterator[None]:
    if conn.in_transaction:
        yield
        return
    conn.execute("BEGIN")
    try:
        yield
    finally:
        if conn.in_transaction:
            conn.execute("COMMIT")


def _record_rows(
    conn: sqlite3.Connection,
    query: OutstandingQuery,
    after: RecordKey | None,
    *,
    skip_held: bool = False,
) -> Iterator[dict[str, Any]]:
    """Records in `query.order` after `after`, rows as they are read. `skip_held`: without
    the records an open request holds (listed by `held_open`).

    In deadline order, dated and undated records are read by two queries so that each
    follows an index in its order: one query sorting on `deadline IS NULL` would sort every
    matching row to return the first page. Nothing is held but the row at hand: memory stays
    flat in the answer's size.
    """
    where, params = _filters(query)
    limit = query.limit
    if skip_held:
        where = [*where, open_requests.NOT_HELD]
    if query.order is RecordOrder.RECORD_ID:
        if after is not None:
            where, params = [*where, "record_id > ?"], [*params, after[-1]]
        for row in _select(conn, where, params, "record_id", limit):
            yield present(row, query.as_of)
        return
    sent = 0
    undated_after = after is not None and after[0] is True
    if not undated_after:
        dated, dated_params = [*where, "deadline IS NOT NULL"], list(params)
        if after is not None:
            dated.append("(deadline, record_id) > (?, ?)")
            dated_params += list(after[1:])
        for row in _select(conn, dated, dated_params, "deadline, record_id", limit):
            sent += 1
            yield present(row, query.as_of)
    undated_possible = query.due_within is None and not query.overdue
    if undated_possible and (limit is None or sent < limit):
        undated, undated_params = [*where, "deadline IS NULL"], list(params)
        if undated_after and after is not None:
            undated.append("record_id > ?")
            undated_params.append(after[-1])
        remaining = None if limit is None else limit - sent
        for row in _select(conn, undated, undated_params, "record_id", remaining):
            yield present(row, query.as_of)


def _filters(query: OutstandingQuery) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    if query.only_outstanding or query.due_within is not None or query.overdue:
        where.append("outstanding = 1")
    if query.deadline_unknown:
        where.append(UNKNOWN_DEADLINE)
    if query.reason is not None:
        where.append("cdc_reason = ?")
        params.append(query.reason)
    if query.certifier is not None:
        where.append("certifier = ?")
        params.append(query.certifier)
    if query.statuses:
        for status in query.statuses:
            RecordStatus(status)
        where.append(f"status IN ({', '.join('?' * len(query.statuses))})")
        params.extend(query.statuses)
    if query.due_within is not None:
        where.append("deadline <= ?")
        params.append((query.as_of + timedelta(days=query.due_within)).isoformat())
    if query.overdue:
        where.append("deadline < ?")
        params.append(query.as_of.isoformat())
    return where, params


def _select(
    conn: sqlite3.Connection, where: list[str], params: list[Any], order: str, limit: int | None
) -> Iterator[sqlite3.Row]:
    sql = f"SELECT * FROM records WHERE {' AND '.join(where) or '1 = 1'} ORDER BY {order}"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return iter(conn.execute(sql, params))


def present(row: sqlite3.Row, as_of: date) -> dict[str, Any]:
    deadline = row["deadline"]
    due = deadline is not None and bool(row["outstanding"])
    return {
        "certifier": row["certifier"],
        "record_id": row["record_id"],
        "status": row["status"],
        "delivered_on": row["delivered_on"],
        "deadline": deadline,
        "days_left": days_left(date.fromisoformat(deadline), as_of) if due else None,
        "batch_id": row["batch_id"],
        "errors": json.loads(row["errors"]),
        "warnings": json.loads(row["warnings"]),
        "correction_pending": row["correction_version"] is not None,
        "correction_errors": json.loads(row["correction_errors"] or "[]"),
        "revocation_pending": bool(row["revocation_pending"]),
        "cdc_message": row["cdc_message"],
        "cdc_reason": row["cdc_reason"],
        "suppression_rejected": bool(row["suppression_rejected"]),
        "identity_procedure": row["identity_rejections"] >= IDENTITY_PROCEDURE_AFTER,
        "cdc_held_as": row["cdc_held_as"],
    }


def record_detail(conn: sqlite3.Connection, record_id: str, as_of: date) -> dict[str, Any] | None:
    """A record as `show` prints it: its fields, its content, its history, its batches."""
    row = conn.execute("SELECT * FROM records WHERE record_id = ?", (record_id,)).fetchone()
    if row is None:
        return None
    detail = present(row, as_of)
    requests = correction_rows.of_record(conn, record_id, as_of)
    detail["correction_request"] = correction_rows.first_open(requests)
    open_requests.held_deadline(detail, bool(row["outstanding"]), row["deadline"])
    detail["version"] = row["version"]
    detail["accepted_batch_id"] = row["accepted_batch_id"]
    detail["correction_version"] = row["correction_version"]
    valid = row["correction_valid"]
    detail["correction_valid"] = None if valid is None else bool(valid)
    detail["excluded_from"] = row["excluded_from"]
    detail["content"] = _content(conn, record_id, row["version"])
    detail["correction"] = (
        _content(conn, record_id, row["correction_version"])
        if row["correction_version"] is not None
        else None
    )
    carried = batches_of_record(conn, record_id)
    detail["batches"] = carried
    detail["batch"] = next((b for b in carried if b["batch_id"] == row["batch_id"]), None)
    detail["history"] = fetch_all(
        conn,
        "SELECT at, from_status, to_status, reason, batch_id, report, event_id FROM history "
        "WHERE record_id = ? ORDER BY id",
        (record_id,),
    )
    detail["correction_requests"] = requests
    return detail


def _content(conn: sqlite3.Connection, record_id: str, version: int) -> Any:
    found = conn.execute(
        "SELECT payload FROM contents WHERE record_id = ? AND version = ?", (record_id, version)
    ).fetchone()
    return json.loads(found[0]) if found is not None else None


def summary(
    conn: sqlite3.Connection, as_of: date, margin_days: int, seen: Observation
) -> dict[str, Any]:
    """`seen`: the numbers the alerts watch, read in the same transaction; the summary's
    counts are theirs, summed (one reading of the records, not two)."""
    by_status: dict[str, int] = {}
    per_certifier: dict[str, dict[str, int]] = {}
    for (certifier, status), count in sorted(
        seen.records.items(), key=lambda item: (item[0][0] or "?", item[0][1])
    ):
        by_status[status] = by_status.get(status, 0) + count
        per_certifier.setdefault(certifier or "?", {})[status] = count
    by_status = dict(sorted(by_status.items()))
    today = as_of.isoformat()
    not_held = open_requests.NOT_HELD  # those are counted by their request's deadline
    overdue = sum(seen.overdue.values())
    at_risk = sum(seen.at_risk.values())
    unknown = sum((seen.deadline_unknown or {}).values())
    next_rows: list[tuple[str, str, str | None, bool]] = [
        (r["deadline"], r["record_id"], r["certifier"], False)
        for r in conn.execute(
            "SELECT record_id, certifier, deadline FROM records WHERE outstanding = 1 "
            f"AND deadline >= ? AND {not_held} ORDER BY deadline, record_id LIMIT 10",
            (today,),
        )
    ]
    for held in open_requests.held_due(conn):
        if held.day >= as_of:
            row = (held.day.isoformat(), held.record_id, held.certifier, held.delivery_unknown)
            next_rows.append(row)
    next_rows = sorted(next_rows)[:10]
    return {
        "as_of": today,
        "records": sum(by_status.values()),
        "outstanding": conn.execute(
            "SELECT count(*) FROM records WHERE outstanding = 1"
        ).fetchone()[0],
        "by_status": by_status,
        "by_certifier": per_certifier,
        "at_risk": at_risk,
        "deadline_unknown": unknown,
        "overdue": overdue,
        "deadline_margin_days": margin_days,
        "next_deadlines": [
            {
                "record_id": record_id,
                "certifier": certifier,
                "deadline": day,
                "days_left": days_left(date.fromisoformat(day), as_of),
                "urgency": (
                    Urgency.AT_RISK  # its delivery's deadline is unknown: at risk, all the same
                    if delivery_unknown
                    else urgency(date.fromisoformat(day), as_of, margin_days)
                ).value,
            }
            for day, record_id, certifier, delivery_unknown in next_rows
        ],
        "unusable_events": conn.execute(
            "SELECT count(*) FROM unusable WHERE dismissed_at IS NULL"
        ).fetchone()[0],
        "left_out": left_out(conn),
        "held_elsewhere": held_elsewhere(conn),
        "batches": {
            r[0]: r[1]
            for r in conn.execute(
                "SELECT state, count(*) FROM batches GROUP BY state ORDER BY state"
            )
        },
    }
