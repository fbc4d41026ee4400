"""The groups a writer link sends (`api/writer_link.py`): requests cut into pieces, taken
in senders' turns (`api/turns.py`), framed for the socket, and each answered with its own
results."""

from __future__ import annotations

import asyncio
import logging
import pickle
from typing import Any

from accrochage.api.frames import frame
from accrochage.api.writing import NotStorable
from accrochage.models.scope import Scope
from accrochage.streams.incoming import Incoming, IngestResult, Ready
from accrochage.streams.rejected import raw_text

log = logging.getLogger("accrochage.writer")

GROUP_EVENTS = 250
"""Events of a group, at most (a request of more is sent in pieces of this size): what
another sender's event may wait for, for each group ahead of it. Against 1,000 and 2,000 an
event's storing CPU is the same (52.8 µs against 52.1 and 51.9), its bytes written 35 % more
(11.7 KiB against 8.6; `python -m bench.writes --sizes 250,1000,2000`). Against 500, another
platform's event waited twice as long behind a flood (114 ms against 60), the flooder no faster
(`bench.fairness`, bench/HISTORY.md "A writer group's 250 events against 500")."""
NOT_STORABLE = (
    "an event of this request is nested too deeply to be stored; none of the request's "
    "events were stored: flatten that event and send the request again"
)

Waiting = tuple[list[Incoming], "asyncio.Future[list[IngestResult]]"]
"""A request's events (or a piece of them) and what waits for their results."""


def events_of(waiting: Waiting) -> int:
    return len(waiting[0])


def pieces(items: list[Incoming], done: asyncio.Future[list[IngestResult]]) -> list[Waiting]:
    """The request as pieces of at most `GROUP_EVENTS` events, `done` resolved once every
    piece is (failed with the first failure). A request holding an event left undecoded is
    sent whole: only such an event may fail to cross (`framed`), and then none of its
    request's events may be stored."""
    if len(items) <= GROUP_EVENTS or any(
        i.decoded is None and isinstance(i.raw, dict) for i in items
    ):
        return [(items, done)]
    loop = done.get_loop()
    split: list[Waiting] = [
        (items[at : at + GROUP_EVENTS], loop.create_future())
        for at in range(0, len(items), GROUP_EVENTS)
    ]

    def settled(piece: asyncio.Future[list[IngestResult]]) -> None:
        # Read here, whatever becomes of the request: a piece failed after another (the
        # writer process gone, every piece failed at once) or after the request was cancelled
        # was otherwise never read, and asyncio logged "Future exception was never retrieved".
        if not piece.cancelled():
            piece.exception()
        failure = next(
            (f.exception() for _, f in split if f.done() and f.exception() is not None),
            None,
        )
        if done.done():
            return
        if failure is not None:
            done.set_exception(failure)
        elif all(f.done() for _, f in split):
            done.set_result([r for _, f in split for r in f.result()])

    for _, piece_done in split:
        piece_done.add_done_callback(settled)
    return split


def framed(group: list[Waiting]) -> tuple[bytes, list[Waiting]]:
    """The group's message, and the requests it carries.

    Framed before the group counts as sent: answers come back in the order groups were sent,
    so a message that failed to go would hand every later request the answer of the one
    after it. A request that cannot be pickled (an event nested deeper than pickling goes)
    fails alone; the others go.
    """
    try:
        return frame([wire(i) for items, _ in group for i in items]), group
    except (RecursionError, pickle.PicklingError):
        pass
    kept: list[Waiting] = []
    for items, done in group:
        try:
            frame([wire(i) for i in items])
        except (RecursionError, pickle.PicklingError):
            log.warning("a request's events could not be framed for the writer: answered 422")
            if not done.done():  # its handler cancelled (the client gone, the service stopping)
                done.set_exception(NotStorable(NOT_STORABLE))
            continue
        kept.append((items, done))
    data = frame([wire(i) for items, _ in kept for i in items]) if kept else b""
    return data, kept


def wire(item: Incoming) -> tuple[Any, str | None, Ready | None, Scope]:
    """What the writer process reads of an event: an object parsed from an array crosses as
    its text when it is decoded already (what an unusable or refused event keeps), never as
    the object, which could be nested deeper than pickling goes."""
    if item.decoded is None or not isinstance(item.raw, dict):
        return item.raw, item.source, item.decoded, item.scope
    return raw_text(item.raw), item.source, item.decoded, item.scope


def answer(group: list[Waiting], results: list[IngestResult]) -> None:
    at = 0
    for items, done in group:
        mine, at = results[at : at + len(items)], at + len(items)
        if not done.done():  # a waiter cancelled (client gone): its events are stored anyway
            done.set_result(mine)


def fail(group: list[Waiting], exc: BaseException) -> None:
    for _, done in group:
        if not done.done():
            done.set_exception(exc)
