"""The store's interface for reference data (CONTRACT §11): staged, swapped, versioned."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime

from accrochage.models.reference import Fiche, Move, Period


@dataclass(frozen=True, slots=True)
class RefdataSource:
    """One loaded reference: what it was read from, of when, and what it holds."""

    kind: str
    """`rncp` (France compétences' export) or `cog` (INSEE)."""
    day: date | None
    """The export's date (rncp); the COG's is its vintage."""
    vintage: int | None
    files: tuple[str, ...]
    signature: str
    """What changes when the files on disk change (the services reload then)."""
    loaded_at: datetime
    counts: dict[str, int]
    parts: tuple[str, ...]
    """What it covers: RNCP, RS, delivery_limits; communes, moves, countries."""


REFDATA_KINDS = ("rncp", "cog")


class RefdataStorage(ABC):
    """Reference data in tables of its own, loaded into staging tables in short transactions
    and swapped in at once, so the writer is never held for a whole load. Each swap bumps a
    version every process can compare with the one it holds."""

    @abstractmethod
    def loading(self, wait_seconds: float) -> AbstractContextManager[None]:
        """Held for a whole load (stage to swap), by one process at a time: two loads filling
        the same staging tables would swap in a mix of both. `RefdataBusy` when another load
        kept it for `wait_seconds`."""

    @abstractmethod
    def snapshot(self) -> AbstractContextManager[RefdataStorage]:
        """This storage reading as of one moment: what `read_reference` reads through, so
        that a swap meanwhile never mixes two loads."""

    @abstractmethod
    def stage(self, kind: str) -> None:
        """Empty staging tables for this kind (`rncp` or `cog`)."""

    @abstractmethod
    def stage_fiches(self, fiches: Iterable[Fiche]) -> None: ...

    @abstractmethod
    def stage_communes(self, communes: Iterable[tuple[str, Period]]) -> None: ...

    @abstractmethod
    def stage_moves(self, moves: Iterable[Move]) -> None: ...

    @abstractmethod
    def stage_countries(self, codes: Iterable[str]) -> None: ...

    @abstractmethod
    def swap(self, source: RefdataSource) -> int:
        """Put this kind's staging tables in place, record its source: the new version."""

    @abstractmethod
    def version(self) -> int:
        """0 until reference data is first loaded."""

    @abstractmethod
    def sources(self) -> list[RefdataSource]: ...

    @abstractmethod
    def fiches(self) -> Iterator[Fiche]: ...

    @abstractmethod
    def communes(self) -> Iterator[tuple[str, Period]]: ...

    @abstractmethod
    def moves(self) -> Iterator[Move]: ...

    @abstractmethod
    def countries(self) -> Iterator[str]: ...
