"""m190: the events a record took that no content version keeps, so that a replay of one is
known (`models/replay.py`): a revocation (applied, or answered unchanged), a delivery that
took a stored correction back. `content_hash` is '' for a revocation.

The revocations m160's history names are remembered from it; those applied before m160 have
no event id, and deliveries that took a correction back before this one are not known:
replayed, they act as before."""

from __future__ import annotations

from sqlite_utils import Database

from accrochage.state.sqlite.migrations.registry import migrations


@migrations()
def m190_taken_events(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE taken_events (
            record_id TEXT NOT NULL,
            event_id TEXT NOT NULL,
            content_hash TEXT NOT NULL,
            PRIMARY KEY (record_id, event_id, content_hash)
        ) WITHOUT ROWID;
        INSERT OR IGNORE INTO taken_events (record_id, event_id, content_hash)
            SELECT record_id, event_id, '' FROM history
            WHERE event_id IS NOT NULL AND substr(reason, 1, 7) = 'revoked';
        """
    )
