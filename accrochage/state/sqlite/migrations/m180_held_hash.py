"""m180: a correction request remembers the content the CDC held when it was opened, so that
an acceptance of that same content again (a correction taken back, then sent again) closes
nothing: the CDC holds what it held, the request is not answered.

Requests opened by earlier versions have none: they close as before."""

from __future__ import annotations

from sqlite_utils import Database

from accrochage.state.sqlite.migrations.registry import migrations


@migrations()
def m180_held_hash(db: Database) -> None:
    db.execute("ALTER TABLE correction_requests ADD COLUMN held_hash TEXT")
