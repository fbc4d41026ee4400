"""A record id taken from a record that never passed validation (`Record.yields_id`).

Record ids are unique across the tracker (the CDC's idTechnique). An invalid event holding an
id for good would let one platform reserve, with two fields, an id another certifier's
platform needs. So the first valid event of another certifier takes such an id; the last
content of the record that yielded it is kept in the unusable log, where the operator sees it
and its certifier can send it again, corrected, under another id.
"""

from __future__ import annotations

from datetime import datetime

from accrochage.models.problems import Problem
from accrochage.models.record import Record
from accrochage.state.base import UnusableEvent
from accrochage.streams.rejected import raw_digest, raw_text
from accrochage.streams.repetition import StoredText


def yielded_event(
    read: StoredText, yielded: Record, taker: str | None, now: datetime
) -> UnusableEvent:
    """The unusable-log entry of `yielded`'s last content, its id taken by `taker`."""
    text = read(yielded.record_id, yielded.version)
    problem = Problem(
        "record_id",
        f"{yielded.record_id} was taken by a valid event of certifier {taker!r}: this event "
        f"of certifier {yielded.certifier!r} never passed validation; send it again, "
        "corrected, under another record id",
    )
    return UnusableEvent(
        now,
        None,
        None,
        yielded.record_id,
        raw_text(text),
        [problem],
        raw_digest(text),
        yielded.certifier,
    )
