"""What a consumer loop stores its groups of log events through, and the one deadline a stop
keeps: the `GroupWriter` protocol, the writer of this process (`InProcessWriter`), and
`StopDeadline` with the whole stop's `STOP_SECONDS`.

`streams/writer_process.py` holds the other writer, in a process of its own, and names them
all again, so a runtime imports every writer from one place.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent import futures
from typing import Any, Protocol

from accrochage.streams.incoming import Incoming
from accrochage.streams.log_source import LogSource
from accrochage.streams.writer import WriterService

STOP_SECONDS = 110.0
"""The whole of a stop: the groups in flight settled (`Pending._settle_at_stop`), then the
writer ended (its process, or its thread). Below the 150 s a container is given to stop
(docker-compose.yml's `stop_grace_period`): settling up to 120 s, then each join up to 120 s,
outlasted it, and the container was killed in the middle. What is left when the time is up
is ended: a transaction cut short rolls back, and its events are read again."""


class StopDeadline:
    """One deadline for every step of a stop, started by the first step that asks."""

    def __init__(
        self, seconds: float | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._seconds = STOP_SECONDS if seconds is None else seconds
        self._clock = clock
        self._by: float | None = None

    def start(self) -> None:
        if self._by is None:
            self._by = self._clock() + self._seconds

    def left(self) -> float:
        """Seconds left (starting the deadline if no step did)."""
        self.start()
        assert self._by is not None
        return max(0.0, self._by - self._clock())


class GroupWriter(Protocol):
    def submit(self, items: list[Incoming]) -> futures.Future[Any]: ...

    def abandon_waits(self) -> None:
        """A stop that does not wait for the state (`WriterService.abandon_waits`); the stop's
        deadline starts (`stop_left`)."""

    def stop_left(self) -> float:
        """Seconds left of the stop's `STOP_SECONDS`, for each of its steps."""

    def shutdown(self, wait: bool = True) -> None:
        """Let the writer store what it was given (within `stop_left()`), then end it."""


class InProcessWriter:
    """Stores groups through a writer service of this process."""

    def __init__(self, service: WriterService, source: LogSource) -> None:
        self._service = service
        self._source = source
        self._stop = StopDeadline()

    def submit(self, items: list[Incoming]) -> futures.Future[Any]:
        return self._service.submit(items, self._source)

    def abandon_waits(self) -> None:
        self._stop.start()
        self._service.abandon_waits()

    def stop_left(self) -> float:
        return self._stop.left()

    def shutdown(self, wait: bool = True) -> None:
        """The writer thread is given what is left of the stop (it joined without a bound:
        a hung transaction held the stop for ever); a thread still storing then is a daemon,
        ended with the process (its transaction rolls back)."""
        self._service.stop(self._stop.left() if wait else 0)
