"""What planning a cut reads, on any connection: a transaction's, or a reader's (the plan is
read without the write lock; each batch's cut checks its members again)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from accrochage.models.batch import Member, PendingStats
from accrochage.models.vocabulary import RecordStatus
from accrochage.state.base import StoredContent
from accrochage.state.sqlite.rows import prepared_passage


class PendingStatements:
    _conn: sqlite3.Connection

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
        payload, event_id, passage, schema = self._conn.execute(
            "SELECT c.payload, c.event_id, p.data, p.schema_version FROM contents c "
            "LEFT JOIN passages p ON p.record_id = c.record_id AND p.version = c.version "
            "WHERE c.record_id = ? AND c.version = ?",
            (record_id, version),
        ).fetchone()
        return StoredContent(payload, event_id, passage=prepared_passage(passage, schema))
