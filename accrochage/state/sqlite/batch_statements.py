"""The batch statements of a unit of work: pending records, cuts, files, the CDC loop.

A mixin of `SqliteTransaction` (transaction.py), kept apart so that each file reads as one
subject; it runs on the transaction's connection.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

import accrochage.state.sqlite.withdrawals as withdrawals
from accrochage.models.batch import (
    Archived,
    BatchInfo,
    FrozenBatch,
    Member,
    ReleasedFile,
    Suppressible,
)
from accrochage.models.record import HistoryEntry, MembersMoved, Record
from accrochage.models.vocabulary import (
    BATCHES_TO_WRITE,
    BatchState,
    CdcAction,
    RecordStatus,
)
from accrochage.models.withdrawal import Sending
from accrochage.state.sqlite.passage_statements import PassageStatements
from accrochage.state.sqlite.pending import PendingStatements
from accrochage.state.sqlite.rows import (
    HISTORY_COLUMNS,
    batch_info_from,
    history_values,
    members_moved_values,
    placeholders,
    record_from,
    stamp,
)

MIN_PREFIX = 8
"""A batch id prefix names a batch from this many characters on."""
WITH_VERSIONS = """
SELECT r.*,
  (SELECT max(version) FROM contents c WHERE c.record_id = r.record_id) AS max_version,
  (SELECT content_hash FROM contents c
     WHERE c.record_id = r.record_id AND c.version = r.correction_version) AS correction_hash
