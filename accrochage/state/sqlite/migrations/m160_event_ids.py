"""m160: the history says which platform event made each change (`show` names it); m190
remembers the revocations by it, so that one sent again after the operator's `reinstate` is
known as the same event (`models/replay.py`).

Revocations applied before this migration have no event id: replayed, they act as before."""

from __future__ import annotations

from sqlite_utils import Database

from accrochage.state.sqlite.migrations.registry import migrations


@migrations()
def m160_history_event_ids(db: Database) -> None:
    db.execute("ALTER TABLE history ADD COLUMN event_id TEXT")
