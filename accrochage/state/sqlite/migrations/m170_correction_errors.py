"""m170: a stored correction keeps its errors, as a record keeps its content's: an invalid
correction beside a record in a batch said only `correction_pending`, for ever, and nothing
said what to fix.

Corrections stored by earlier versions have none recorded: `accrochage revalidate` finds
them (and sends those newer reference data made valid)."""

from __future__ import annotations

from sqlite_utils import Database

from accrochage.state.sqlite.migrations.registry import migrations


@migrations()
def m170_correction_errors(db: Database) -> None:
    db.execute("ALTER TABLE records ADD COLUMN correction_errors TEXT")
