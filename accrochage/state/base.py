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
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import date, datetime
from pathlib import Path

from accrochage.errors import StoreError
from accrochage.models.batch import (
    BatchInfo,
    FrozenBatch,
    Member,
    PendingStats,
    ReleasedFile,
    Suppressible,
    relocated,
)
from accrochage.models.corrections import CorrectionRequest, RequestClosure
from accrochage.models.record import Change, HistoryEntry, Record
from accrochage.models.vocabulary import BatchState
from accrochage.models.withdrawal import Sending
from accrochage.state.queries import OutstandingQuery
from accrochage.state.refdata import REFDATA_KINDS, RefdataSource, RefdataStorage
from accrochage.state.values import (
    AlertDelivery,
    AlertState,
    DashboardNumbers,
    DeadLetter,
    EvidenceSources,
    ImportedReport,
    JsonRow,
    Observation,
    ReleasedBatch,
    StoredContent,
    StoreHealth,
    ToDeposit,
    UnusableEvent,
    WriteHolder,
)


class PendingReads(ABC):
    """What planning a cut reads: a transaction reads it, and so does a reader, which plans
    without holding the write lock (the cut checks each member again)."""

    @abstractmethod
    def pending_stats(self) -> list[PendingStats]:
        """Each certifier with pending records: how many, the oldest, the nearest deadline."""

    @abstractmethod
    def pending_members(self, certifier: str) -> list[Member]:
        """A certifier's pending records, ordered by (code, record_id)."""

    @abstractmethod
    def content(self, record_id: str, version: int) -> StoredContent: ...


class Transaction(PendingReads):
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
    def forget_sent_passages(self, batch_ids: Sequence[str], *, sweep: bool = False) -> None:
        """Drop the prepared passages of the written batches' members (a file rewritten later
        renders its contents), or with `sweep` every passage no pending record will be cut
        with (those of records corrected or revoked while pending too)."""

    @abstractmethod
    def take_pending(
        self, certifier: str, members: Sequence[Member], batch_id: str, at: datetime
    ) -> list[Member]:
        """Move into `batch_id` (batched) the members still pending for `certifier` with the
        content version they were planned with (what a batch cut planned earlier may still
        take); the members moved, in their order. `add_batch` then freezes the batch."""

    @abstractmethod
    def add_batch(
        self,
        batch: FrozenBatch,
        file_name: str,
        members: Sequence[Member],
        history: Iterable[HistoryEntry],
    ) -> None:
        """Freeze a batch: its header, its members' content versions, their history; the
        members of a SUPPRESSION are recorded as sent for withdrawal. The members of a
        creation must have been moved by `take_pending` in the same transaction (this does
        not move them: left pending, they would be cut into a second file)."""

    @abstractmethod
    def batch_written(self, batch_id: str, file: ReleasedFile, at: datetime) -> bool:
        """Record the batch's file; False when the batch is no longer to write (superseded
        while it was written, by another process): nothing is recorded then."""

    @abstractmethod
    def batch_failed(self, batch_id: str, error: str) -> bool:
        """Record why its file could not be written; False as for `batch_written`."""

    @abstractmethod
    def batch(self, batch_id: str) -> BatchInfo | None: ...

    @abstractmethod
    def record_file_path(self, batch_id: str, recorded: Path, now: Path) -> bool:
        """The batch's file is at `now`, where it was recorded at `recorded`; False (nothing
        changed) when it was recorded elsewhere meanwhile."""

    @abstractmethod
    def batch_deposited(self, batch_id: str, at: datetime, file: Path | None = None) -> None:
        """The file was uploaded; `file`: where it now lives (the outbox's `deposited/`)."""

    @abstractmethod
    def batch_reported(self, batch_id: str, file: Path | None) -> None:
        """A CDC report was imported for it; `file`: where it now lives (`done/`)."""

    @abstractmethod
    def records_in_batch(self, batch_id: str) -> list[Record]:
        """The records whose current batch is this one."""

    # -- the CDC loop (CONTRACT §9) --------------------------------------------------------

    @abstractmethod
    def suppressible(self) -> list[Suppressible]:
        """Accepted records to withdraw (revoked, or with a valid correction), not yet in a
        SUPPRESSION nor refused one, each with the passage as its CREATION batch sent it."""

    @abstractmethod
    def to_supersede(self) -> list[str]:
        """CREATION batches written, never deposited nor reported, holding a record that was
        corrected or revoked since: their files are replaced before anyone uploads them."""

    @abstractmethod
    def batch_superseded(self, batch_id: str, file: Path | None) -> None:
        """The batch is never to be uploaded; `file`: where its file now lives."""

    @abstractmethod
    def sendings(self, record_id: str) -> list[Sending]:
        """The CREATION batches that carried the record, oldest first, but those whose report
        rejected it (what the CDC may hold)."""

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
        """The batch a report speaks of: by its idFlux first, then by its file name, then by
        the one batch id its file name carries (a file renamed before its upload)."""

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

    # -- correction requests ---------------------------------------------------------------

    @abstractmethod
    def add_correction_request(self, request: CorrectionRequest) -> None: ...

    @abstractmethod
    def correction_request(self, request_id: str) -> CorrectionRequest | None: ...

    @abstractmethod
    def answer_correction_request(self, request: CorrectionRequest) -> None:
        """Save a request closed by hand (its status, answer kind, text and time)."""

    @abstractmethod
    def close_correction_requests(
        self, closures: Sequence[RequestClosure], at: datetime, label: str
    ) -> list[str]:
        """Close as `corrected` the open requests that CDC acceptances answer (CONTRACT §9):
        opened before `at` and, for an accepted content version, no later than that content
        was stored (`version` None: a revoked record's accepted suppression closes them all).
        Each gets a history row on its record; the closed request ids are returned."""

    @abstractmethod
    def correction_deadlines(self, record_ids: Sequence[str]) -> dict[str, date]:
        """The earliest deadline of each record's open requests (records with none absent)."""


