"""A record's deadline across its contents: the delivery date of the content it holds, kept
when a later content's cannot be read, the earlier of two while a correction waits beside a
file sent, none once the CDC accepted the record."""

from __future__ import annotations

from datetime import date

from accrochage.models.deadline import deadline_for
from accrochage.models.record import Record


def delivery_deadline(record: Record, delivered_on: date | None) -> date | None:
    """The deadline a content delivered on `delivered_on` gives `record`: none once the CDC
    accepted the record (`delivery_met`). A content whose delivery date cannot be read keeps
    the deadline the record had: the certification was delivered all the same, and an
    erroneous correction must not hide how late it is."""
    if record.delivery_met:
        return None
    if delivered_on is None:
        return record.deadline
    return deadline_for(delivered_on)


def deadline_beside_correction(record: Record, delivered_on: date | None) -> date | None:
    """While a correction delivered on `delivered_on` waits beside the content sent, the
    earlier of their two deadlines: until the CDC answers, either may be the one it keeps,
    and a certification delivered earlier is due earlier."""
    due = [
        d
        for d in (
            delivery_deadline(record, record.delivered_on),
            delivery_deadline(record, delivered_on),
        )
        if d is not None
    ]
    return min(due) if due else None


def legal_deadline(record: Record) -> date | None:
    """The legal date an accepted record keeps in `deadline` while nothing is due for it: the
    one its content's delivery gave (shown, never counted: it is not outstanding)."""
    if record.delivered_on is None:
        return record.deadline
    return deadline_for(record.delivered_on)
