"""m270: the accepted records a report left out, found without reading every accepted one.

`left_out` (summary, the dashboard, `doctor`) looked for them among every record of every
reported batch: 590,000 rows read, about a second, at 1,000,000 records. The few accepted
records whose last batch is not the one they were accepted by (a SUPPRESSION carried them)
now have an index of their own, as the records still batched or deposited have theirs
(`records_pending`, by status).
"""

from __future__ import annotations

from sqlite_utils import Database

from accrochage.state.sqlite.migrations.registry import migrations


@migrations()
def m270_left_out_index(db: Database) -> None:
    db.execute(
        "CREATE INDEX records_accepted_elsewhere ON records (batch_id) "
        "WHERE status = 'accepted' AND batch_id IS NOT accepted_batch_id "
        "AND suppression_rejected = 0"
    )
