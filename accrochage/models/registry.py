"""Who deposits and for whom: the emitter and the certifiers of the configuration."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from accrochage.models.problems import Problem


@dataclass(frozen=True, slots=True)
class Emitter:
    id_client: str
    nature: str


@dataclass(frozen=True, slots=True)
class Certifier:
    key: str
    id_client: str
    id_contrat: str
    certifications: frozenset[str]
    siret: str | None = None
    """Checked against the RNCP/RS export when reference data is loaded."""
    nature: str | None = None
    """The natureDeposant of its files; None: the emitter's."""


class Registry:
    """Maps an event's certifier (or, when absent, its certification code) to a certifier."""

    def __init__(self, emitter: Emitter, certifiers: Iterable[Certifier]) -> None:
        self.emitter = emitter
        self.certifiers = {c.key: c for c in certifiers}
        owners: dict[str, list[str]] = {}
        for certifier in self.certifiers.values():
            for code in certifier.certifications:
                owners.setdefault(code, []).append(certifier.key)
        self._owners = owners

    def emitter_for(self, certifier: Certifier) -> Emitter:
        """The emitter as `certifier`'s files name it (its own natureDeposant, if it has one)."""
        if certifier.nature is None or certifier.nature == self.emitter.nature:
            return self.emitter
        return Emitter(self.emitter.id_client, certifier.nature)

    def get(self, key: str) -> Certifier | None:
        return self.certifiers.get(key)

    def sole(self) -> Certifier | None:
        """The only certifier configured, or None: whose record a revocation naming neither a
        certifier nor a certification withdraws (the worker and `send`'s key alike)."""
        return next(iter(self.certifiers.values())) if len(self.certifiers) == 1 else None

    def resolve(self, key: str | None, code: str) -> tuple[Certifier | None, list[Problem]]:
        if key is None:
            owners = self._owners.get(code, [])
            if len(owners) == 1:
                return self.certifiers[owners[0]], []
            if not owners:
                why = f"is required: no configured certifier delivers {code}"
            else:
                why = f"is required: {code} is delivered by {', '.join(sorted(owners))}"
            return None, [Problem("certifier", why)]
        certifier = self.certifiers.get(key)
        if certifier is None:
            known = ", ".join(sorted(self.certifiers)) or "none"
            return None, [Problem("certifier", f"unknown certifier {key!r}; configured: {known}")]
        if code not in certifier.certifications:
            delivered = ", ".join(sorted(certifier.certifications))
            return certifier, [
                Problem(
                    "certification.code",
                    f"{code} is not delivered by certifier {key!r} (configured: {delivered}); "
                    "add it to its certifications or fix the code",
                )
            ]
        return certifier, []