FROM records r
"""
INSERT_HISTORY = (
    f"INSERT INTO history ({', '.join(HISTORY_COLUMNS)}) VALUES ({placeholders(HISTORY_COLUMNS)})"
)


_TAKE_PENDING = (
    "UPDATE records SET status = ?, batch_id = ?, pending_since = NULL, updated_at = ? "
    "WHERE rowid IN (SELECT r.rowid FROM json_each(?) AS planned CROSS JOIN records AS r "
    "ON r.record_id = planned.value ->> 0 WHERE r.version = planned.value ->> 1 "
    "AND r.status = ? AND r.certifier = ?)"
)
"""The planned members, one JSON array of `[record_id, version]`, moved by one statement run
once. Run once a member (`executemany`), each run opened the table and every index it changes
again: a cut of 100,000 members held the write lock 1.43 s, against 1.22 (`python -m
bench.cut`)."""

_ADD_MEMBERS = (
    "INSERT INTO batch_members (batch_id, code, record_id, version) "
    "SELECT ?, value ->> 0, value ->> 1, value ->> 2 FROM json_each(?)"
)
"""The batch's members, one JSON array of `[code, record_id, version]`, in one statement (see
`_TAKE_PENDING`)."""

_MEMBERS_MOVED = (
    f"INSERT INTO history ({', '.join(HISTORY_COLUMNS)}) "
    "SELECT record_id, ?, ?, ?, ?, batch_id, NULL, NULL FROM batch_members "
    "WHERE batch_id = ? ORDER BY code, record_id"
)
"""One entry a member, written by SQLite: a cut of 30,000 members spent 40 % of its time
building their entries in Python, the write lock held all along."""

_TO_WRITE = ", ".join(f"'{state.value}'" for state in BATCHES_TO_WRITE)
"""The states a batch is written from: any other (superseded meanwhile) refuses the record."""


class BatchStatements(PassageStatements, PendingStatements):
    _conn: sqlite3.Connection

    def _add_history(self, entries: Iterable[HistoryEntry]) -> None:
        self._conn.executemany(INSERT_HISTORY, [history_values(e) for e in entries])

    def take_pending(
        self, certifier: str, members: Sequence[Member], batch_id: str, at: datetime
    ) -> list[Member]:
        # One statement moves and checks every member; the members moved are only looked up
        # when some were not (changed since the plan was read: the rare case).
        planned = json.dumps([[m.record_id, m.version] for m in members])
        moved = self._conn.execute(
            _TAKE_PENDING,
            (
                RecordStatus.BATCHED.value,
                batch_id,
                stamp(at),
                planned,
                RecordStatus.PENDING.value,
                certifier,
            ),
        ).rowcount
        if moved == len(members):
            return list(members)
        taken = {
            record_id
            for (record_id,) in self._conn.execute(
                "SELECT record_id FROM records WHERE batch_id = ?", (batch_id,)
            )
        }
        return [m for m in members if m.record_id in taken]

    def add_batch(
        self,
        batch: FrozenBatch,
        file_name: str,
        members: Sequence[Member],
        history: Iterable[HistoryEntry] | MembersMoved,
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
        self._conn.execute(
            _ADD_MEMBERS,
            (batch.batch_id, json.dumps([[m.code, m.record_id, m.version] for m in members])),
        )
        if isinstance(history, MembersMoved):
            self._conn.execute(_MEMBERS_MOVED, members_moved_values(history))
        else:
            self._add_history(history)
        if batch.action is CdcAction.SUPPRESSION:
            withdrawals.add_suppression_members(
                self._conn, batch.batch_id, [m.record_id for m in members], created
            )

    def batch_written(self, batch_id: str, file: ReleasedFile, at: datetime) -> bool:
        written = self._conn.execute(
            "UPDATE batches SET state = ?, file_path = ?, sha256 = ?, bytes = ?, "
            f"error = NULL, written_at = ? WHERE batch_id = ? AND state IN ({_TO_WRITE})",
            (BatchState.WRITTEN.value, str(file.path), file.sha256, file.size, stamp(at), batch_id),
        )
        return written.rowcount == 1

    def batch_failed(self, batch_id: str, error: str) -> bool:
        failed = self._conn.execute(
            "UPDATE batches SET state = ?, error = ? "
            f"WHERE batch_id = ? AND state IN ({_TO_WRITE})",
            (BatchState.FAILED.value, error, batch_id),
        )
        return failed.rowcount == 1

    def record_file_path(self, batch_id: str, recorded: Path, now: Path) -> bool:
        updated = self._conn.execute(
            "UPDATE batches SET file_path = ? WHERE batch_id = ? AND file_path = ?",
            (str(now), batch_id, str(recorded)),
        )
        return updated.rowcount == 1

    def batch(self, batch_id: str) -> BatchInfo | None:
        row = self._conn.execute(
            "SELECT batch_id, certifier, state, file_name, file_path, action, schema_version, "
            "created_at, archived_at, archived_to, sha256, bytes FROM batches WHERE batch_id = ?",
            (batch_id,),
        ).fetchone()
        return None if row is None else batch_info_from(row)

    def batch_archived(self, batch_id: str, archived: Archived) -> None:
        to = None if archived.to is None else str(archived.to)
        self._conn.execute(
            "UPDATE batches SET archived_at = ?, archived_to = ? WHERE batch_id = ?",
            (stamp(archived.at), to, batch_id),
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
                WITH_VERSIONS + "WHERE r.batch_id = ? ORDER BY r.code, r.record_id",
                (batch_id,),
            )
        ]

    def record_ids_in_batch(self, batch_id: str) -> list[str]:
        return [
            row[0]
            for row in self._conn.execute(
                "SELECT record_id FROM records WHERE batch_id = ? ORDER BY code, record_id",
                (batch_id,),
            )
        ]

    def suppressible(self) -> list[Suppressible]:
        return withdrawals.suppressible(self._conn)

    def to_supersede(self) -> list[str]:
        return withdrawals.to_supersede(self._conn)

    def undeposited_creations(self) -> list[FrozenBatch]:
        return withdrawals.undeposited_creations(self._conn)

    def batch_superseded(self, batch_id: str, file: Path | None) -> None:
        withdrawals.batch_superseded(self._conn, batch_id, file)

    def sendings(self, record_id: str) -> list[Sending]:
        return withdrawals.sendings(self._conn, record_id)

    def carried_hash(self, batch_id: str, record_id: str) -> str | None:
        return withdrawals.carried_hash(self._conn, batch_id, record_id)

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
        where = [  # a record held under another id waits for the CDC's support, not a retry
            "(status = ? OR (status = ? AND suppression_rejected = 1 AND cdc_held_as IS NULL))"
        ]
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
