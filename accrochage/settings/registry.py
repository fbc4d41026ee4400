"""The certifier registry the configuration describes: who deposits, and for whom."""

from __future__ import annotations

from accrochage.models.registry import Certifier, Emitter, Registry
from accrochage.settings.model import Settings


def registry_from(settings: Settings) -> Registry:
    return Registry(
        Emitter(settings.emitter.id_client, settings.emitter.nature),
        (
            Certifier(
                c.key,
                c.id_client,
                c.id_contrat,
                frozenset(c.certifications),
                c.siret,
                None if c.nature is None else c.nature.value,
            )
            for c in settings.certifiers
        ),
    )
