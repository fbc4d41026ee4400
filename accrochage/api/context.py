"""What the HTTP API's routes share: the `ApiContext` the runtimes build, and how a route
reads the state (a reader per thread of a small pool, off the event loop)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from typing import TypeVar

from aiohttp import web
from pydantic import SecretStr

from accrochage.api import params
from accrochage.api.auth import IngestToken, sender_of
from accrochage.api.bodies import DEFAULT_BODY_SECONDS
from accrochage.api.connections import ConnectionLimits
from accrochage.api.turns import FairSlots
from accrochage.api.writing import EventWriter, InlineDecoder
from accrochage.errors import AccrochageError, StorageCorruptError, StoreError
from accrochage.models.deadline import Clock, paris_today
from accrochage.models.reference import Reference
from accrochage.models.registry import Registry
from accrochage.settings.api import AccessLogged
from accrochage.state.base import Reader, Store
from accrochage.streams.decoding import DecodePool
from accrochage.streams.metrics import Metrics

T = TypeVar("T")


@dataclass(slots=True)
class DamageSeen:
    found: StorageCorruptError | None = None


@dataclass(frozen=True, slots=True)
class ApiContext:
    store: Store
    clock: Clock
    registry: Registry
    writer: EventWriter
    margin_days: int
    token: SecretStr
    ingest_tokens: tuple[IngestToken, ...]
    max_body_bytes: int
    max_events_per_request: int
    metrics: Metrics
    """What `GET /metrics` serves: the composition root's (`app.Core.metrics`)."""
    reference: Callable[[], Reference | None] | None = None
    """The process's current reference data (its rules run in POST /check too)."""
    summary_warnings: Callable[[date], list[str]] | None = None
    """Warnings `GET /summary` carries (reference data too old)."""
    decoder: DecodePool | None = None
    """Decodes a request's events in processes of their own before the writer stores them
    (None, or fewer than `POOL_MIN_EVENTS`: the writer's thread decodes them); the event
    loop only awaits it."""
    body_timeout_seconds: float = DEFAULT_BODY_SECONDS
    """How long a request's body may take to arrive (`api.body_timeout`)."""
    access_log: AccessLogged = "all"
    """The requests logged (`api.access_log`)."""
    decode_here: InlineDecoder | None = None
    """Decodes smaller requests in this process when the writer wants them decoded
    (`EventWriter.decodes_here`)."""
    connections: ConnectionLimits = field(default_factory=ConnectionLimits)
    batch_cut_error: Callable[[], AccrochageError | None] | None = None
    """Why the batch timer's last cut could not store, if it could not (`/health`)."""
    event_budgets: Mapping[str, int] = field(default_factory=dict)
    """Each ingest token's events a minute (`api.events_per_minute`), by sender; 0: none."""
    keep_free_bytes: int = 0
    """`state.keep_free_bytes`: `/health` looks again at the disk while events are refused
    for want of room, and says ok once there is (a full disk waits for a write instead)."""
    damage: DamageSeen = field(default_factory=lambda: DamageSeen())
    """A damaged state a read came upon (`/health`: a damaged file does not mend itself)."""


CONTEXT = web.AppKey("context", ApiContext)
READERS = web.AppKey("readers", ThreadPoolExecutor)
READER_TURNS = web.AppKey("reader_turns", FairSlots)
"""The reader threads, given to senders in turn (`api/turns.py`), one sender holding all of
them but one: a platform polling its records never keeps the operator's pages waiting."""


class _Readers(threading.local):
    reader: Reader | None = None


_local = _Readers()


async def read(request: web.Request, query: Callable[[Reader], T]) -> T:
    """Run `query(reader)` on a reader thread's own reader, off the event loop. A storage
    failure is the `StoreError` it means (a damaged state: 503 `storage_corrupt`, and
    `/health` degraded from then on); the reader is opened anew by the next query."""

    context = request.app[CONTEXT]

    def run() -> T:
        try:
            if _local.reader is None:
                _local.reader = context.store.reader()
            return _local.reader.answer(query)
        except StoreError as exc:
            if _local.reader is not None:
                _local.reader.close()
                _local.reader = None
            if isinstance(exc, StorageCorruptError):
                context.damage.found = exc
            raise

    return await on_reader_thread(request, run)


async def on_reader_thread(request: web.Request, work: Callable[[], T]) -> T:
    """`work()` on a reader thread, once its sender's turn came."""
    async with request.app[READER_TURNS].turn(sender_of(request)):
        return await asyncio.get_running_loop().run_in_executor(request.app[READERS], work)


def day_asked(request: web.Request) -> date:
    return params.day(request, "as_of", paris_today(request.app[CONTEXT].clock))
