"""The write side of the SQLite store: every statement a unit of work may run."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

import accrochage.state.sqlite.alerts as alert_rows
import accrochage.state.sqlite.corrections as correction_rows
from accrochage.models.batch import batch_ids_in
from accrochage.models.corrections import CorrectionRequest, RequestClosure
from accrochage.models.record import Change
from accrochage.models.replay import TakenEvent
from accrochage.state.base import (
    AlertDelivery,
    AlertState,
    DeadLetter,
    ImportedReport,
    Transaction,
)
from accrochage.state.sqlite.batch_statements import BatchStatements
from accrochage.state.sqlite.cut_statements import INSERT_HISTORY
from accrochage.state.sqlite.record_rows import RECORD_COLUMNS, record_values
from accrochage.state.sqlite.rows import (
    CONTENT_COLUMNS,
    content_values,
    history_values,
    passage_values,
    placeholders,
    stamp,
)
from accrochage.state.sqlite.unusable_statements import UnusableStatements

_UPSERT_RECORD = (
    f"INSERT OR REPLACE INTO records ({', '.join(RECORD_COLUMNS)}) "
    f"VALUES ({placeholders(RECORD_COLUMNS)})"
)
_INSERT_CONTENT = (
    f"INSERT OR REPLACE INTO contents ({', '.join(CONTENT_COLUMNS)}) "
    f"VALUES ({placeholders(CONTENT_COLUMNS)})"
)
_INSERT_PASSAGE = (
    "INSERT OR REPLACE INTO passages (record_id, version, schema_version, data) VALUES (?, ?, ?, ?)"
)


class SqliteTransaction(BatchStatements, UnusableStatements, Transaction):
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    # -- records ---------------------------------------------------------------------------

    def versions_stored_by(self, record_id: str, event_id: str) -> list[tuple[int, str]]:
        return [
            (version, digest)
            for version, digest in self._conn.execute(
                "SELECT version, content_hash FROM contents WHERE record_id = ? AND event_id = ? "
                "ORDER BY version",
                (record_id, event_id),
            )
        ]

    def events_taken(self, record_id: str, event_id: str) -> list[str | None]:
        return [
            digest or None
            for (digest,) in self._conn.execute(
                "SELECT content_hash FROM taken_events WHERE record_id = ? AND event_id = ?",
                (record_id, event_id),
            )
        ]

    def remember_events(self, events: Iterable[TakenEvent]) -> None:
        self._conn.executemany(
            "INSERT OR IGNORE INTO taken_events (record_id, event_id, content_hash) "
            "VALUES (?, ?, ?)",
            [(e.record_id, e.event_id, e.content_hash or "") for e in events],
        )

    def save(self, changes: Iterable[Change]) -> None:
        records, contents, history = [], [], []
        passages: list[tuple[str, int, str, bytes]] = []
        for change in changes:
            if change.record is not None:
                records.append(record_values(change.record))
            content = change.content
            if content is not None:
                contents.append(content_values(content))
                if content.passage is not None:
                    passages.append(passage_values(content))
            if change.history is not None:
                history.append(history_values(change.history))
            history.extend(history_values(entry) for entry in change.extra_history)
        self._conn.executemany(_UPSERT_RECORD, records)
        self._conn.executemany(_INSERT_CONTENT, contents)
        self._conn.executemany(_INSERT_PASSAGE, passages)
        self._conn.executemany(INSERT_HISTORY, history)

    # -- inputs ----------------------------------------------------------------------------

    def offsets(self, source: str) -> dict[int, int]:
        rows = self._conn.execute(
            "SELECT partition, next_offset FROM input_offsets WHERE source = ?", (source,)
        )
        return {int(r["partition"]): int(r["next_offset"]) for r in rows}

    def save_offsets(
        self, source: str, offsets: dict[int, int], marks: Mapping[int, str] | None = None
    ) -> None:
        known = marks or {}
        self._conn.executemany(
            "INSERT INTO input_offsets (source, partition, next_offset, last_mark) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (source, partition) DO UPDATE SET "
            "next_offset = excluded.next_offset, last_mark = excluded.last_mark",
            [
                (source, partition, offset, known.get(partition))
                for partition, offset in offsets.items()
            ],
        )

    def queue_dead_letters(self, letters: Iterable[DeadLetter]) -> None:
        self._conn.executemany(
            "INSERT INTO dead_letters (topic, key, value, created_at) "
            "VALUES (?, ?, ?, datetime('now'))",
            [(d.topic, d.key, d.value) for d in letters],
        )

    def forget_dead_letters(self, ids: Iterable[int]) -> None:
        self._conn.executemany("DELETE FROM dead_letters WHERE id = ?", [(i,) for i in ids])

    # -- CDC reports -----------------------------------------------------------------------

    def find_batch(self, id_flux: str | None, file_name: str | None) -> str | None:
        for column, value in (("batch_id", id_flux), ("file_name", file_name)):
            if value:
                row = self._conn.execute(
                    f"SELECT batch_id FROM batches WHERE {column} = ?", (value,)
                ).fetchone()
                if row is not None:
                    return str(row["batch_id"])
        named = batch_ids_in(file_name or "")
        found = [
            str(row["batch_id"])
            for row in self._conn.execute(
                f"SELECT batch_id FROM batches WHERE batch_id IN ({placeholders(named)})", named
            )
        ]
        return found[0] if len(found) == 1 else None

    def report_imported(self, sha256: str) -> bool:
        found = self._conn.execute("SELECT 1 FROM reports WHERE sha256 = ?", (sha256,))
        return found.fetchone() is not None

    def processing_imported(
        self, id_traitement: str, batch_id: str | None, file_name: str | None
    ) -> bool:
        if batch_id is not None:
            found = self._conn.execute(
                "SELECT 1 FROM reports WHERE id_traitement = ? AND batch_id = ?",
                (id_traitement, batch_id),
            )
        else:
            found = self._conn.execute(
                "SELECT 1 FROM reports WHERE id_traitement = ? AND batch_id IS NULL "
                "AND file_name IS ?",
                (id_traitement, file_name),
            )
        return found.fetchone() is not None

    def alert_states(self) -> list[AlertState]:
        return alert_rows.alert_states(self._conn)

    def save_alert_states(self, states: Iterable[AlertState]) -> None:
        alert_rows.save_alert_states(self._conn, states)

    def save_alert_delivery(self, delivery: AlertDelivery) -> None:
        alert_rows.save_alert_delivery(self._conn, delivery)

    def save_report(self, report: ImportedReport) -> None:
        self._conn.execute(
            "INSERT INTO reports (sha256, file_name, id_flux, id_traitement, batch_id, "
            "imported_at, summary) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                report.sha256,
                report.file_name,
                report.id_flux,
                report.id_traitement,
                report.batch_id,
                stamp(report.imported_at),
                json.dumps(report.summary, ensure_ascii=False),
            ),
        )
        if report.batch_id is not None:
            self._conn.execute(
                "UPDATE batches SET report_file = ?, id_traitement = ? WHERE batch_id = ?",
                (report.name, report.id_traitement, report.batch_id),
            )

    # -- correction requests ---------------------------------------------------------------

    def add_correction_request(self, request: CorrectionRequest) -> None:
        correction_rows.add_request(self._conn, request)

    def correction_request(self, request_id: str) -> CorrectionRequest | None:
        return correction_rows.request(self._conn, request_id)

    def open_request_like(self, asked: CorrectionRequest) -> CorrectionRequest | None:
        return correction_rows.open_like(self._conn, asked)

    def answer_correction_request(self, request: CorrectionRequest) -> None:
        correction_rows.save_answer(self._conn, request)

    def close_correction_requests(
        self, closures: Sequence[RequestClosure], at: datetime, label: str
    ) -> list[str]:
        return correction_rows.close_requests(self._conn, closures, at, label)
