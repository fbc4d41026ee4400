"""The composition root's other half: what a writer process builds for itself, from the
configuration or from what its starter hands it (`app.py` builds the main process's parts).

A writer process stores events into the state its starter serves: the Kafka worker's
(`build_writer_parts`) and `accrochage run`'s (`build_event_writer`). Each builds its own
store, ingestor and writer service, and follows the reference data the state holds.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from accrochage.app import build_decode_pool, log_source, open_store
from accrochage.models.deadline import Clock, SystemClock
from accrochage.models.reference import Reference
from accrochage.models.registry import Registry
from accrochage.refdata.memory import ReferenceHolder
from accrochage.settings import load_settings
from accrochage.settings.registry import registry_from
from accrochage.state.base import Store
from accrochage.state.sqlite import SqliteStore
from accrochage.state.sqlite.write_lock import DEFAULT_WAIT_SECONDS
from accrochage.streams.ingest import Ingestor
from accrochage.streams.write_times import WriteTimes
from accrochage.streams.writer import WriterService
from accrochage.streams.writer_main import WriterParts


def build_writer_parts(config: Path | None, *, decode: bool = False) -> WriterParts:
    """What the Kafka writer process builds: a store, an ingestor, a writer service, and with
    `decode` a decode pool of its own (`ProcessWriter(..., daemon=False)`, so that it may
    start processes): the worker's event loop then only sends raw bytes, and decoded events
    (the heaviest objects of the pipeline) cross one pipe, decode process -> writer, instead
    of three through the event loop's process."""
    settings = load_settings(config)
    store = open_store(settings)
    clock = SystemClock()
    registry = registry_from(settings)
    every = settings.batching.tick.total_seconds()
    keep_free = settings.state.keep_free_bytes
    service, reference = _following_writer(store, registry, clock, every, keep_free)
    if not decode:
        return WriterParts(service, log_source(settings), store.close)
    pool = build_decode_pool(settings, registry, clock, reference)

    def close() -> None:
        pool.close()
        store.close()

    return WriterParts(service, log_source(settings), close, pool if pool.enabled else None)


def build_event_writer(
    state: Path,
    registry: Registry,
    clock: Clock,
    check_every: float,
    lock_wait: float = DEFAULT_WAIT_SECONDS,
    keep_free: int = 0,
) -> tuple[WriterService, Callable[[], None]]:
    """What the HTTP service's writer process builds (`api/writer_link.py`): the state (checked
    at the service's start already), an ingestor that follows the stored reference data
    version (the serving process's `refdata` job loads the files), a writer service;
    `lock_wait`: `state.lock_wait`, in seconds; `keep_free`: `state.keep_free_bytes`."""
    store = SqliteStore(state, lock_wait_seconds=lock_wait)
    service, _ = _following_writer(store, registry, clock, check_every, keep_free)
    return service, store.close


def _following_writer(
    store: Store, registry: Registry, clock: Clock, check_every: float, keep_free: int
) -> tuple[WriterService, Callable[[], Reference | None]]:
    """A writer process's writer service, its ingestor on the reference data the state holds:
    the main process's `refdata` job loads the files, this one follows the stored version
    (checked every `check_every` seconds). Also what gives that reference data now. Its
    store's write times go back with its answers (`streams/write_times.py`)."""
    reference = ReferenceHolder(store.refdata(), check_every=check_every)
    ingestor = Ingestor(store, registry, clock, reference.current, keep_free=keep_free)
    times = WriteTimes()
    store.observe_writes(times.add)
    return WriterService(ingestor, write_times=times), reference.current
