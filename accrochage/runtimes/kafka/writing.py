"""What the Kafka worker's writer process builds: a store, an ingestor, a writer service and
the decode pool, all of its own.

The worker's event loop only reads records and sends their raw bytes; the writer process
has them decoded by its own decode processes (`ingest.decode_processes`) while it stores the
groups decoded before, in order. Decoded events (the heaviest objects of the pipeline) thus
cross one pipe, decode process -> writer, instead of three through the event loop's process.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from accrochage.app import log_source, open_store, reading_refdata, registry_from
from accrochage.models.deadline import SystemClock
from accrochage.refdata.memory import ReferenceHolder
from accrochage.settings import load_settings
from accrochage.sinks.profiles import profile_for
from accrochage.streams.decoding import DecodePool
from accrochage.streams.ingest import Ingestor
from accrochage.streams.writer import WriterService
from accrochage.streams.writer_process import WriterParts


def build_decoding_writer(config: Path | None) -> WriterParts:
    """In the writer process (`ProcessWriter(partial(build_decoding_writer, config),
    daemon=False)`). The reference data follows the stored version: the worker's main process
    loads the files (its `refdata` job)."""
    settings = load_settings(config)
    store = open_store(settings)
    clock = SystemClock()
    registry = registry_from(settings)
    reference = ReferenceHolder(store.refdata(), check_every=settings.batching.tick.total_seconds())
    decoder = DecodePool(  # as `app.build_core` builds a service's
        registry,
        clock,
        reference.current,
        processes=settings.ingest.decode_processes,
        refdata=partial(reading_refdata, settings.paths.state),
        passages=profile_for(settings.schema_.version),
    )

    def close() -> None:
        decoder.close()
        store.close()

    service = WriterService(Ingestor(store, registry, clock, reference.current))
    return WriterParts(service, log_source(settings), close, decoder if decoder.enabled else None)
