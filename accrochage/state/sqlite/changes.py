"""The records' changes in the order they were stored: the history, read by its id.

History ids only grow (one writer at a time, no entry ever deleted): a reader that has read
every change up to an id misses none by asking for those after it later, within one epoch
(a restore starts another: `migrations/m260_changes_epoch.py`). A scan covers at
most `window` ids, so that a token reading a certifier of few changes among many never makes
one request read the whole history.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection

from accrochage.models.lifecycle import TAKEN_OVER
from accrochage.state.queries import ChangesRead

_SELECT = (
    "SELECT h.id AS seq, h.record_id, r.certifier, h.at, h.from_status, h.to_status, "
    "h.reason, h.batch_id, h.report, h.event_id "
    "FROM history h JOIN records r ON r.record_id = h.record_id "
    "WHERE h.id > ? AND h.id <= ?"
)
_OWN = (
    " AND NOT EXISTS (SELECT 1 FROM history t WHERE t.record_id = r.record_id AND t.id > h.id"
    " AND substr(t.reason, 1, ?) = ?)"
)
"""A record taken over from another certifier (`models/lifecycle._taken_over`): its entries
before the taking were that certifier's, not for the new one's platform to read. It names the
record (`r`), not the entry, so that SQLite checks it once the record is the token's: named on
the entry, it ran for every entry of the window, each certifier's (a third of a page's CPU for a
certifier of few changes at 1,000,000 records)."""


def changes(
    conn: sqlite3.Connection,
    after: int,
    limit: int,
    window: int,
    certifiers: Collection[str] | None,
) -> ChangesRead:
    """Up to `limit` changes after `after`, within `window` ids, of `certifiers`' records
    (None: every record; with certifiers, only the entries since a record became theirs);
    the id to read after next time (the last change given, or the end of the scan); whether
    changes were stored after that one already; and the numbering's epoch (m260)."""
    top = conn.execute("SELECT coalesce(max(id), 0) FROM history").fetchone()[0]
    until = min(after + window, top)
    query, params = _SELECT, [after, until]
    if certifiers is not None:
        marks = ",".join("?" * len(certifiers))
        query += f" AND r.certifier IN ({marks})" + _OWN
        params += [*sorted(certifiers), len(TAKEN_OVER), TAKEN_OVER]
    rows = [dict(row) for row in conn.execute(query + " ORDER BY h.id LIMIT ?", [*params, limit])]
    end = rows[-1]["seq"] if len(rows) == limit else max(until, after)
    (epoch,) = conn.execute(
        "SELECT value FROM state_identity WHERE key = 'changes_epoch'"
    ).fetchone()
    return ChangesRead(rows, end, top > end, int(top), str(epoch))
