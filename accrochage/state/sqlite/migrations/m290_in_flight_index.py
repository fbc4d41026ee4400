"""m290: the records a report left batched or deposited, found from the reported batches.

`left_out` (summary, the dashboard at each refresh, `doctor`) read every record still
batched or deposited through `records_pending` and each one's table row for its batch: at
1,000,000 records, 340,000 rows and 0.7 s, nearly all of them in files not reported yet. A
partial index of those records by batch lets it look in the reported batches alone (6 ms).
"""

from __future__ import annotations

from sqlite_utils import Database

from accrochage.state.sqlite.migrations.registry import migrations


@migrations()
def m290_in_flight_index(db: Database) -> None:
    db.execute(
        "CREATE INDEX records_in_flight ON records (batch_id, status) "
        "WHERE status IN ('batched', 'deposited')"
    )
