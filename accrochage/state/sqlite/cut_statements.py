"""The cut's statements of a unit of work: pending members moved into a batch, the batch
frozen with its members and their history, and a superseded batch's members returned. A mixin
of `SqliteTransaction` (transaction.py) beside `BatchStatements`, on the transaction's
connection."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime

import accrochage.state.sqlite.withdrawals as withdrawals
from accrochage.models.batch import FrozenBatch, Member
from accrochage.models.record import HistoryEntry, MembersMoved
from accrochage.models.vocabulary import BatchState, RecordStatus
from accrochage.state.sqlite.rows import (
    HISTORY_COLUMNS,
    history_values,
    members_moved_values,
    placeholders,
    stamp,
)

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

_PART_MOVED = (
    f"INSERT INTO history ({', '.join(HISTORY_COLUMNS)}) "
    "SELECT value ->> 1, ?, ?, ?, ?, ?, NULL, NULL FROM json_each(?) "
    "ORDER BY value ->> 0, value ->> 1"
)
"""`_MEMBERS_MOVED` for the members of one part of a batch cut in several (`extend_batch`),
read from the part's own `[code, record_id, version]` array."""


_PLAIN_MEMBERS = (
    "SELECT rowid FROM records WHERE batch_id = ? AND status = ? AND revocation_pending = 0 "
    "AND correction_version IS NULL ORDER BY rowid LIMIT ?"
)
"""In the order of the `records_batch` index, which sorts nothing: ordered by code, each part
of a batch read and sorted every member still in it (a supersession in parts of 100,000
members took 1.6 s against 1.07 in one transaction, `python -m bench.cut`)."""
_PLAIN_RETURNED = (
    f"INSERT INTO history ({', '.join(HISTORY_COLUMNS)}) "
    "SELECT record_id, ?, ?, ?, ?, batch_id, NULL, NULL FROM records "
    f"WHERE rowid IN ({_PLAIN_MEMBERS}) ORDER BY rowid"
)
_RETURN_PLAIN = (
    "UPDATE records SET status = ?, batch_id = NULL, pending_since = ?, updated_at = ? "
    f"WHERE rowid IN ({_PLAIN_MEMBERS})"
)
"""A superseded batch's members that wait for nothing, back to pending (`return_plain`): their
history entries first, then the move, each statement picking the same members."""


class CutStatements:
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
        self._conn.execute(_ADD_MEMBERS, (batch.batch_id, _members_json(members)))
        if isinstance(history, MembersMoved):
            self._conn.execute(_MEMBERS_MOVED, members_moved_values(history))
        else:
            self._add_history(history)

    def _grow(self, batch_id: str, members: int) -> None:
        self._conn.execute(
            "UPDATE batches SET passages = passages + ? WHERE batch_id = ?", (members, batch_id)
        )

    def take_suppressible(
        self, members: Sequence[Member], batch_id: str, at: datetime
    ) -> dict[str, bool]:
        return withdrawals.take_suppressible(self._conn, members, batch_id, stamp(at))

    def add_to_batch(
        self, batch_id: str, members: Sequence[Member], history: Iterable[HistoryEntry]
    ) -> None:
        self._conn.execute(_ADD_MEMBERS, (batch_id, _members_json(members)))
        self._add_history(history)
        self._grow(batch_id, len(members))

    def extend_batch(
        self, certifier: str, members: Sequence[Member], moved: MembersMoved
    ) -> list[Member] | None:
        batch_id = moved.batch_id
        state = self._conn.execute(
            "SELECT state FROM batches WHERE batch_id = ?", (batch_id,)
        ).fetchone()
        if state is None or state[0] != BatchState.CUT.value:
            return None
        still = self.take_pending(certifier, members, batch_id, moved.at)
        if not still:
            return still
        part = _members_json(still)
        self._conn.execute(_ADD_MEMBERS, (batch_id, part))
        self._conn.execute(_PART_MOVED, (*members_moved_values(moved), part))
        self._grow(batch_id, len(still))
        return still

    def return_plain(self, moved: MembersMoved, pending_since: datetime, limit: int = -1) -> int:
        batch_id, batched = moved.batch_id, RecordStatus.BATCHED.value
        picked = (batch_id, batched, limit)
        self._conn.execute(_PLAIN_RETURNED, (*members_moved_values(moved)[:4], *picked))
        returned = self._conn.execute(
            _RETURN_PLAIN,
            (moved.to_status.value, stamp(pending_since), stamp(moved.at), *picked),
        )
        return returned.rowcount


def _members_json(members: Sequence[Member]) -> str:
    """The `[code, record_id, version]` array `_ADD_MEMBERS` and `_PART_MOVED` read."""
    return json.dumps([[m.code, m.record_id, m.version] for m in members])
