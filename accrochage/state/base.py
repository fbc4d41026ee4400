"""The store's interface: what the pipeline, the feedback loop and the queries may ask of state.

The SQLite store (`state/sqlite/`) implements it today. Everything that crosses it is a plain
typed value of `models/` (records, contents, batches, problems) or of this module, never a
connection, a cursor or a row, so that another implementation (PostgreSQL, for a sharded
scale-out) can stand beside it without a change above `state/`.

Writes happen in a unit of work: `with store.transaction() as tx:` commits when the block
ends and rolls back when it raises. One transaction at a time per store, and across processes.
Reads go through readers that never wait for a writer.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from accrochage.errors import StoreError
from accrochage.models.batch import (
    BatchInfo,
    FrozenBatch,
    Member,
    PendingStats,
    ReleasedFile,
)
from accrochage.models.lifecycle import Change, HistoryEntry, Record
from accrochage.models.problems import Problem
from accrochage.models.reference import Fiche, Move, Period
from accrochage.models.vocabulary import BatchState
from accrochage.state.queries import OutstandingQuery

JsonRow = dict[str, Any]
"""A query answer, shaped as the API and the CLI print it (CONTRACT.md)."""


@dataclass(frozen=True, slots=True)
class UnusableEvent:
    """An event that cannot become a record, kept with its errors (raw text truncated)."""

    received_at: datetime
    source: str | None
    event_id: str | None
    record_id: str | None
    raw: str
    errors: Sequence[Problem]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A rejected event waiting to be produced to the rejected topic (transactional outbox)."""

    topic: str
    key: bytes | None
    value: str
    id: int | None = None


@dataclass(frozen=True, slots=True)
class StoredContent:
    """A content version as stored: the payload without the envelope but its event id."""

    payload: str
    event_id: str | None


@dataclass(frozen=True, slots=True)
class ImportedReport:
    sha256: str
    name: str
    file_name: str | None
    id_flux: str | None
    id_traitement: str | None
    batch_id: str | None
    imported_at: datetime
    summary: JsonRow


@dataclass(frozen=True, slots=True)
class ReleasedBatch:
    """A batch whose file was released: the frozen batch, its state, the file as recorded."""

    batch: FrozenBatch
    state: BatchState
    file: ReleasedFile


@dataclass(frozen=True, slots=True)
class Observation:
    """The numbers an operator watches, read at once (metrics, alerts, the dashboard).

    Keys are the certifier as stored (None when the event named none); callers map
    certifiers that are not configured to `?`.
    """

    records: dict[tuple[str | None, str], int]
    """(certifier, status) -> records."""
    at_risk: dict[str | None, int]
    """Outstanding records due from today to today + the margin."""
    overdue: dict[str | None, int]
    """Outstanding records whose deadline has passed."""
    next_deadline: dict[str | None, date]
    """The earliest deadline of each certifier's outstanding records (overdue included)."""
    batches: dict[tuple[str, str], int]
    """(certifier, state) -> batches."""
    unreported: dict[str, int]
    """Files written (or deposited) before the cut-off and still without a CDC report."""
    to_deposit: int = 0
    correction_requests_open: dict[str | None, int] | None = None
    correction_requests_at_risk: dict[str | None, int] | None = None


@dataclass(frozen=True, slots=True)
class ToDeposit:
    batch_id: str
    certifier: str
    passages: int
    written_at: datetime | None


@dataclass(frozen=True, slots=True)
class DashboardNumbers:
    """What the dashboard adds to an `Observation`: counts and batch ids, no personal data."""

    deadlines: dict[tuple[str | None, date | None], int]
    """(certifier, deadline) -> outstanding records."""
    rejections: dict[tuple[str | None, str | None], int]
    """(certifier, cdc_reason) -> rejected records."""
    to_deposit: list[ToDeposit]
    """The newest files written and not yet deposited (at most `limit`)."""


