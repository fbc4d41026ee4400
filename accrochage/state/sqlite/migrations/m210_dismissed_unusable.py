"""m210: an unusable event the operator dealt with (sent again fixed, or nothing to send) is
dismissed, with a note, and leaves the listings and the summary's count; it stays kept."""

from __future__ import annotations

from sqlite_utils import Database

from accrochage.state.sqlite.migrations.registry import migrations


@migrations()
def m210_dismissed_unusable(db: Database) -> None:
    db.executescript(
        """
        ALTER TABLE unusable ADD COLUMN dismissed_at TEXT;
        ALTER TABLE unusable ADD COLUMN dismissed_note TEXT;
        """
    )
