"""The prepared passages a written batch no longer needs: a mixin of `SqliteTransaction`
(transaction.py) beside `BatchStatements`, on the transaction's connection."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from accrochage.models.vocabulary import RecordStatus

_NEEDED_PASSAGE = (
    "SELECT 1 FROM passages p WHERE EXISTS (SELECT 1 FROM records r WHERE "
    "r.record_id = p.record_id AND r.version = p.version AND r.status = ?) LIMIT 1"
)
"""Read from the passages' side: pending records without a passage (decoded where they
were stored) are never read."""
_UNNEEDED_PASSAGES = (
    "DELETE FROM passages WHERE rowid NOT IN (SELECT p.rowid FROM passages p JOIN records r "
    "ON r.record_id = p.record_id AND r.version = p.version WHERE r.status = ?)"
)
_WRITTEN_PASSAGES = (
    "DELETE FROM passages WHERE rowid IN (SELECT p.rowid FROM batch_members m "
    "JOIN passages p ON p.record_id = m.record_id AND p.version = m.version "
    "WHERE m.batch_id = ? AND NOT EXISTS (SELECT 1 FROM records r WHERE "
    "r.record_id = p.record_id AND r.version = p.version AND r.status = ?))"
)
"""A written batch's passages, but those of members pending again with the same version (a
superseded file's, cut again)."""


class PassageStatements:
    _conn: sqlite3.Connection

    def forget_sent_passages(self, batch_ids: Sequence[str], *, sweep: bool = False) -> None:
        if self._conn.execute(_NEEDED_PASSAGE, (RecordStatus.PENDING.value,)).fetchone() is None:
            self._conn.execute("DELETE FROM passages")  # whole pages freed, none rewritten
        elif sweep:  # reads every pending record and every passage
            self._conn.execute(_UNNEEDED_PASSAGES, (RecordStatus.PENDING.value,))
        else:  # reads the written batches' members only
            self._conn.executemany(
                _WRITTEN_PASSAGES,
                [(batch_id, RecordStatus.PENDING.value) for batch_id in batch_ids],
            )