@dataclass(frozen=True, slots=True)
class AlertState:
    """One alert (alertname, certifier) as last evaluated: `firing` or `resolved`."""

    alertname: str
    certifier: str
    severity: str
    status: str
    value: int
    starts_at: datetime
    ends_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AlertDelivery:
    """What a receiver last got of an alert, and when."""

    alertname: str
    certifier: str
    receiver: str
    status: str
    sent_at: datetime


class Transaction(ABC):
    """One unit of work; every method runs inside it and commits (or not) with it."""

    # -- records ---------------------------------------------------------------------------

    @abstractmethod
    def records(self, record_ids: Sequence[str]) -> dict[str, Record]:
        """The current records of these ids (missing ids are absent from the answer)."""

    @abstractmethod
    def save(self, changes: Iterable[Change]) -> None:
        """Write what changes say: records, new content versions, history entries."""

    @abstractmethod
    def log_unusable(self, events: Iterable[UnusableEvent]) -> None: ...

    # -- inputs ----------------------------------------------------------------------------

    @abstractmethod
    def offsets(self, source: str) -> dict[int, int]:
        """The next offset to read of each partition of a log, as stored."""

    @abstractmethod
    def save_offsets(self, source: str, offsets: dict[int, int]) -> None: ...

    @abstractmethod
    def queue_dead_letters(self, letters: Iterable[DeadLetter]) -> None: ...

    @abstractmethod
    def forget_dead_letters(self, ids: Iterable[int]) -> None: ...

    # -- batches ---------------------------------------------------------------------------

    @abstractmethod
    def pending_stats(self) -> list[PendingStats]:
        """Each certifier with pending records: how many, the oldest, the nearest deadline."""

    @abstractmethod
    def pending_members(self, certifier: str) -> list[Member]:
        """A certifier's pending records, ordered by (code, record_id)."""

    @abstractmethod
    def content(self, record_id: str, version: int) -> StoredContent: ...

    @abstractmethod
    def add_batch(
        self,
        batch: FrozenBatch,
        file_name: str,
        members: Sequence[Member],
        history: Iterable[HistoryEntry],
    ) -> None:
        """Freeze a batch: its header, its members' content versions; members become batched."""

    @abstractmethod
    def batch_written(self, batch_id: str, file: ReleasedFile, at: datetime) -> None: ...

    @abstractmethod
    def batch_failed(self, batch_id: str, error: str) -> None: ...

    @abstractmethod
    def batch(self, batch_id: str) -> BatchInfo | None: ...

    @abstractmethod
    def batch_deposited(self, batch_id: str, at: datetime, file: Path | None = None) -> None:
        """The file was uploaded; `file`: where it now lives (the outbox's `deposited/`)."""

    @abstractmethod
    def batch_reported(self, batch_id: str, file: Path | None) -> None:
        """A CDC report was imported for it; `file`: where it now lives (`done/`)."""

    @abstractmethod
    def records_in_batch(self, batch_id: str) -> list[Record]:
        """The records whose current batch is this one."""

    @abstractmethod
    def batch_ids_matching(self, ref: str) -> list[str]:
        """Batches a reference names: the batch id, a prefix of it (8 characters or more), the
        file's base name, or a path ending in it."""

    @abstractmethod
    def rejected_ids(
        self,
        *,
        batch_id: str | None = None,
        certifier: str | None = None,
        reason: str | None = None,
    ) -> list[str]:
        """Rejected records, sorted: of one batch, one certifier, one `cdc_reason`, or all."""

    @abstractmethod
    def batch_member_ids(self, batch_id: str) -> list[str]:
        """Every record frozen in this batch, sorted, wherever it is now."""

    # -- CDC reports -----------------------------------------------------------------------

    @abstractmethod
    def find_batch(self, id_flux: str | None, file_name: str | None) -> str | None:
        """The batch a report speaks of: by its idFlux first, then by its file name."""

    @abstractmethod
    def report_imported(self, sha256: str) -> bool: ...

    @abstractmethod
    def save_report(self, report: ImportedReport) -> None:
        """Remember an imported report (and link it to its batch, when known)."""

    # -- alerts ----------------------------------------------------------------------------

    @abstractmethod
    def alert_states(self) -> list[AlertState]: ...

    @abstractmethod
    def save_alert_states(self, states: Iterable[AlertState]) -> None: ...

    @abstractmethod
    def save_alert_delivery(self, delivery: AlertDelivery) -> None: ...


