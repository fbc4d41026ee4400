"""An event that could not be stored: how it is told and what is kept of it.

Where it sits (its log position, else its rank), where the code failed (never the exception's
message, which may quote a value), the error of a group stored partly one event at a time, the
unusable event the state keeps of it, and an event of a log set aside so that the events after
it are read. Apart from `streams/ingest.py`, which stores the events that can be.
"""

from __future__ import annotations

import traceback
from datetime import datetime

from accrochage.errors import StoreError
from accrochage.models.deadline import Clock
from accrochage.models.decode import Decoded, Kind
from accrochage.models.problems import Problem
from accrochage.models.vocabulary import Outcome
from accrochage.state.base import Store, UnusableEvent
from accrochage.streams.incoming import Incoming, IngestResult
from accrochage.streams.log_source import LogSource, dead_letter, log_marks
from accrochage.streams.rejected import raw_digest, raw_text


def where(item: Incoming, position: int) -> str:
    """An event's place, for the operator to find it: its log position, else its rank."""
    if item.partition is not None and item.offset is not None:
        return f"partition {item.partition} offset {item.offset}"
    return f"event {position + 1} of its group"


def trace(exc: BaseException) -> str:
    """Where the code failed, without the exception's message (it may quote a value)."""
    return "".join(traceback.format_tb(exc.__traceback__))


def partly_stored(exc: StoreError, stored: int) -> StoreError:
    """`exc` met after `stored` events were stored one by one: its own message, written for
    an operation stored whole or not at all, would say nothing was. Sending every event
    again is safe: those stored are answered `unchanged`."""
    again = type(exc)(
        f"{exc.situation or exc}; the events were being stored one by one, and {stored} of "
        "them (these or others sent at the same time) were stored before it, the others "
        "not: send them again once fixed (those stored are answered unchanged)"
    )
    again.situation = exc.situation
    return again


def set_aside(
    store: Store, clock: Clock, source: LogSource, item: Incoming, error: str
) -> list[tuple[Incoming, IngestResult]]:
    """Keep the event as unusable (its raw text), queue it for the rejected topic, and pass
    its offset, in a transaction of its own; nothing when the offset was passed already."""
    problem = Problem("event", f"could not be stored ({error}); see the service log")
    result = IngestResult(None, Outcome.FAILED, None, [problem])
    with store.transaction() as tx:
        if item.partition is not None and item.offset is not None:
            if item.offset < tx.offsets(source.topic).get(item.partition, 0):
                return []
            tx.save_offsets(source.topic, {item.partition: item.offset + 1}, log_marks([item]))
        now = clock.now().replace(microsecond=0)
        tx.log_unusable([unusable_event(item, Decoded(Kind.UNUSABLE), [problem], now)])
        if source.rejected_topic is not None:
            tx.queue_dead_letters([dead_letter(source, item, result, parse=False)])
    return [(item, result)]


def unusable_event(
    item: Incoming, decoded: Decoded, errors: list[Problem], now: datetime
) -> UnusableEvent:
    return UnusableEvent(
        now,
        item.source,
        decoded.event_id,
        decoded.record_id,
        raw_text(item.raw),
        errors,
        # An input that could not be read is kept as its start only: no digest, or two such
        # inputs of the same start would be kept as one.
        raw_digest(item.raw) if not item.problems or isinstance(item.raw, dict) else None,
        decoded.certifier,
    )
