"""A processing report's plain acceptances, applied by SQL (`Transaction.accept_plain`,
`Transaction.withdraw_plain`).

The records a CREATION report accepts in its PassagesOK and that wait for nothing else, and
the revoked records a SUPPRESSION report accepts, are moved by two statements (their history
entries, then the records), where applying each through the record's life in Python held the
write lock about 8 s for a report of 100,000 passages. What they become is
`models/batch_life.accepted_plain`'s and `models/suppression_report.withdrawn_plain`'s; every
other outcome still goes through `apply_report` or `apply_suppression_report`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from accrochage.models.record import MembersMoved
from accrochage.state.sqlite.rows import HISTORY_COLUMNS, stamp

_REPORTED = (
    "FROM json_each(?) AS reported CROSS JOIN records AS r ON r.record_id = reported.value "
    "WHERE r.batch_id = ? AND r.status = ? AND "
)
_PLAIN = f"{_REPORTED}r.correction_version IS NULL AND r.revocation_pending = 0"
"""The reported ids, one JSON array, that are plain: in the batch, in the status, neither
corrected nor revoked since."""
_REVOKED = f"{_REPORTED}r.revocation_pending = 1"
"""The reported ids of a SUPPRESSION batch that are revoked (withdrawn once it is accepted)."""


def _history(picked: str) -> str:
    return (
        f"INSERT INTO history ({', '.join(HISTORY_COLUMNS)}) "
        f"SELECT r.record_id, ?, ?, ?, ?, ?, ?, NULL {picked} ORDER BY reported.key"
    )


_ACCEPT = (
    "UPDATE records SET status = ?, outstanding = 0, cdc_message = NULL, cdc_reason = NULL, "
    "cdc_held_as = NULL, accepted_batch_id = batch_id, delivery_met = 1, pending_since = NULL, "
    f"updated_at = ? WHERE rowid IN (SELECT r.rowid {_PLAIN}) RETURNING record_id, version"
)
_WITHDRAW = (
    "UPDATE records SET status = ?, outstanding = 0, revocation_pending = 0, "
    "correction_version = NULL, correction_valid = NULL, correction_errors = NULL, "
    "accepted_batch_id = NULL, suppression_rejected = 0, pending_since = NULL, deadline = NULL, "
    "cdc_message = NULL, cdc_reason = NULL, "
    f"updated_at = ? WHERE rowid IN (SELECT r.rowid {_REVOKED}) RETURNING record_id"
)


def accept_plain(
    conn: sqlite3.Connection, moved: MembersMoved, record_ids: Sequence[str]
) -> dict[str, int]:
    accepted = _move(conn, moved, record_ids, _PLAIN, _ACCEPT)
    return {record_id: version for record_id, version in accepted}


def withdraw_plain(
    conn: sqlite3.Connection, moved: MembersMoved, record_ids: Sequence[str]
) -> list[str]:
    return [record_id for (record_id,) in _move(conn, moved, record_ids, _REVOKED, _WITHDRAW)]


def _move(
    conn: sqlite3.Connection,
    moved: MembersMoved,
    record_ids: Sequence[str],
    picked: str,
    update: str,
) -> list[Any]:
    """The history entries of the records `picked` selects, then `update` on them: its rows."""
    reported = json.dumps(list(record_ids))
    at, batch_id, waiting = stamp(moved.at), moved.batch_id, moved.from_status.value
    chosen = (reported, batch_id, waiting)
    conn.execute(
        _history(picked),
        (at, waiting, moved.to_status.value, moved.reason, batch_id, moved.report, *chosen),
    )
    return conn.execute(update, (moved.to_status.value, at, *chosen)).fetchall()
