"""Batches as the operator sees them (CONTRACT §8): state, action, current file, report."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from typing import Any

from accrochage.models.batch import FrozenBatch
from accrochage.models.vocabulary import BATCHES_TO_WRITE, BatchState, RecordStatus
from accrochage.state.queries import BatchKey
from accrochage.state.sqlite.rows import frozen_batch_from

_WITH_REPORTS = """
SELECT b.*, r.summaries AS report_summaries, r.imported_at AS report_imported_at
FROM chosen b
LEFT JOIN (
    SELECT batch_id, max(imported_at) AS imported_at,
      json_group_array(json_array(julianday(imported_at), rowid, json(summary))) AS summaries
    FROM reports WHERE batch_id IN (SELECT batch_id FROM chosen) GROUP BY batch_id
) r ON r.batch_id = b.batch_id
"""


def _with_reports(chosen: str) -> str:
    """The batches `chosen` selects (`SELECT * FROM batches b ...`), each with its reports.
    Only those batches' reports are gathered and their summaries parsed: grouped over every
    report of the state, one record's `show` (GET /records/{id}) or a page of GET /batches
    parsed a year of reports (140 ms, 13.7 MB of summaries, at 1,000,000 records)."""
    return f"WITH chosen AS ({chosen}) {_WITH_REPORTS}"


def report_counts(summaries: list[tuple[float, int, dict[str, Any]]]) -> tuple[int, int]:
    """Accepted and rejected records of a file over every report imported for it, each
    record counted once, by the last report that named it (in the order they were imported,
    the same second's by their row): a first report leaving records out and a second
    accepting them is the file's whole answer, not the second's alone."""
    accepted: dict[str, bool] = {}
    for _, _, summary in sorted(summaries, key=lambda imported: imported[:2]):
        accepted.update(dict.fromkeys(summary.get("accepted", []), True))
        accepted.update(dict.fromkeys(summary.get("rejected", []), False))
    ok = sum(accepted.values())
    return ok, len(accepted) - ok


def present_batch(row: sqlite3.Row) -> dict[str, Any]:
    report = None
    if row["report_summaries"] is not None:
        ok, ko = report_counts(json.loads(row["report_summaries"]))
        report = {
            "accepted": ok,
            "rejected": ko,
            "imported_at": row["report_imported_at"],
            "file": row["report_file"],
        }
    return {
        "batch_id": row["batch_id"],
        "certifier": row["certifier"],
        "action": row["action"],
        "state": row["state"],
        "file": row["file_path"],
        "file_name": row["file_name"],
        "schema_version": row["schema_version"],
        "passages": row["passages"],
        "bytes": row["bytes"],
        "sha256": row["sha256"],
        "created_at": row["created_at"],
        "written_at": row["written_at"],
        "deposited_at": row["deposited_at"],
        "error": row["error"],
        "report": report,
        "archived": (
            None
            if row["archived_at"] is None
            else {"archived_at": row["archived_at"], "to": row["archived_to"]}
        ),
    }


def batches(
    conn: sqlite3.Connection,
    *,
    state: str | None = None,
    certifier: str | None = None,
    limit: int | None = 100,
    after: BatchKey | None = None,
) -> list[dict[str, Any]]:
    """The batches, newest first; `after`: those after a page's last (created_at, batch_id)."""
    return list(iter_batches(conn, state=state, certifier=certifier, limit=limit, after=after))


def iter_batches(
    conn: sqlite3.Connection,
    *,
    state: str | None = None,
    certifier: str | None = None,
    limit: int | None = 100,
    after: BatchKey | None = None,
) -> Iterator[dict[str, Any]]:
    """The batches, newest first, as they are read (a command prints them as they come)."""
    where: list[str] = ["1 = 1"]
    params: list[str] = []
    if after is not None:
        where.append(
            "(julianday(b.created_at) < julianday(?) "
            "OR (julianday(b.created_at) = julianday(?) AND b.batch_id > ?))"
        )
        params += [after[0], after[0], after[1]]
    if state:
        where.append("b.state = ?")
        params.append(state)
    if certifier:
        where.append("b.certifier = ?")
        params.append(certifier)
    # Stamps carry their Paris offset, which changes with DST: order instants, not strings.
    order = "julianday(b.created_at) DESC, b.batch_id"
    chosen = f"SELECT * FROM batches b WHERE {' AND '.join(where)} ORDER BY {order}"
    if limit is not None:
        chosen += f" LIMIT {int(limit)}"
    for row in conn.execute(f"{_with_reports(chosen)} ORDER BY {order}", params):
        yield present_batch(row)


def batch_detail(conn: sqlite3.Connection, batch_id: str) -> dict[str, Any] | None:
    chosen = "SELECT * FROM batches b WHERE b.batch_id = ?"
    row = conn.execute(_with_reports(chosen), (batch_id,)).fetchone()
    if row is None:
        return None
    detail = present_batch(row)
    detail["members"] = [
        r[0]
        for r in conn.execute(
            "SELECT record_id FROM batch_members WHERE batch_id = ? ORDER BY code, record_id",
            (batch_id,),
        )
    ]
    return detail


def batches_of_record(conn: sqlite3.Connection, record_id: str) -> list[dict[str, Any]]:
    """The batches that carried a record, oldest first."""
    return [
        present_batch(row)
        for row in conn.execute(
            _with_reports(
                "SELECT * FROM batches b WHERE b.batch_id IN "
                "(SELECT batch_id FROM batch_members WHERE record_id = ?)"
            )
            + " ORDER BY julianday(b.created_at), b.batch_id",
            (record_id,),
        )
    ]


IN_FLIGHT = f"status IN ('{RecordStatus.BATCHED.value}', '{RecordStatus.DEPOSITED.value}')"
"""The WHERE of m290's partial index `records_in_flight`, as the queries must spell it for
SQLite to use that index."""


def left_out(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """The reported batches whose processed report did not mention some of their records
    (still `batched` or `deposited`, or accepted with the SUPPRESSION that batch carried:
    `operator.left_out_by`): batch id, certifier, file name, those records' count. Counted
    in each reported batch from two partial indexes (m270, m290), never from every record in
    flight (nearly all in files not reported yet) nor every accepted one."""
    rows = conn.execute(
        "SELECT * FROM (SELECT b.batch_id, b.certifier, b.file_name, b.created_at, "
        "(SELECT count(*) FROM records r INDEXED BY records_in_flight "
        f"WHERE r.batch_id = b.batch_id AND r.{IN_FLIGHT}) + "
        "(SELECT count(*) FROM records r INDEXED BY records_accepted_elsewhere "
        f"WHERE r.batch_id = b.batch_id AND r.status = '{RecordStatus.ACCEPTED.value}' "
        "AND r.batch_id IS NOT r.accepted_batch_id AND r.suppression_rejected = 0) AS records "
        "FROM batches b WHERE b.state = ?) WHERE records > 0 "
        "ORDER BY julianday(created_at), batch_id",
        (BatchState.REPORTED.value,),
    )
    return [
        {key: row[key] for key in ("batch_id", "certifier", "file_name", "records")} for row in rows
    ]


def batches_to_write(conn: sqlite3.Connection) -> list[FrozenBatch]:
    states = [s.value for s in BATCHES_TO_WRITE]
    return [
        frozen_batch_from(row)
        for row in conn.execute(
            f"SELECT * FROM batches WHERE state IN ({', '.join('?' * len(states))}) "
            "ORDER BY created_at, batch_id",
            states,
        )
    ]
