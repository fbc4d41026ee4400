"""The CDC feedback loop: files deposited, processing reports imported, rejections retried."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from accrochage.errors import AccrochageError
from accrochage.models.deadline import Clock
from accrochage.sinks.reports import ProcessingReport, parse_report, read_report
from accrochage.state.lifecycle import Status, history_row, is_outstanding
from accrochage.state.store import Store

AWAITING_REPORT = (Status.BATCHED, Status.DEPOSITED)


@dataclass(slots=True)
class ImportSummary:
    file: str
    batch_id: str | None
    already_imported: bool = False
    accepted: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    unknown_ids: list[str] = field(default_factory=list)
    not_mentioned: list[str] = field(default_factory=list)
    file_error: str | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Feedback:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def _now(self) -> str:
        return self.clock.now().isoformat(timespec="seconds")

    def deposited(self, batch_ids: Sequence[str]) -> list[str]:
        """Record that files were uploaded to the CDC portal; returns what was done for each."""
        now, done = self._now(), []
        with self.store.write() as conn:
            for batch_id in batch_ids:
                row = conn.execute(
                    "SELECT state FROM batches WHERE batch_id = ?", (batch_id,)
                ).fetchone()
                if row is None:
                    raise AccrochageError(f"unknown batch {batch_id}: see `GET /batches`")
                if row["state"] == "deposited":
                    done.append(f"{batch_id}: already recorded as deposited")
                    continue
                if row["state"] != "written":
                    raise AccrochageError(
                        f"batch {batch_id} is {row['state']}, not written: its file is not in "
                        "the outbox yet, so it cannot have been deposited"
                    )
                conn.execute(
                    "UPDATE batches SET state = 'deposited', deposited_at = ? WHERE batch_id = ?",
                    (now, batch_id),
                )
                moved = _move(
                    conn,
                    batch_id,
                    Status.BATCHED,
                    Status.DEPOSITED,
                    now,
                    "file deposited on the CDC portal",
                )
                done.append(f"{batch_id}: deposited ({moved} records)")
        return done

    def retry(self, record_ids: Sequence[str]) -> list[str]:
        now, done = self._now(), []
        with self.store.write() as conn:
            for record_id in record_ids:
                row = conn.execute(
                    "SELECT status FROM records WHERE record_id = ?", (record_id,)
                ).fetchone()
                if row is None:
                    raise AccrochageError(f"unknown record {record_id}")
                if row["status"] != Status.REJECTED:
                    raise AccrochageError(
                        f"record {record_id} is {row['status']}: only rejected records can be "
                        "retried (a corrected event re-queues the others)"
                    )
                conn.execute(
                    "UPDATE records SET status = 'pending', pending_since = ?, batch_id = NULL, "
                    "outstanding = 1, updated_at = ? WHERE record_id = ?",
                    (now, now, record_id),
                )
                Store.add_history(
                    conn,
                    [
                        history_row(
                            record_id,
                            now,
                            Status.REJECTED,
                            Status.PENDING,
                            "retried by the operator",
                        )
                    ],
                )
                done.append(f"{record_id}: pending again")
        return done

    def import_report(self, path: Path) -> ImportSummary:
        data = path.read_bytes() if path.is_file() else b""
        report = read_report(path)
        return self.apply_report(report, data, path.name)

    def import_report_bytes(self, data: bytes, name: str) -> ImportSummary:
        return self.apply_report(parse_report(data, source=name), data, name)

    def apply_report(self, report: ProcessingReport, data: bytes, name: str) -> ImportSummary:
        digest = hashlib.sha256(data).hexdigest()
        now = self._now()
        with self.store.write() as conn:
            batch_id = _find_batch(conn, report)
            summary = ImportSummary(name, batch_id)
            if conn.execute("SELECT 1 FROM reports WHERE sha256 = ?", (digest,)).fetchone():
                summary.already_imported = True
                summary.notes.append("this report was already imported: nothing changed")
                return summary
            if batch_id is None:
                summary.notes.append(
                    f"no batch matches nomFichier {report.file_name!r} / idFlux "
                    f"{report.id_flux!r}: outcomes are applied by idTechnique only"
                )
            label = f"{name} (idTraitement {report.id_traitement})"
            if report.rejected_whole_file:
                _reject_file(conn, report, batch_id, summary, now, label)
            else:
                _apply_outcomes(conn, report, batch_id, summary, now, label)
            conn.execute(
                "INSERT INTO reports (sha256, file_name, id_flux, id_traitement, batch_id, "
                "imported_at, summary) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    digest,
                    report.file_name,
                    report.id_flux,
                    report.id_traitement,
                    batch_id,
                    now,
                    json.dumps(summary.as_dict(), ensure_ascii=False),
                ),
            )
            if batch_id is not None:
                conn.execute(
                    "UPDATE batches SET report_file = ?, id_traitement = ? WHERE batch_id = ?",
                    (name, report.id_traitement, batch_id),
                )
        return summary


def _find_batch(conn: sqlite3.Connection, report: ProcessingReport) -> str | None:
    for column, value in (("batch_id", report.id_flux), ("file_name", report.file_name)):
        if value:
            row = conn.execute(
                f"SELECT batch_id FROM batches WHERE {column} = ?", (value,)
            ).fetchone()
            if row is not None:
                return str(row["batch_id"])
    return None


def _move(
    conn: sqlite3.Connection, batch_id: str, before: Status, after: Status, now: str, reason: str
) -> int:
    ids = [
        r[0]
        for r in conn.execute(
            "SELECT record_id FROM records WHERE batch_id = ? AND status = ?", (batch_id, before)
        )
    ]
    conn.executemany(
        "UPDATE records SET status = ?, updated_at = ? WHERE record_id = ?",
        [(after, now, rid) for rid in ids],
    )
    Store.add_history(conn, (history_row(rid, now, before, after, reason, batch_id) for rid in ids))
    return len(ids)


def _set_outcome(
    conn: sqlite3.Connection,
    row: sqlite3.Row,
    accepted: bool,
    message: str | None,
    now: str,
    label: str,
) -> None:
    after = Status.ACCEPTED if accepted else Status.REJECTED
    revocation = bool(row["revocation_pending"])
    reason = "accepted by the CDC" if accepted else f"rejected by the CDC: {message}"
    if not accepted and revocation:
        # Revoked while in flight and never accepted: the CDC holds nothing to delete.
        after, revocation = Status.WITHDRAWN, False
        reason += "; it had been revoked, so it is withdrawn"
    outstanding = is_outstanding(after, row["correction_version"] is not None, revocation)
    conn.execute(
        "UPDATE records SET status = ?, outstanding = ?, cdc_message = ?, "
        "revocation_pending = ?, updated_at = ? WHERE record_id = ?",
        (after, int(outstanding), message, int(revocation), now, row["record_id"]),
    )
    Store.add_history(
        conn,
        [history_row(row["record_id"], now, row["status"], after, reason, row["batch_id"], label)],
    )


def _apply_outcomes(
    conn: sqlite3.Connection,
    report: ProcessingReport,
    batch_id: str | None,
    summary: ImportSummary,
    now: str,
    label: str,
) -> None:
    mentioned = set()
    for outcome in report.outcomes:
        mentioned.add(outcome.id_technique)
        row = conn.execute(
            "SELECT * FROM records WHERE record_id = ?", (outcome.id_technique,)
        ).fetchone()
        if row is None:
            summary.unknown_ids.append(outcome.id_technique)
            continue
        target = Status.ACCEPTED if outcome.accepted else Status.REJECTED
        if batch_id is not None and row["batch_id"] != batch_id:
            # the record has moved on (re-queued, sent again in another batch): a report on
            # an older batch says nothing of its current state
            summary.unchanged.append(outcome.id_technique)
            continue
        if row["status"] == target or row["status"] not in (*AWAITING_REPORT, Status.REJECTED):
            summary.unchanged.append(outcome.id_technique)
            continue
        _set_outcome(conn, row, outcome.accepted, outcome.message, now, label)
        (summary.accepted if outcome.accepted else summary.rejected).append(outcome.id_technique)
    if batch_id is not None:
        summary.not_mentioned = [
            r[0]
            for r in conn.execute(
                "SELECT record_id FROM batch_members WHERE batch_id = ? ORDER BY record_id",
                (batch_id,),
            )
            if r[0] not in mentioned
        ]


def _reject_file(
    conn: sqlite3.Connection,
    report: ProcessingReport,
    batch_id: str | None,
    summary: ImportSummary,
    now: str,
    label: str,
) -> None:
    error = "; ".join(
        f"{e.type or 'erreur'}: {e.message}" + (f" (ligne {e.line})" if e.line else "")
        for e in report.file_errors
    )
    summary.file_error = error
    if batch_id is None:
        raise AccrochageError(
            f"{summary.file}: the CDC rejected the whole file {report.file_name!r} ({error}), "
            "but no batch has that file name: cannot tell which records it held"
        )
    rows = conn.execute(
        "SELECT r.* FROM batch_members m JOIN records r ON r.record_id = m.record_id "
        "WHERE m.batch_id = ? AND r.batch_id = ?",
        (batch_id, batch_id),
    ).fetchall()
    for row in rows:
        if row["status"] in AWAITING_REPORT:
            _set_outcome(conn, row, False, f"file rejected: {error}", now, label)
            summary.rejected.append(row["record_id"])
        else:
            summary.unchanged.append(row["record_id"])
