"""A processing report's plain acceptances, applied by SQL (`Transaction.accept_plain`).

The records a CREATION report accepts in its PassagesOK and that wait for nothing else are
moved by two statements a status (their history entries, then the records), where applying
each through the record's life in Python held the write lock 7.7 s for a report of 100,000
passages. What they become is `models/batch_life.accepted_plain`'s; every other outcome
still goes through `apply_report`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

from accrochage.models.record import MembersMoved
from accrochage.state.sqlite.rows import HISTORY_COLUMNS, stamp

_PLAIN = (
    "FROM json_each(?) AS reported CROSS JOIN records AS r ON r.record_id = reported.value "
    "WHERE r.batch_id = ? AND r.status = ? AND r.correction_version IS NULL "
    "AND r.revocation_pending = 0"
)
"""The reported ids, one JSON array, that are plain: in the batch, in the status, neither
corrected nor revoked since."""

_HISTORY = (
    f"INSERT INTO history ({', '.join(HISTORY_COLUMNS)}) "
    f"SELECT r.record_id, ?, ?, ?, ?, ?, ?, NULL {_PLAIN} ORDER BY reported.key"
)
_ACCEPT = (
    "UPDATE records SET status = ?, outstanding = 0, cdc_message = NULL, cdc_reason = NULL, "
    "cdc_held_as = NULL, accepted_batch_id = batch_id, delivery_met = 1, pending_since = NULL, "
    f"updated_at = ? WHERE rowid IN (SELECT r.rowid {_PLAIN}) RETURNING record_id, version"
)


def accept_plain(
    conn: sqlite3.Connection, moved: MembersMoved, record_ids: Sequence[str]
) -> dict[str, int]:
    reported = json.dumps(list(record_ids))
    at, batch_id, waiting = stamp(moved.at), moved.batch_id, moved.from_status.value
    picked = (reported, batch_id, waiting)
    conn.execute(
        _HISTORY,
        (at, waiting, moved.to_status.value, moved.reason, batch_id, moved.report, *picked),
    )
    accepted = conn.execute(_ACCEPT, (moved.to_status.value, at, *picked))
    return {record_id: version for record_id, version in accepted}
