"""The records `revalidate` and the daily check of delivery dates read again, chosen by the
state's indexes: the pending and invalid ones, and those in a batch whose stored correction
waits (`records_flagged`). Listing every outstanding record and keeping these in Python read
the whole state: 9 CPU seconds for each `flush` at 1,000,000 records."""

from __future__ import annotations

import sqlite3

from accrochage.models.record import IN_A_BATCH
from accrochage.models.revalidation import REVALIDATED
from accrochage.models.vocabulary import RecordStatus
from accrochage.state.sqlite.rows import placeholders

_DATED = (
    "EXISTS (SELECT 1 FROM json_each({column}) "
    "WHERE json_extract(value, '$.field') = 'delivered_on')"
)
"""A delivery date the record's findings name: one in the future, refused until its day."""


def to_revalidate(conn: sqlite3.Connection, certifier: str | None, held_by_date: bool) -> list[str]:
    """In deadline order (those without one last), as the listings give them.

    `held_by_date`: only the invalid records, and the stored corrections, an error on
    `delivered_on` holds back."""
    checked = (
        sorted(s.value for s in REVALIDATED) if not held_by_date else [RecordStatus.INVALID.value]
    )
    in_batch = sorted(s.value for s in IN_A_BATCH)
    content = f"status IN ({placeholders(checked)})"
    correction = f"status IN ({placeholders(in_batch)}) AND correction_version IS NOT NULL"
    if held_by_date:
        content += " AND " + _DATED.format(column="records.errors")
        correction += " AND " + _DATED.format(column="records.correction_errors")
    mine = "" if certifier is None else " AND certifier = ?"
    wanted = [certifier] if certifier is not None else []
    rows = conn.execute(
        f"SELECT record_id FROM (SELECT record_id, deadline FROM records WHERE {content}{mine} "
        f"UNION ALL SELECT record_id, deadline FROM records WHERE {correction}{mine}) "
        "ORDER BY deadline IS NULL, deadline, record_id",
        [*checked, *wanted, *in_batch, *wanted],
    )
    return [str(record_id) for (record_id,) in rows]
