"""Read-only queries: a reader never blocks a writer and sees committed state only."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TypeVar

from accrochage.models.batch import (
    FrozenBatch,
)
from accrochage.models.scope import IdHolder
from accrochage.models.vocabulary import BatchState
from accrochage.state.base.service import ServiceGuard
from accrochage.state.base.transaction import PendingReads
from accrochage.state.queries import BatchKey, ChangesRead, OutstandingQuery, RequestKey
from accrochage.state.values import (
    AlertDelivery,
    AlertState,
    BackupTaken,
    BatchFile,
    Compacted,
    DashboardNumbers,
    DeadLetter,
    EvidenceSources,
    JsonRow,
    Observation,
    ReleasedBatch,
    Restored,
    StoredContent,
    StoreHealth,
    UpgradePlan,
)

T = TypeVar("T")


class Reader(PendingReads):
    """Read-only queries; a reader never blocks a writer and sees committed state only."""

    def answer(self, query: Callable[[Reader], T]) -> T:
        """`query(self)` on a reader kept open across queries (the HTTP API's): a failure of
        the storage surfaces as the `StoreError` it means (a damaged state: 503
        `storage_corrupt`), as it does in `Store.reading`."""
        return query(self)

    @abstractmethod
    def outstanding(self, query: OutstandingQuery) -> list[JsonRow]: ...

    @abstractmethod
    def iter_outstanding(self, query: OutstandingQuery) -> Iterator[JsonRow]:
        """The same rows, yielded as they are read (a whole listing in flat memory)."""

    @abstractmethod
    def to_revalidate(self, certifier: str | None, *, held_by_date: bool) -> list[str]:
        """The ids of the pending and invalid records, and of those in a batch with a stored
        correction (`held_by_date`: only those an error on their delivery date holds)."""

    @abstractmethod
    def record_detail(self, record_id: str, as_of: date) -> JsonRow | None: ...

    @abstractmethod
    def batches(
        self,
        *,
        state: str | None = None,
        certifier: str | None = None,
        limit: int | None = 100,
        after: BatchKey | None = None,
    ) -> list[JsonRow]:
        """Newest first, in the shape of CONTRACT §8; `limit=None`: all of them; `after`:
        those after a page's last batch."""

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
    def refused_after_acceptance(self) -> tuple[int, str | None]:
        """Records the CDC accepted once, then deleted (a SUPPRESSION accepted) and whose new
        content it refused: it holds nothing of them now. Their count and the first id."""

    @abstractmethod
    def requests_of_another_certifier(self) -> list[tuple[str, str, str, str]]:
        """Open correction requests entered for one certifier whose record id another
        certifier's record holds (`request_id`, `record_id`, the request's certifier, the
        record's): that record's data answers none of them."""

    @abstractmethod
    def undeposited_creations(self) -> list[FrozenBatch]:
        """CREATION batches cut, written or failed, never deposited nor reported, as frozen at
        their cut (`doctor` compares their headers with the configuration)."""

    @abstractmethod
    def held_elsewhere(self) -> list[JsonRow]:
        """Accepted records the CDC holds under another idTechnique that wait for a correction
        or a withdrawal only its support can apply (`record_id`, `certifier`, `cdc_held_as`,
        `waits_for`)."""

    @abstractmethod
    def unusable(
        self,
        limit: int = 100,
        before: int | None = None,
        *,
        dismissed: bool = False,
        certifier: str | None = None,
        sender: str | None = None,
    ) -> list[JsonRow]:
        """Newest first; `before`: those older than a page's last id; `certifier`: those
        naming it; `sender`: those an HTTP sender sent (`api.ingest_tokens #N`, `operator`)."""

    @abstractmethod
    def batches_to_write(self) -> list[FrozenBatch]:
        """Batches cut but not written, or whose writing failed, oldest first."""

    @abstractmethod
    def released_batches(
        self, states: Sequence[BatchState], batch_ids: Sequence[str] | None = None
    ) -> list[ReleasedBatch]:
        """Batches in these states whose file was released (path, size, sha256), oldest first;
        those of `batch_ids` only, when given."""

    @abstractmethod
    def placed_files(self, states: Sequence[BatchState]) -> list[tuple[str, str]]:
        """(batch id, file path) of the batches in these states with a file, oldest first."""

    @abstractmethod
    def frozen_contents(self, batch_id: str) -> Iterator[StoredContent]:
        """A batch's members as frozen at its cut, in file order (code, record_id)."""

    @abstractmethod
    def dead_letters(self, limit: int) -> list[DeadLetter]: ...

    @abstractmethod
    def record_holders(self, record_ids: Sequence[str]) -> dict[str, IdHolder]:
        """Who holds each stored record among these ids."""

    @abstractmethod
    def content_version_of(self, record_id: str, event_id: str) -> int | None:
        """The first content version of the record that this event stored, or None."""

    @abstractmethod
    def file_paths(self) -> list[tuple[str, str, BatchState, Path]]:
        """(batch id, certifier key, state, recorded path) of every batch with a file in the
        outbox (not archived away)."""

    @abstractmethod
    def batch_files(self, batch_ids: Sequence[str]) -> dict[str, BatchFile]:
        """What the state records of these batches' files (those it knows), by batch id."""

    @abstractmethod
    def observe(self, as_of: date, margin_days: int, unreported_before: datetime) -> Observation:
        """The watched numbers (grouped counts over indexes; no per-record work)."""

    @abstractmethod
    def alert_states(self) -> list[AlertState]: ...

    @abstractmethod
    def alert_deliveries(self, receiver: str) -> list[AlertDelivery]: ...

    @abstractmethod
    def dashboard(self, as_of: date, limit: int = 50) -> DashboardNumbers: ...

    @abstractmethod
    def offsets(self, source: str) -> dict[int, int]: ...

    @abstractmethod
    def log_marks(self, source: str) -> dict[int, str]:
        """The mark of the record stored just before each partition's next offset, where it
        is known (`Transaction.save_offsets`)."""

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

    @abstractmethod
    def changes(
        self, after: int, limit: int, window: int, certifiers: Collection[str] | None
    ) -> ChangesRead:
        """Up to `limit` changes of records (history entries, with `seq`, `record_id` and
        `certifier`) after the change `after`, in the order stored, within `window` changes;
        `certifiers`: of their records only, and of a record taken over from another
        certifier only the entries since. With the change to read after next time, whether
        any was stored after it, and the epoch of the numbering (a restore starts another)."""

    # -- correction requests ---------------------------------------------------------------

    @abstractmethod
    def correction_requests(
        self,
        *,
        open_only: bool,
        as_of: date,
        margin_days: int,
        limit: int | None = None,
        after: RequestKey | None = None,
        certifier: str | None = None,
    ) -> list[JsonRow]:
        """CONTRACT §9's objects (plus `note`, `opened_at`, `at_risk`, `overdue`), open ones
        first, each group by deadline; `after`: those after a page's last request;
        `certifier`: those it owes (the record's certifier, else the one entered)."""


class StoreLocation(ABC):
    """Where a store lives, as a picklable value: other processes open readers from it."""

    @abstractmethod
    def open_reader(self) -> Reader: ...

    @abstractmethod
    def service_guard(self) -> ServiceGuard:
        """What the one service of this state holds while it serves it."""

    @abstractmethod
    def backup(self, dest: Path, *, overwrite: bool = False) -> BackupTaken:
        """A consistent copy of the state at `dest` (a file, or a folder where the copy is
        named by the time), taken while writers go on and without writing beside the state;
        checked and durable before it takes its name."""

    @abstractmethod
    def restore(self, backup: Path) -> Restored:
        """Put `backup` in the state's place once it is checked; refused while a service or a
        writer holds the state; the state it replaces is kept beside it, never deleted."""

    @abstractmethod
    def compact(self) -> Compacted:
        """The state written again without the space its deleted data left (a flood of
        unusable events dismissed and forgotten): given back to the disk. Refused while a
        service or a writer holds the state, and when the disk lacks the room to write it
        again; the state is unchanged then."""

    def free_bytes(self) -> int | None:
        """Bytes free on the disk holding the state, for this user; None when unknown (a
        store on no disk of its own)."""
        return None

    def served_by(self) -> int | None:
        """The process id of the service (`run`, `worker`) serving the state now, when it is
        not this process; None when none does (a store no service holds: never)."""
        return None

    def openers(self) -> list[int] | None:
        """The processes other than this one that have the state open, by pid; None when
        unknown."""
        return None

    def log_bytes(self) -> int | None:
        """Bytes of the state's write-ahead log on the disk (0: none now); None when unknown
        (a store that keeps none)."""
        return None

    @abstractmethod
    def upgrade_plan(self) -> UpgradePlan:
        """The schema migrations this version would apply, and who serves the state; nothing
        changed (`StoreError` for a state a newer version migrated)."""
