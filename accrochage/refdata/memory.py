"""The loaded reference data in memory, and the holder that follows the state's version.

Validation asks a few dictionary lookups per event; the holder re-reads the tables only when
the stored version changes (another process, or `refdata load`, swapped new data in).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from accrochage.models.reference import Fiche, Move, Period, kind_of
from accrochage.state.base import RefdataStorage


@dataclass(slots=True)
class MemoryReference:
    """Implements `models.reference.Reference`."""

    kinds: frozenset[str] = frozenset()
    fiches: dict[str, Fiche] = field(default_factory=dict)
    communes_by_code: dict[str, list[Period]] = field(default_factory=dict)
    moves_by_code: dict[str, list[Move]] = field(default_factory=dict)
    country_codes: frozenset[str] = frozenset()
    has_communes: bool = False
    has_countries: bool = False
    version: int = 0

    def covers(self, code: str) -> bool:
        if not self.kinds:
            return False
        return kind_of(code) in self.kinds

    def fiche(self, code: str) -> Fiche | None:
        return self.fiches.get(code)

    def commune(self, code: str) -> Sequence[Period]:
        return self.communes_by_code.get(code, ())

    def moves(self, code: str) -> Sequence[Move]:
        return self.moves_by_code.get(code, ())

    def country(self, code: str) -> bool:
        return code in self.country_codes

    @property
    def empty(self) -> bool:
        return not (self.kinds or self.has_communes or self.has_countries)


def read_reference(storage: RefdataStorage) -> MemoryReference:
    """The reference data of the state, as of its current version (one snapshot)."""
    with storage.snapshot() as snapshot:
        return _read_reference(snapshot)


def _read_reference(storage: RefdataStorage) -> MemoryReference:
    version = storage.version()
    reference = MemoryReference(version=version)
    for source in storage.sources():
        if source.kind == "rncp":
            reference.kinds = frozenset(p for p in source.parts if p in ("RNCP", "RS"))
            reference.fiches = {f.code: f for f in storage.fiches()}
        elif source.kind == "cog":
            reference.has_communes = "communes" in source.parts
            reference.has_countries = "countries" in source.parts
            communes: dict[str, list[Period]] = {}
            for code, period in storage.communes():
                communes.setdefault(code, []).append(period)
            reference.communes_by_code = communes
            moves: dict[str, list[Move]] = {}
            for move in storage.moves():
                moves.setdefault(move.before, []).append(move)
                if move.after != move.before:
                    moves.setdefault(move.after, []).append(move)
            reference.moves_by_code = moves
            reference.country_codes = frozenset(storage.countries())
    return reference


class ReferenceHolder:
    """The current reference data of a process; `refresh()` follows the stored version."""

    def __init__(self, storage: RefdataStorage | None, check_every: float | None = None) -> None:
        """`check_every`: seconds after which `current()` itself looks at the stored version
        (a process without a scheduler, such as the Kafka writer process)."""
        self._storage = storage
        self._check_every = check_every
        self._checked = 0.0
        self._lock = threading.Lock()
        self._current: MemoryReference | None = None
        self._seen = 0
        self._read = False

    def current(self) -> MemoryReference | None:
        """None when no reference data is loaded: the rules are then not applied.

        Read from the state at the first call (a command that validates nothing never pays
        for it); `refresh()` follows the stored version afterwards."""
        every = self._check_every
        if not self._read or (every is not None and time.monotonic() - self._checked >= every):
            self.refresh()
        return self._current

    @property
    def version(self) -> int:
        return self._seen

    def refresh(self) -> bool:
        """Re-read the reference data if its stored version changed; True when it did."""
        if self._storage is None:
            return False
        with self._lock:
            self._read = True
            self._checked = time.monotonic()
            if self._storage.version() == self._seen:
                return False
            reference = read_reference(self._storage)
            self._current = None if reference.empty else reference
            self._seen = reference.version
            return True
