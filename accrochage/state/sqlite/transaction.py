"""The write side of the SQLite store: every statement a unit of work may run."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path

import accrochage.state.sqlite.alerts as alert_rows
import accrochage.state.sqlite.corrections as correction_rows
import accrochage.state.sqlite.withdrawals as withdrawals
from accrochage.models.batch import (
    BatchInfo,
    FrozenBatch,
    Member,
    PendingStats,
    ReleasedFile,
    Suppressible,
)
from accrochage.models.corrections import CorrectionRequest, RequestClosure
from accrochage.models.record import Change, HistoryEntry, Record
from accrochage.models.vocabulary import BatchState, CdcAction, RecordStatus, SchemaVersion
from accrochage.models.withdrawal import Sending
from accrochage.state.base import (
    AlertDelivery,
    AlertState,
    DeadLetter,
    ImportedReport,
    StoredContent,
    Transaction,
    UnusableEvent,
)
from accrochage.state.sqlite.rows import (
    CONTENT_COLUMNS,
    HISTORY_COLUMNS,
    RECORD_COLUMNS,
    content_values,
    history_values,
    in_chunks,
    placeholders,
    problems_json,
    record_from,
    record_values,
    stamp,
)

MIN_PREFIX = 8
"""A batch id prefix names a batch from this many characters on."""
_UPSERT_RECORD = (
    f"INSERT OR REPLACE INTO records ({', '.join(RECORD_COLUMNS)}) "
    f"VALUES ({placeholders(RECORD_COLUMNS)})"
)
_INSERT_CONTENT = (
    f"INSERT OR REPLACE INTO contents ({', '.join(CONTENT_COLUMNS)}) "
    f"VALUES ({placeholders(CONTENT_COLUMNS)})"
)
_INSERT_HISTORY = (
    f"INSERT INTO history ({', '.join(HISTORY_COLUMNS)}) VALUES ({placeholders(HISTORY_COLUMNS)})"
)
_WITH_VERSIONS = """
SELECT r.*,
  (SELECT max(version) FROM contents c WHERE c.record_id = r.record_id) AS max_version,
  (SELECT content_hash FROM contents c
     WHERE c.record_id = r.record_id AND c.version = r.correction_version) AS correction_hash
