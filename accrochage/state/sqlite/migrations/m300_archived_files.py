"""m300: when a settled batch's file was archived away, and where to (`accrochage archived`).

A DPO's retention has the files in `done/` and `superseded/` moved to an archive or deleted
after a while. The state named such a file missing for ever (`verify` exited 1, `evidence`
said it was lost): the operator's word that it was archived is now kept with the batch.
`archived_to` is the folder holding the file now; NULL with `archived_at` set: deleted.
"""

from __future__ import annotations

from sqlite_utils import Database

from accrochage.state.sqlite.migrations.registry import migrations


@migrations()
def m300_archived_files(db: Database) -> None:
    db.execute("ALTER TABLE batches ADD COLUMN archived_at TEXT")
    db.execute("ALTER TABLE batches ADD COLUMN archived_to TEXT")
