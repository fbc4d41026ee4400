"""Where `POST /events` hands its events: the writer service of this process, or a writer
process (`api/writer_link.py`).

Both answer each request with its own results once their transaction has committed, and
both report the last storage failure (`GET /health`). A writer process also wants the
request's events decoded here first, their passages prepared: the serving process then
spends its core on HTTP and decoding, the writer process its own on storing, and the batch
timer's files copy the prepared passages instead of validating and rendering each content
again (measured on two cores: decoding costs about 80 µs an event and writing its passage
about 14; storing a group of 4 events about 120 µs an event; validating and rendering a
stored content again at flush cost about 70).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from accrochage.errors import AccrochageError, StoreError
from accrochage.models.deadline import Clock, paris_today
from accrochage.models.reference import Reference
from accrochage.models.registry import Registry
from accrochage.sinks.profiles import SchemaProfile
from accrochage.streams.decoding import decode_lean
from accrochage.streams.incoming import Incoming, IngestResult
from accrochage.streams.writer import WriterService

log = logging.getLogger("accrochage.api")


class NotStorable(AccrochageError):
    """An event of the request cannot cross to the writer process (nested deeper than Python's
    pickling goes): the request fails alone, and none of its events were stored."""

    code = "not_storable"
    status = 422


class WriterFailed(AccrochageError):
    """A group's transaction failed for another reason than the storage: see the log."""

    code = "internal_error"
    status = 500


class EventWriter(Protocol):
    """What the API stores events through."""

    @property
    def storage_error(self) -> StoreError | None:
        """The storage failure of the last transaction (disk full, corrupt), or None."""

    @property
    def unavailable(self) -> AccrochageError | None:
        """Why nothing can be stored any more (the writer process ended), or None."""

    @property
    def decodes_here(self) -> bool:
        """True: small requests are decoded in the serving process before `store`."""

    def store(self, items: list[Incoming], sender: str = "") -> Awaitable[list[IngestResult]]:
        """Each event's result, once the transaction holding them has committed; `sender`
        (a token's place) takes turns with the others (`api/turns.py`)."""


class ThreadWriter:
    """The writer service of this process (one thread, group commit): it decodes too."""

    decodes_here = False
    unavailable = None

    def __init__(self, service: WriterService) -> None:
        self.service = service

    @property
    def storage_error(self) -> StoreError | None:
        return self.service.storage_error

    def store(self, items: list[Incoming], sender: str = "") -> Awaitable[list[IngestResult]]:
        """First come, first served: the writer service of this process serves tests and
        embedders; `accrochage run`'s writer process is where senders take turns."""
        return asyncio.wrap_future(self.service.submit(items))


class InlineDecoder:
    """Decodes events in the serving process, as the writer's ingestor would (`decode_ready`
    with the current reference data), into the lean form that travels to a writer process.

    An event whose decoding raises goes on undecoded: the writer decodes it again, and it
    fails alone there.
    """

    def __init__(
        self,
        registry: Registry,
        clock: Clock,
        reference: Callable[[], Reference | None],
        passages: SchemaProfile | None = None,
    ) -> None:
        self.registry = registry
        self.clock = clock
        self.reference = reference
        self.passages = passages
        """The schema each valid event's passage is prepared in (None: none prepared)."""

    def __call__(self, items: list[Incoming]) -> list[Incoming]:
        return decode_lean(
            items,
            self.registry,
            paris_today(self.clock),
            self.reference(),
            self.passages,
            on_error=_left,
        )


def _left(exc: Exception) -> None:
    log.warning("an event is left for the writer to decode (%s)", type(exc).__name__)
