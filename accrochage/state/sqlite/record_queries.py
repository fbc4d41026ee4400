"""Records as the operator reads them: one record in full, a row as listed, the summary.

The queries of `SqliteReader` (reader.py) about records; their listing is in
record_listing.py, batches are in batch_queries.py.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import date
from typing import Any

import accrochage.state.sqlite.correction_queries as open_requests
import accrochage.state.sqlite.corrections as correction_rows
from accrochage.models.deadline import Urgency, days_left, urgency
from accrochage.models.record import IDENTITY_PROCEDURE_AFTER
from accrochage.state.base import JsonRow, Observation
from accrochage.state.sqlite.batch_queries import batches_of_record, left_out
from accrochage.state.sqlite.withdrawals import held_elsewhere


def fetch_all(
    conn: sqlite3.Connection, query: str, params: tuple[Any, ...] | list[Any] = ()
) -> list[JsonRow]:
    return [dict(row) for row in conn.execute(query, params)]


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


def by_key(counts: dict[str | None, int]) -> dict[str, int]:
    """Per certifier, `?` for records that name none; zeros left out."""
    found: dict[str, int] = {}
    for certifier, n in counts.items():
        if n:
            found[certifier or "?"] = found.get(certifier or "?", 0) + n
    return dict(sorted(found.items()))
