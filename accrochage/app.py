"""The composition root: settings -> store, registry, clock, profile -> tracker parts.

Both runtimes (embedded and Kafka) and every CLI command build the core here and nowhere
else; nothing below knows which runtime calls it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from accrochage.models.deadline import Clock, SystemClock
from accrochage.models.registry import Registry
from accrochage.settings import Settings
from accrochage.sinks.gate import load_schema, schema_path
from accrochage.sinks.profiles import SchemaProfile, profile_for
from accrochage.state.store import Store
from accrochage.streams.feedback import Feedback
from accrochage.streams.flush import Flusher
from accrochage.streams.ingest import Ingestor


@dataclass
class Core:
    settings: Settings
    store: Store
    registry: Registry
    clock: Clock
    profile: SchemaProfile
    ingestor: Ingestor
    flusher: Flusher
    feedback: Feedback

    @property
    def xsd(self) -> Path:
        return schema_path(self.profile, self.settings.schema_.xsd)

    def close(self) -> None:
        self.flusher.close()
        self.store.close()


def build_core(settings: Settings, clock: Clock | None = None) -> Core:
    clock = clock or SystemClock()
    profile = profile_for(settings.schema_.version)
    load_schema(schema_path(profile, settings.schema_.xsd))
    store = Store(settings.paths.state)
    registry = Registry.from_settings(settings)
    return Core(
        settings=settings,
        store=store,
        registry=registry,
        clock=clock,
        profile=profile,
        ingestor=Ingestor(store, registry, clock, profile),
        flusher=Flusher(
            store,
            registry,
            clock,
            settings.batching,
            profile,
            settings.paths.outbox,
            settings.schema_.xsd,
            settings.batching.render_processes,
        ),
        feedback=Feedback(store, clock),
    )
