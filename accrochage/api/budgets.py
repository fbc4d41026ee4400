"""Each exam platform's events a minute (`api.events_per_minute`, or its token's own).

Turns (`api/turns.py`) share the service between senders that all wait; they cannot stop one
sender that never waits from taking whatever is free: the writer's time, the decode
processes, and the disk (each invalid event is kept). A platform caught in a loop of
retries filled the disk for every certifier. With a budget, its requests beyond it are
answered `429 rate_limited` with `Retry-After`, before anything of them is decoded or
stored, and nothing it sends costs the others more than its budget.

A token bucket per sender: a minute's worth of events at most, refilled continuously.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from aiohttp import web

from accrochage.api.errors import ApiError
from accrochage.streams.log_lines import LinesEvery

log = logging.getLogger("accrochage.api")
REFUSALS_LOGGED_EVERY = 10.0
"""Seconds between two log lines of one sender's refusals."""


@dataclass(slots=True)
class _Bucket:
    per_minute: int
    left: float
    at: float


class EventBudgets:
    """The events each sender may still send now; thread-safe (the large bodies are read in
    a thread)."""

    def __init__(
        self,
        per_minute: Mapping[str, int],
        clock: Callable[[], float] = time.monotonic,
        refused: Callable[[str], None] | None = None,
    ) -> None:
        """`per_minute`: each limited sender's budget (a sender not named has none);
        `refused`: told each refusal's sender (the metrics count them)."""
        self._clock = clock
        self._refused = refused
        now = clock()
        self._buckets = {
            sender: _Bucket(rate, float(rate), now) for sender, rate in per_minute.items() if rate
        }
        self._lines = LinesEvery(REFUSALS_LOGGED_EVERY, clock)
        self._lock = threading.Lock()

    @property
    def senders(self) -> list[str]:
        """The senders with a budget."""
        return list(self._buckets)

    def spend(self, sender: str, events: int) -> None:
        """Take `events` from `sender`'s budget, or raise `429 rate_limited`: nothing taken."""
        bucket = self._buckets.get(sender)
        if bucket is None:
            return
        with self._lock:
            now = self._clock()
            rate = bucket.per_minute / 60.0
            bucket.left = min(float(bucket.per_minute), bucket.left + (now - bucket.at) * rate)
            bucket.at = now
            if events <= bucket.left:
                bucket.left -= events
                return
            self._say(sender, bucket.per_minute)
            seconds = _retry_after(bucket.left, events, rate, now, bucket.per_minute)
        if self._refused is not None:
            self._refused(sender)
        raise _refusal(sender, bucket.per_minute, events, seconds)

    def _say(self, sender: str, per_minute: int) -> None:
        refused = self._lines.due(sender)
        if refused is None:
            return
        log.warning(
            "%s: %d request(s) refused (429) since the last such line: over its %d events a minute",
            sender,
            refused,
            per_minute,
        )


def _retry_after(left: float, events: int, rate: float, now: float, per_minute: int) -> int:
    """The whole seconds after `now` at which `events` fit (0 when they never do): the
    refill then computed as `spend` computes it, `((now + s) - now) * rate` rounded down a
    hair for some `now`, so that `ceil` of the exact wait alone was sometimes a retry refused
    again (1 event a minute, a request at 1001.249...: told 60 s, refused at 60 s)."""
    if events > per_minute:
        return 0
    seconds = max(1, math.ceil((events - left) / rate))
    while left + ((now + seconds) - now) * rate < events:
        seconds += 1
    return seconds


def _refusal(sender: str, per_minute: int, events: int, seconds: int) -> ApiError:
    details: dict[str, int] = {"events_per_minute": per_minute}
    if events > per_minute:
        return ApiError(
            429,
            "rate_limited",
            f"{sender} may send {per_minute} events a minute: a "
            f"request of {events} never fits; send fewer events per request",
            details,
        )
    return ApiError(
        429,
        "rate_limited",
        f"{sender} may send {per_minute} events a minute: send "
        f"this request's {events} again in {seconds} s",
        details | {"retry_after": seconds},
        {"Retry-After": str(seconds)},
    )


BUDGETS = web.AppKey("event_budgets", EventBudgets)
