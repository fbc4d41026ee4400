"""What planning a cut reads, on any connection: a transaction's, or a reader's (the plan is
read without the write lock; each batch's cut checks its members again)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, date, datetime

import accrochage.state.sqlite.correction_queries as open_requests
import accrochage.state.sqlite.withdrawals as withdrawals
from accrochage.models.batch import Member, PendingStats, Suppressible
from accrochage.models.record import Record
from accrochage.models.vocabulary import RecordStatus
from accrochage.state.base import StoredContent
from accrochage.state.sqlite.record_rows import record_from
from accrochage.state.sqlite.rows import in_chunks, placeholders, prepared_passage

WITH_VERSIONS = """
SELECT r.*,
  (SELECT max(version) FROM contents c WHERE c.record_id = r.record_id) AS max_version,
  (SELECT content_hash FROM contents c
     WHERE c.record_id = r.record_id AND c.version = r.correction_version) AS correction_hash
FROM records r
"""
_CURRENT = WITH_VERSIONS + "WHERE r.record_id IN ({marks})"


def _earliest(own: str | None, held: date | None) -> date | None:
    """The earlier of the records' own earliest deadline and that of the open requests holding
    the others (a corrected record the CDC had on time waits on its request's deadline)."""
    days = [day for day in (date.fromisoformat(own) if own else None, held) if day is not None]
    return min(days, default=None)


class PendingStatements:
    _conn: sqlite3.Connection

    def pending_stats(self) -> list[PendingStats]:
        """Each certifier's pending records: how many, the oldest, and the earliest deadline,
        that of an open request for a record without one of its own (see `_earliest`)."""
        # pending_since carries its Paris offset, which changes with DST: compare instants
        # (epoch seconds), not strings, or the oldest record is misjudged around the change.
        held: dict[str | None, date] = {}
        for one in open_requests.held_due(self._conn, "r.status = 'pending'"):
            held[one.certifier] = min(one.day, held.get(one.certifier, one.day))
        return [
            PendingStats(
                r["certifier"],
                r["n"],
                datetime.fromtimestamp(int(r["oldest"]), UTC),
                _earliest(r["deadline"], held.get(r["certifier"])),
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

    def records(self, record_ids: Sequence[str]) -> dict[str, Record]:
        found: dict[str, Record] = {}
        for chunk in in_chunks(record_ids):
            for row in self._conn.execute(_CURRENT.format(marks=placeholders(chunk)), chunk):
                found[row["record_id"]] = record_from(row)
        return found

    def content(self, record_id: str, version: int) -> StoredContent:
        payload, event_id, passage, schema = self._conn.execute(
            "SELECT c.payload, c.event_id, p.data, p.schema_version FROM contents c "
            "LEFT JOIN passages p ON p.record_id = c.record_id AND p.version = c.version "
            "WHERE c.record_id = ? AND c.version = ?",
            (record_id, version),
        ).fetchone()
        return StoredContent(payload, event_id, passage=prepared_passage(passage, schema))

    def suppressible(self) -> list[Suppressible]:
        return withdrawals.suppressible(self._conn)

    def correction_deadlines(self, record_ids: Sequence[str]) -> dict[str, date]:
        return open_requests.open_deadlines(self._conn, record_ids)
