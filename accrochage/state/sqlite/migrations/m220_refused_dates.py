"""m220: records stored invalid for a delivery date refused (in the future) kept that date, and
the deadline computed from it: a year ahead for a mistyped year, which silenced the record's
warnings. A date an error names is no delivery date (`models/decode.py`): such records lose
both, their deadline unknown (counted at risk), until their date is read again
(`Revalidator.dates_come`). Records whose date could not be read at all already had none."""

from __future__ import annotations

from sqlite_utils import Database

from accrochage.state.sqlite.migrations.registry import migrations


@migrations()
def m220_refused_dates(db: Database) -> None:
    db.execute(
        """
        UPDATE records SET delivered_on = NULL, deadline = NULL
        WHERE status = 'invalid' AND delivered_on IS NOT NULL AND delivery_met = 0
          AND EXISTS (
            SELECT 1 FROM json_each(records.errors)
            WHERE json_extract(value, '$.field') = 'delivered_on'
          )
        """
    )
