"""The events of a `POST /events` or `POST /check` body, and where reading them runs.

A small body is parsed (and decoded, for a writer process) on the event loop: a thread hop
costs more than the work. A large one is read in a thread, one such request at a time: parsing
a 16 MiB body of a million and a half keys and building its errors held the loop for 4.5 s,
every other client and `GET /health` waiting, and three at once took 1.6 GB.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import TypeVar

from aiohttp import web

from accrochage.api.errors import ApiError
from accrochage.models.decode import loads_json
from accrochage.streams.ingest import Incoming

T = TypeVar("T")
OFF_LOOP_BYTES = 256 * 1024
"""A body this large or larger is read off the event loop (about 400 events)."""
LARGE_BODIES = web.AppKey("large_bodies", asyncio.Semaphore)


def events_in(body: bytes, limit: int, source: str) -> tuple[list[Incoming], bool]:
    """The events of a body (one, or an array of at most `limit`), and whether it was an
    array. A body that is not JSON is one event, decoded again (and answered unusable) like
    any other."""
    try:
        parsed = loads_json(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        parsed = None
    if not isinstance(parsed, list):
        return [Incoming(body, source)], False
    if len(parsed) > limit:
        raise ApiError(
            413,
            "too_many_events",
            f"the array holds {len(parsed)} events; api.max_events_per_request is {limit}: "
            "split it",
            {"max_events_per_request": limit},
        )
    if not parsed:
        raise ApiError(400, "empty_array", "the array holds no event")
    return [Incoming(e if isinstance(e, dict) else json.dumps(e), source) for e in parsed], True


async def off_loop_if_large(app: web.Application, body: bytes, work: Callable[[], T]) -> T:
    """`work()` here for a small body; in a thread for a large one, one at a time."""
    if len(body) < OFF_LOOP_BYTES:
        return work()
    async with app[LARGE_BODIES]:
        return await asyncio.to_thread(work)
