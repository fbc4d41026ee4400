"""The composition root: settings -> store, sink, registry, clock -> the pipeline's parts.

Every runtime (`runtimes/`) and every CLI command builds its parts here and nowhere else;
nothing below knows which runtime calls it. Parts are built whole: nothing is adjusted
after construction.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import partial
from pathlib import Path

from accrochage.models.deadline import Clock, SystemClock
from accrochage.models.reference import Reference
from accrochage.models.registry import Registry
from accrochage.refdata.load import source_warnings
from accrochage.refdata.memory import ReferenceHolder
from accrochage.settings import Settings
from accrochage.settings.registry import registry_from
from accrochage.sinks.base import BatchSink
from accrochage.sinks.profiles import profile_for
from accrochage.sinks.xml_outbox import XmlOutbox
from accrochage.state.base import Store, StoreLocation
from accrochage.state.sqlite import SqliteLocation, SqliteStore
from accrochage.state.sqlite.refdata import read_only_refdata
from accrochage.state.sqlite.state_path import real_state_path
from accrochage.streams.batching import BatchLimits
from accrochage.streams.corrections import Corrections
from accrochage.streams.decoding import DecodePool
from accrochage.streams.feedback import Feedback
from accrochage.streams.flush import Flusher
from accrochage.streams.ingest import Ingestor
from accrochage.streams.log_source import LogSource
from accrochage.streams.lost_state import refuse_lost_state
from accrochage.streams.metrics import Metrics
from accrochage.streams.operations import Operations
from accrochage.streams.redecode import ContentDecoder
from accrochage.streams.reference import ReferenceKeeper
from accrochage.streams.revalidate import Revalidator
from accrochage.streams.schema_choice import check_schema_choice, check_xsd_version

log = logging.getLogger("accrochage")

ONE_OFF_POOL_THRESHOLD = 2000
"""A one-off `flush` renders fewer passages than this in its own process (no pool start-up)."""
ONE_OFF_DECODE_THRESHOLD = 500
"""A one-off `ingest` decodes a group smaller than this in its own process (a small file)."""


@dataclass
class Core:
    settings: Settings
    store: Store
    registry: Registry
    clock: Clock
    ingestor: Ingestor
    flusher: Flusher
    feedback: Feedback
    operations: Operations
    corrections: Corrections
    metrics: Metrics
    """What this process counts and serves on `/metrics` (a command's counts go nowhere)."""

    reference: ReferenceHolder | None = None
    decoder: DecodePool | None = None
    """Decodes events in processes of their own (`ingest.decode_processes`), or None."""
    relocated: str | None = None
    """What was said of files recorded under another outbox at start, or None."""

    def revalidator(self) -> Revalidator:
        """Records checked again against the reference data loaded now."""
        reference = self.reference.current() if self.reference is not None else None
        return Revalidator(self.store, self.registry, self.clock, reference)

    def close(self) -> None:
        if self.decoder is not None:
            self.decoder.close()
        self.flusher.close()
        self.store.close()


def open_store(settings: Settings, *, service: bool = False, read_only: bool = False) -> Store:
    """The state; a long-running service checks the whole database's integrity at start;
    `read_only`: for a command that only reads (nothing written, no lock file, no migration)."""
    return SqliteStore(
        settings.paths.state,
        always_check=service,
        lock_wait_seconds=settings.state.lock_wait.total_seconds(),
        read_only=read_only,
    )


def store_location(settings: Settings) -> StoreLocation:
    """Where the state lives, for what needs no open store: a backup, an upgrade's plan."""
    return SqliteLocation(real_state_path(settings.paths.state))


def batch_limits(settings: Settings) -> BatchLimits:
    batching = settings.batching
    return BatchLimits(
        max_records=batching.max_records,
        max_file_bytes=batching.max_file_bytes,
        max_delay=batching.max_delay,
        margin_days=batching.margin_days,
    )


def build_sink(settings: Settings, store: Store, *, one_off: bool = False) -> BatchSink:
    """The XML outbox; a one-off command (nothing else in its process) renders on every core."""
    processes = settings.batching.render_processes
    if one_off and processes:
        processes = max(processes, os.cpu_count() or 1)
    return XmlOutbox(
        settings.paths.outbox,
        store.location,
        schema_version=settings.schema_.version,
        xsd=settings.schema_.xsd,
        render_processes=processes,
        pool_threshold=ONE_OFF_POOL_THRESHOLD if one_off else 0,
    )


def relocate_files(store: Store, outbox: Path, sink: BatchSink) -> str | None:
    """Files recorded under another outbox are recorded under `paths.outbox`, as absolute
    as the sink records them (`Store.relocate_files`): what to tell the operator, or None.
    A state another process writes meanwhile stops the command (`state_busy`): going on
    with the old paths would move files of another outbox. An outbox no file can be written
    in stops it first (`ConfigError`): nothing is recorded under it."""
    moved = store.relocate_files(outbox.absolute(), before=sink.check_writable)
    if not moved:
        return None
    return (
        f"{moved} file(s) were recorded under another outbox (the state and its outbox were "
        f"moved or copied, paths.outbox changed, or an earlier version recorded them by a "
        f"relative path): they are now recorded under paths.outbox ({outbox.absolute()}); "
        "`accrochage verify` checks they are there"
    )


def misplaced_files(store: Store, outbox: Path) -> str | None:
    """What a read-only command tells of files recorded under another outbox (it records
    nothing: the service, or the next command that writes, does)."""
    count = store.misplaced_files(outbox.absolute())
    if not count:
        return None
    return (
        f"{count} file(s) are recorded under another outbox than paths.outbox "
        f"({outbox.absolute()}): the service, or the next command that writes, records them "
        "there; until then the paths shown are the recorded ones"
    )


def build_core(
    settings: Settings,
    clock: Clock | None = None,
    *,
    one_off: bool = False,
    service: bool = False,
    read_only: bool = False,
) -> Core:
    """`one_off`: a command alone in its process; `service`: `run` or `worker`; `read_only`:
    a command that only reads (its store refuses to write; a user who may only read the
    state's folder runs it).

    A state holding 1.1.2 files and a configuration that does not name `schema.version`
    stop here with a `ConfigError` (`streams/schema_choice.py`): no silent switch to 1.1.5.
    """
    clock = clock or SystemClock()
    registry = registry_from(settings)
    if not read_only:
        refuse_lost_state(settings)
    store = open_store(settings, service=service, read_only=read_only)
    reference = ReferenceHolder(store.refdata())
    try:
        check_schema_choice(settings, store)
        check_xsd_version(settings)
        sink = build_sink(settings, store, one_off=one_off)
        if service:  # before anything is written or recorded under it
            sink.check_writable()
        relocated = (
            misplaced_files(store, settings.paths.outbox)
            if read_only
            else relocate_files(store, settings.paths.outbox, sink)
        )
        if relocated is not None and service:  # a command says it on its own stderr
            log.warning("%s", relocated)
    except BaseException:
        store.close()
        raise
    decoder = ContentDecoder(registry, clock, reference.current)
    threshold = ONE_OFF_DECODE_THRESHOLD if one_off else 1
    decode_pool = (
        None
        if read_only
        else build_decode_pool(settings, registry, clock, reference.current, threshold)
    )
    metrics = Metrics()
    metrics.watch_free_space(store.location.free_bytes, settings.state.keep_free_bytes)
    metrics.watch_log_size(store.location.log_bytes)
    store.observe_writes(metrics.write_observer("service"))
    return Core(
        settings=settings,
        store=store,
        registry=registry,
        clock=clock,
        ingestor=Ingestor(
            store, registry, clock, reference.current, keep_free=settings.state.keep_free_bytes
        ),
        reference=reference,
        decoder=decode_pool if decode_pool is not None and decode_pool.enabled else None,
        flusher=Flusher(
            store,
            sink,
            registry,
            clock,
            batch_limits(settings),
            settings.schema_.version,
            decoder,
            metrics,
        ),
        feedback=Feedback(store, clock, sink, decoder, settings.paths.state.parent / "reports"),
        operations=Operations(store, clock, sink, decoder),
        corrections=corrections_for(settings, store, clock),
        relocated=relocated,
        metrics=metrics,
    )


def corrections_for(settings: Settings, store: Store, clock: Clock) -> Corrections:
    """The correction requests' service (the CLI's commands and the HTTP routes)."""
    keys = (c.key for c in settings.certifiers)
    return Corrections(store, clock, settings.batching.margin_days, keys)


def log_source(settings: Settings) -> LogSource:
    return LogSource(settings.kafka.topic, settings.kafka.rejected_topic)


def build_decode_pool(
    settings: Settings,
    registry: Registry,
    clock: Clock,
    reference: Callable[[], Reference | None],
    threshold: int = 1,
) -> DecodePool:
    """The decode processes of `ingest.decode_processes`, rendering passages in the schema
    new files are written in."""
    return DecodePool(
        registry,
        clock,
        reference,
        processes=settings.ingest.decode_processes,
        refdata=partial(read_only_refdata, settings.paths.state),
        threshold=threshold,
        passages=profile_for(settings.schema_.version),
    )


def reference_keeper(
    settings: Settings, store: Store, holder: ReferenceHolder, clock: Clock
) -> ReferenceKeeper:
    """What keeps a service's reference data current (the `refdata` job)."""
    refdata = settings.refdata
    return ReferenceKeeper(
        store.refdata(), holder, refdata.rncp, refdata.cog, refdata.max_age, clock
    )


def refdata_warnings(core: Core, today: date) -> list[str]:
    """Reference data too old to trust (CONTRACT §11): shown in `summary`, never on an event."""
    return source_warnings(core.store.refdata().sources(), today, core.settings.refdata.max_age)