class Reader(PendingReads):
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
    def iter_batches(
        self, *, state: str | None = None, certifier: str | None = None
    ) -> Iterator[JsonRow]:
        """Every batch, newest first, as read: memory flat in their number."""

    @abstractmethod
    def batch_detail(self, batch_id: str) -> JsonRow | None: ...

    @abstractmethod
    def summary(self, as_of: date, margin_days: int) -> JsonRow: ...

    @abstractmethod
    def left_out(self) -> list[JsonRow]:
        """The reported batches whose processed report did not mention some of their records
        (`batch_id`, `certifier`, `file_name`, `records`), oldest first."""

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
    def file_paths(self) -> list[tuple[str, str, BatchState, Path]]:
        """(batch id, certifier key, state, recorded path) of every batch with a file."""

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

    @abstractmethod
    def schema_versions_written(self) -> set[str]:
        """The CDC schema versions of the batches the state holds (whatever their state)."""

    @abstractmethod
    def health(self) -> StoreHealth:
        """The storage's size and the migrations applied (integrity: `Store` checks it)."""

    @abstractmethod
    def evidence_sources(self, record_id: str) -> EvidenceSources:
        """The batches that carried a record (oldest first) and the imported reports naming it
        (by their lists, or a whole-file rejection of one of those batches), oldest first."""

    # -- correction requests ---------------------------------------------------------------

    @abstractmethod
    def correction_requests(
        self, *, open_only: bool, as_of: date, margin_days: int
    ) -> list[JsonRow]:
        """CONTRACT §9's objects (plus `note`, `opened_at`, `at_risk`, `overdue`), open ones
        first, each group by deadline."""


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

    def relocate_files(self, outbox: Path, before: Callable[[], None] | None = None) -> int:
        """Record under `outbox` the files recorded under another outbox (the state and its
        outbox moved or restored elsewhere, or the state copied): the batches' files are
        where the configuration says the outbox is. Before, a moved state went on reading,
        moving and rewriting files in the old folder, and a copy moved files in and out of
        the original's outbox. How many were recorded anew; nothing is written when none.
        `before`: run when there are files to record, before they are (it may refuse)."""
        moves = self._relocations(outbox)
        if not moves:
            return 0
        if before is not None:
            before()
        with self.transaction() as tx:
            return sum(tx.record_file_path(batch_id, old, new) for batch_id, old, new in moves)

    def misplaced_files(self, outbox: Path) -> int:
        """How many files `relocate_files(outbox)` would record anew (nothing written)."""
        return len(self._relocations(outbox))

    def _relocations(self, outbox: Path) -> list[tuple[str, Path, Path]]:
        with self.reading() as reader:
            return [
                (batch_id, recorded, now)
                for batch_id, certifier, state, recorded in reader.file_paths()
                if (now := relocated(recorded, certifier, state, outbox)) is not None
            ]

    def write_holder(self) -> WriteHolder | None:
        """The writer holding the state now, of this process or another; None when it is
        free (a store whose writers never wait on each other: always)."""
        return None

    def stop_waiting(self) -> None:
        """Writes of this store no longer wait for another writer (a service being stopped):
        one waiting gives up now, later ones at once, each with `StoreBusyError`; a free
        state is still written. A store whose writers never wait: nothing to do."""
        return None

    def refdata(self) -> RefdataStorage:
        """The reference data (CONTRACT §11) kept beside the records."""
        raise StoreError(f"{type(self).__name__} keeps no reference data")

    @abstractmethod
    def close(self) -> None: ...


__all__ = [
    "REFDATA_KINDS",
    "AlertDelivery",
    "AlertState",
    "DashboardNumbers",
    "DeadLetter",
    "EvidenceSources",
    "ImportedReport",
    "JsonRow",
    "Observation",
    "Reader",
    "RefdataSource",
    "RefdataStorage",
    "ReleasedBatch",
    "Store",
    "StoreHealth",
    "StoreLocation",
    "StoredContent",
    "ToDeposit",
    "Transaction",
    "UnusableEvent",
    "WriteHolder",
]
