"""The watch job: on the services' timer, observe the state once and hand the numbers to its
listeners: the metrics (`streams/metrics.py`), the alert rules, anything else that listens."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from accrochage.models.deadline import Clock, paris_today
from accrochage.state.base import Observation, Store
from accrochage.streams.scheduler import Job, log_failed

log = logging.getLogger("accrochage.watch")
DUTY = 100
"""The watch job waits at least this many times its last reading's duration (at most 1 % of a
core): every tick on a small state, every ~13 s on a million records (130 ms a run)."""
MAX_WAIT = 60.0
"""Seconds the watch job waits at most between runs, however long its last reading took: a
reading slowed by the machine once must not leave the gauges and the alerts stale for long."""

Listener = Callable[[Observation, datetime], None]


def unreported_before(now: datetime, after: timedelta) -> datetime:
    """`after` before `now` in elapsed time: a Paris wall clock minus 10 days is an hour off
    across a change of summer time (the alert fired an hour early in spring, late in autumn)."""
    return now.astimezone(UTC) - after


class Watch:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        margin_days: int,
        certifiers: Sequence[str],
        unreported_after: timedelta,
        listeners: Sequence[Listener] = (),
        heard_by_all: Callable[[datetime], None] | None = None,
        seconds: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.seconds = seconds
        self.clock = clock
        self.margin_days = margin_days
        self.certifiers = tuple(certifiers)
        self.unreported_after = unreported_after
        self.listeners = list(listeners)
        self.heard_by_all = heard_by_all
        """Told the time of each reading every listener heard: the metrics' last watch. A
        reading only some heard (the alert rules failing at every run, their answer not
        stored) must not look like a watch that works: its alerts would go stale unseen."""
        self.last: Observation | None = None
        self.last_seconds = 0.0
        self.heard = False
        """Whether every listener heard one observation of this process (the alert rules
        evaluated on the state as it is now)."""

    def observe(self) -> Observation:
        now = self.clock.now()
        with self.store.reading() as reader:
            observation = reader.observe(
                paris_today(self.clock),
                self.margin_days,
                unreported_before(now, self.unreported_after),
            )
        return observation

    def run(self) -> Observation:
        """Observe and tell every listener (one failing never stops the others)."""
        now = self.clock.now()
        started = self.seconds()
        observation = self.observe()
        # The reading alone: listeners wait for the write lock (the alert rules store their
        # answer), and another process holding it for a minute says nothing of the cost.
        self.last_seconds = self.seconds() - started
        self.last = observation
        heard = True
        for listener in self.listeners:
            try:
                listener(observation, now)
            except Exception as exc:
                heard = False
                log_failed(log, "a listener of the watch job", exc, "it runs again next time")
        self.heard = self.heard or heard
        if heard and self.heard_by_all is not None:
            self.heard_by_all(now)
        return observation


def watch_job(watch: Watch, every: float) -> Job:
    def run() -> None:
        watch.run()

    return Job("watch", lambda: watch_wait(every, watch.last_seconds), run)


def watch_wait(every: float, last_seconds: float) -> float:
    """Seconds before the next watch run: the tick, or `DUTY` times the last reading, at most
    `MAX_WAIT` whatever the tick: a tick of ten minutes left the gauges, the alerts and the
    day's change that late, and the README's staleness rule (300 s) fired on a healthy
    service."""
    return min(max(every, DUTY * last_seconds), MAX_WAIT)
