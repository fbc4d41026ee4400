"""m280: the dashboard's rejections and refused suppressions, counted from their own records.

Both were counted by reading the table row of every record of their status: the refused
suppressions (none, most days) among the 550,000 accepted records, 2.7 million SQLite steps
and about 0.9 s of CPU at 1,000,000 records, at every refresh of an open dashboard (30 s).
Each now has a partial index holding its certifier and CDC reason.
"""

from __future__ import annotations

from sqlite_utils import Database

from accrochage.state.sqlite.migrations.registry import migrations


@migrations()
def m280_reason_indexes(db: Database) -> None:
    db.execute(
        "CREATE INDEX records_rejected_reason ON records (certifier, cdc_reason) "
        "WHERE status = 'rejected'"
    )
    db.execute(
        "CREATE INDEX records_refused_suppression ON records (certifier, cdc_reason) "
        "WHERE suppression_rejected = 1"
    )