FROM records r
"""
_CURRENT = _WITH_VERSIONS + "WHERE r.record_id IN ({marks})"


class SqliteTransaction(Transaction):
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    # -- records ---------------------------------------------------------------------------

    def records(self, record_ids: Sequence[str]) -> dict[str, Record]:
        found: dict[str, Record] = {}
        for chunk in in_chunks(record_ids):
            for row in self._conn.execute(_CURRENT.format(marks=placeholders(chunk)), chunk):
                found[row["record_id"]] = record_from(row)
        return found

    def save(self, changes: Iterable[Change]) -> None:
        records, contents, history = [], [], []
        for change in changes:
            if change.record is not None:
                records.append(record_values(change.record))
            if change.content is not None:
                contents.append(content_values(change.content))
            if change.history is not None:
                history.append(history_values(change.history))
            history.extend(history_values(entry) for entry in change.extra_history)
        self._conn.executemany(_UPSERT_RECORD, records)
        self._conn.executemany(_INSERT_CONTENT, contents)
        self._conn.executemany(_INSERT_HISTORY, history)

    def _add_history(self, entries: Iterable[HistoryEntry]) -> None:
        self._conn.executemany(_INSERT_HISTORY, [history_values(e) for e in entries])

    def log_unusable(self, events: Iterable[UnusableEvent]) -> None:
        self._conn.executemany(
            "INSERT INTO unusable (received_at, source, event_id, record_id, raw, errors) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [
                (
                    stamp(e.received_at),
                    e.source,
                    e.event_id,
                    e.record_id,
                    e.raw,
                    problems_json(e.errors),
                )
                for e in events
            ],
        )

    # -- inputs ----------------------------------------------------------------------------

    def offsets(self, source: str) -> dict[int, int]:
        rows = self._conn.execute(
            "SELECT partition, next_offset FROM input_offsets WHERE source = ?", (source,)
        )
        return {int(r["partition"]): int(r["next_offset"]) for r in rows}

    def save_offsets(self, source: str, offsets: dict[int, int]) -> None:
        self._conn.executemany(
            "INSERT INTO input_offsets (source, partition, next_offset) VALUES (?, ?, ?) "
            "ON CONFLICT (source, partition) DO UPDATE SET next_offset = excluded.next_offset",
            [(source, partition, offset) for partition, offset in offsets.items()],
        )

    def queue_dead_letters(self, letters: Iterable[DeadLetter]) -> None:
        self._conn.executemany(
            "INSERT INTO dead_letters (topic, key, value, created_at) "
            "VALUES (?, ?, ?, datetime('now'))",
            [(d.topic, d.key, d.value) for d in letters],
        )

    def forget_dead_letters(self, ids: Iterable[int]) -> None:
        self._conn.executemany("DELETE FROM dead_letters WHERE id = ?", [(i,) for i in ids])

    # -- batches ---------------------------------------------------------------------------

    def pending_stats(self) -> list[PendingStats]:
        # pending_since carries its Paris offset, which changes with DST: compare instants
        # (epoch seconds), not strings, or the oldest record is misjudged around the change.
        return [
            PendingStats(
                r["certifier"],
                r["n"],
                datetime.fromtimestamp(int(r["oldest"]), UTC),
                datetime.fromisoformat(r["deadline"]).date() if r["deadline"] else None,
            )
            for r in self._conn.execute(
                "SELECT certifier, count(*) AS n, "
                "min(CAST(strftime('%s', pending_since) AS INTEGER)) AS oldest, "
                "min(deadline) AS deadline FROM records WHERE status = 'pending' "
                "GROUP BY certifier ORDER BY certifier"
            )
        ]

    def pending_members(self, certifier: str) -> list[Member]:
        return [
            Member(r["record_id"], r["version"], r["code"], r["xml_bytes"])
            for r in self._conn.execute(
                "SELECT record_id, version, code, xml_bytes FROM records "
                "WHERE status = ? AND certifier = ? ORDER BY code, record_id",
                (RecordStatus.PENDING.value, certifier),
            )
        ]

    def content(self, record_id: str, version: int) -> StoredContent:
        payload, event_id = self._conn.execute(
            "SELECT payload, event_id FROM contents WHERE record_id = ? AND version = ?",
            (record_id, version),
        ).fetchone()
        return StoredContent(payload, event_id)

    def add_batch(
        self,
        batch: FrozenBatch,
        file_name: str,
        members: Sequence[Member],
        history: Iterable[HistoryEntry],
    ) -> None:
        created = stamp(batch.created_at)
        self._conn.execute(
            "INSERT INTO batches (batch_id, certifier, created_at, schema_version, "
            "emitter_id_client, nature, certifier_id_client, id_contrat, state, passages, "
            "file_name, action, sent_as) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                batch.batch_id,
                batch.certifier.key,
                created,
                batch.schema_version.value,
                batch.emitter.id_client,
                batch.emitter.nature,
                batch.certifier.id_client,
                batch.certifier.id_contrat,
                BatchState.CUT.value,
                batch.passages,
                file_name,
                batch.action.value,
                batch.sent_as.value if batch.sent_as is not None else None,
            ),
        )
        self._conn.executemany(
            "INSERT INTO batch_members (batch_id, code, record_id, version) VALUES (?, ?, ?, ?)",
            [(batch.batch_id, m.code, m.record_id, m.version) for m in members],
        )
        self._add_history(history)
        if batch.action is CdcAction.SUPPRESSION:
            withdrawals.add_suppression_members(
                self._conn, batch.batch_id, [m.record_id for m in members], created
            )
            return
        self._conn.executemany(
            "UPDATE records SET status = ?, batch_id = ?, pending_since = NULL, "
            "updated_at = ? WHERE record_id = ?",
            [(RecordStatus.BATCHED.value, batch.batch_id, created, m.record_id) for m in members],
        )

    def batch_written(self, batch_id: str, file: ReleasedFile, at: datetime) -> None:
        self._conn.execute(
            "UPDATE batches SET state = ?, file_path = ?, sha256 = ?, bytes = ?, "
            "error = NULL, written_at = ? WHERE batch_id = ?",
            (BatchState.WRITTEN.value, str(file.path), file.sha256, file.size, stamp(at), batch_id),
        )

    def batch_failed(self, batch_id: str, error: str) -> None:
        self._conn.execute(
            "UPDATE batches SET state = ?, error = ? WHERE batch_id = ?",
            (BatchState.FAILED.value, error, batch_id),
        )

    def batch(self, batch_id: str) -> BatchInfo | None:
        row = self._conn.execute(
            "SELECT batch_id, certifier, state, file_name, file_path, action, schema_version "
            "FROM batches "
            "WHERE batch_id = ?",
            (batch_id,),
        ).fetchone()
        if row is None:
            return None
        path = Path(row["file_path"]) if row["file_path"] else None
        return BatchInfo(
            row["batch_id"],
            row["certifier"],
            BatchState(row["state"]),
            row["file_name"],
            path,
            CdcAction(row["action"]),
            SchemaVersion(row["schema_version"]),
        )

    def batch_deposited(self, batch_id: str, at: datetime, file: Path | None = None) -> None:
        self._conn.execute(
            "UPDATE batches SET state = ?, deposited_at = ?, "
            "file_path = coalesce(?, file_path) WHERE batch_id = ?",
            (BatchState.DEPOSITED.value, stamp(at), str(file) if file else None, batch_id),
        )

    def batch_reported(self, batch_id: str, file: Path | None) -> None:
        self._conn.execute(
            "UPDATE batches SET state = ?, file_path = coalesce(?, file_path) WHERE batch_id = ?",
            (BatchState.REPORTED.value, str(file) if file else None, batch_id),
        )

    def records_in_batch(self, batch_id: str) -> list[Record]:
        return [
            record_from(row)
            for row in self._conn.execute(
                _WITH_VERSIONS + "WHERE r.batch_id = ? ORDER BY r.code, r.record_id",
                (batch_id,),
            )
        ]

    def suppressible(self) -> list[Suppressible]:
        return withdrawals.suppressible(self._conn)

    def to_supersede(self) -> list[str]:
        return withdrawals.to_supersede(self._conn)

    def batch_superseded(self, batch_id: str, file: Path | None) -> None:
        withdrawals.batch_superseded(self._conn, batch_id, file)

    def sendings(self, record_id: str) -> list[Sending]:
        return withdrawals.sendings(self._conn, record_id)

    def batch_ids_matching(self, ref: str) -> list[str]:
        name = ref.replace("\\", "/").rsplit("/", 1)[-1]
        if name.endswith(".xml"):
            rows = self._conn.execute(
                "SELECT batch_id FROM batches WHERE file_name = ?", (name,)
            ).fetchall()
            return [r[0] for r in rows]
        exact = self._conn.execute("SELECT batch_id FROM batches WHERE batch_id = ?", (ref,))
        found = [r[0] for r in exact]
        if found or len(ref) < MIN_PREFIX:
            return found
        pattern = ref.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = self._conn.execute(
            "SELECT batch_id FROM batches WHERE batch_id LIKE ? ESCAPE '\\' ORDER BY batch_id",
            (pattern,),
        ).fetchall()
        return [r[0] for r in rows]

    def rejected_ids(
        self,
        *,
        batch_id: str | None = None,
        certifier: str | None = None,
        reason: str | None = None,
    ) -> list[str]:
        where = ["(status = ? OR (status = ? AND suppression_rejected = 1))"]
        params = [RecordStatus.REJECTED.value, RecordStatus.ACCEPTED.value]
        for column, value in (
            ("batch_id", batch_id),
            ("certifier", certifier),
            ("cdc_reason", reason),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        rows = self._conn.execute(
            f"SELECT record_id FROM records WHERE {' AND '.join(where)} ORDER BY record_id",
            params,
        )
        return [r[0] for r in rows]

    def batch_member_ids(self, batch_id: str) -> list[str]:
        return [
            r[0]
            for r in self._conn.execute(
                "SELECT record_id FROM batch_members WHERE batch_id = ? ORDER BY record_id",
                (batch_id,),
            )
        ]

    # -- CDC reports -----------------------------------------------------------------------

    def find_batch(self, id_flux: str | None, file_name: str | None) -> str | None:
        for column, value in (("batch_id", id_flux), ("file_name", file_name)):
            if value:
                row = self._conn.execute(
                    f"SELECT batch_id FROM batches WHERE {column} = ?", (value,)
                ).fetchone()
                if row is not None:
                    return str(row["batch_id"])
        return None

    def report_imported(self, sha256: str) -> bool:
        found = self._conn.execute("SELECT 1 FROM reports WHERE sha256 = ?", (sha256,))
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

    def answer_correction_request(self, request: CorrectionRequest) -> None:
        correction_rows.save_answer(self._conn, request)

    def close_correction_requests(
        self, closures: Sequence[RequestClosure], at: datetime, label: str
    ) -> list[str]:
        return correction_rows.close_requests(self._conn, closures, at, label)

    def correction_deadlines(self, record_ids: Sequence[str]) -> dict[str, date]:
        return correction_rows.open_deadlines(self._conn, record_ids)
