"""The batch statements of a unit of work: pending records, cuts, files, the CDC loop.

A mixin of `SqliteTransaction` (transaction.py), kept apart so that each file reads as one
subject; it runs on the transaction's connection.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import accrochage.state.sqlite.acceptances as acceptances
import accrochage.state.sqlite.withdrawals as withdrawals
from accrochage.models.batch import (
    Archived,
    BatchInfo,
    FrozenBatch,
    ReleasedFile,
)
from accrochage.models.record import MembersMoved, Record
from accrochage.models.vocabulary import (
    BATCHES_TO_WRITE,
    BatchState,
    RecordStatus,
)
from accrochage.models.withdrawal import Sending
from accrochage.state.sqlite.cut_statements import CutStatements
from accrochage.state.sqlite.passage_statements import PassageStatements
from accrochage.state.sqlite.pending import WITH_VERSIONS, PendingStatements
from accrochage.state.sqlite.record_rows import record_from
from accrochage.state.sqlite.rows import (
    batch_info_from,
    stamp,
)

MIN_PREFIX = 8
"""A batch id prefix names a batch from this many characters on."""


_TO_WRITE = ", ".join(f"'{state.value}'" for state in BATCHES_TO_WRITE)
"""The states a batch is written from: any other (superseded meanwhile) refuses the record."""


class BatchStatements(CutStatements, PassageStatements, PendingStatements):
    _conn: sqlite3.Connection

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

    def accept_plain(self, moved: MembersMoved, record_ids: Sequence[str]) -> dict[str, int]:
        return acceptances.accept_plain(self._conn, moved, record_ids)

    def withdraw_plain(self, moved: MembersMoved, record_ids: Sequence[str]) -> list[str]:
        return acceptances.withdraw_plain(self._conn, moved, record_ids)

    def to_supersede(self) -> list[str]:
        return withdrawals.to_supersede(self._conn)

    def half_superseded(self) -> list[str]:
        return withdrawals.half_superseded(self._conn)

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
