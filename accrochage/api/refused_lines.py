"""The log lines of the events a scoped ingest token may not send, one every few seconds.

A line per request let one platform write the log as fast as it sent: probing record ids
through `POST /check` (nothing stored, no budget needed beyond its own) wrote a warning of
170 bytes a request, 2,000 requests 340 KB, into a log that may share the state's disk. Each
line now says how many requests and events it stands for, by token and route.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from aiohttp import web

from accrochage.streams.log_lines import LinesEvery

log = logging.getLogger("accrochage.api")
REFUSED_LOGGED_EVERY = 10.0
"""Seconds between two lines of one token's refused events on one route."""


class RefusedLines:
    """Counts refused events by (sender, route) and logs them at most once every
    `REFUSED_LOGGED_EVERY` each; thread-safe (`/check` answers on reader threads)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lines = LinesEvery(REFUSED_LOGGED_EVERY, clock)
        self._held: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def note(self, sender: str, route: str, count: int, of: int) -> None:
        """`count` of a request's `of` events refused to `sender` on `route`."""
        key = f"{sender}: {route}"
        with self._lock:
            held, held_of = self._held.pop(key, (0, 0))
            count, of = held + count, held_of + of
            requests = self._lines.due(key)
            if requests is None:
                self._held[key] = (count, of)
                return
        many = f" in {requests} requests since the last such line" if requests > 1 else ""
        log.warning(
            "%s refused %d of %d event(s)%s: the token does not send for their certifier "
            "or their record's",
            key,
            count,
            of,
            many,
        )


REFUSED_LINES = web.AppKey("refused_lines", RefusedLines)
