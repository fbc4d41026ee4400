"""m260: the state's changes epoch, a name for its numbering of changes (`GET /changes`).

History ids only grow within one state's life, but a restore puts an older backup in place:
the changes stored after it are gone, and new ones take their numbers again. A restore gives
the state a new epoch, so that a platform's mark of the old numbering is told, not trusted.
"""

from __future__ import annotations

import secrets

from sqlite_utils import Database

from accrochage.state.sqlite.migrations.registry import migrations


@migrations()
def m260_changes_epoch(db: Database) -> None:
    db.execute(
        "CREATE TABLE state_identity (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID"
    )
    db.execute(
        "INSERT INTO state_identity (key, value) VALUES ('changes_epoch', ?)",
        [secrets.token_hex(4)],
    )