class Reader(ABC):
    """Read-only queries; a reader never blocks a writer and sees committed state only."""

    @abstractmethod
    def outstanding(self, query: OutstandingQuery) -> list[JsonRow]: ...

    @abstractmethod
    def iter_outstanding(self, query: OutstandingQuery) -> Iterator[JsonRow]:
        """The same rows, yielded as they are read (a whole listing in flat memory)."""

    @abstractmethod
    def record_detail(self, record_id: str, as_of: date) -> JsonRow | None: ...

    @abstractmethod
    def batches(
        self, *, state: str | None = None, certifier: str | None = None, limit: int | None = 100
    ) -> list[JsonRow]:
        """Newest first, in the shape of CONTRACT §8; `limit=None`: all of them."""

    @abstractmethod
    def batch_detail(self, batch_id: str) -> JsonRow | None: ...

    @abstractmethod
    def summary(self, as_of: date, margin_days: int) -> JsonRow: ...

    @abstractmethod
    def unusable(self, limit: int = 100) -> list[JsonRow]: ...

    @abstractmethod
    def batches_to_write(self) -> list[FrozenBatch]:
        """Batches cut but not written, or whose writing failed, oldest first."""

    @abstractmethod
    def released_batches(self, states: Sequence[BatchState]) -> list[ReleasedBatch]:
        """Batches in these states whose file was released (path, size, sha256), oldest first."""

    @abstractmethod
    def frozen_contents(self, batch_id: str) -> Iterator[StoredContent]:
        """A batch's members as frozen at its cut, in file order (code, record_id)."""

    @abstractmethod
    def dead_letters(self, limit: int) -> list[DeadLetter]: ...

    @abstractmethod
    def record_certifiers(self, record_ids: Sequence[str]) -> dict[str, str | None]:
        """The certifier of each stored record among these ids."""

    @abstractmethod
    def observe(self, as_of: date, margin_days: int, unreported_before: datetime) -> Observation:
        """The watched numbers (grouped counts over indexes; no per-record work)."""

    @abstractmethod
    def alert_states(self) -> list[AlertState]: ...

    @abstractmethod
    def alert_deliveries(self, receiver: str) -> list[AlertDelivery]: ...

    @abstractmethod
    def dashboard(self, limit: int = 50) -> DashboardNumbers: ...

    @abstractmethod
    def offsets(self, source: str) -> dict[int, int]: ...

    @abstractmethod
    def close(self) -> None: ...


class StoreLocation(ABC):
    """Where a store lives, as a picklable value: other processes open readers from it."""

    @abstractmethod
    def open_reader(self) -> Reader: ...


class Store(ABC):
    location: StoreLocation

    @abstractmethod
    def transaction(self) -> AbstractContextManager[Transaction]:
        """A unit of work: commits at the end of the block, rolls back if it raises."""

    def reader(self) -> Reader:
        """A reader of its own for the caller to keep (and close)."""
        return self.location.open_reader()

    @contextmanager
    def reading(self) -> Iterator[Reader]:
        """A reader for one block of queries."""
        reader = self.reader()
        try:
            yield reader
        finally:
            reader.close()

    def offsets(self, source: str) -> dict[int, int]:
        with self.reading() as reader:
            return reader.offsets(source)

    def refdata(self) -> RefdataStorage:
        """The reference data (CONTRACT §11) kept beside the records."""
        raise StoreError(f"{type(self).__name__} keeps no reference data")

    @abstractmethod
    def close(self) -> None: ...


# -- reference data (CONTRACT §11) ------------------------------------------------------------


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
