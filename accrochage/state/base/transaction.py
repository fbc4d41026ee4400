"""The unit of work: what a write may read and change, committed or rolled back as one."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime

from accrochage.models.batch import (
    Member,
    PendingStats,
    Suppressible,
)
from accrochage.models.corrections import CorrectionRequest, RequestClosure
from accrochage.models.record import Change, Record
from accrochage.models.replay import TakenEvent
from accrochage.state.base.batch_transaction import BatchOperations
from accrochage.state.values import (
    AlertDelivery,
    AlertState,
    DeadLetter,
    ImportedReport,
    StoredContent,
    UnusableEvent,
)


class PendingReads(ABC):
    """What planning a cut or a revalidation reads: a transaction reads it, and so does a
    reader, which plans without holding the write lock (the cut checks each member again, a
    revalidation each record)."""

    @abstractmethod
    def pending_stats(self) -> list[PendingStats]:
        """Each certifier with pending records: how many, the oldest, the nearest deadline."""

    @abstractmethod
    def pending_members(self, certifier: str) -> list[Member]:
        """A certifier's pending records, ordered by (code, record_id)."""

    @abstractmethod
    def content(self, record_id: str, version: int) -> StoredContent: ...

    @abstractmethod
    def records(self, record_ids: Sequence[str]) -> dict[str, Record]:
        """The current records of these ids (missing ids are absent from the answer)."""

    @abstractmethod
    def suppressible(self) -> list[Suppressible]:
        """Accepted records to withdraw (revoked, or with a valid correction), not yet in a
        SUPPRESSION nor refused one, each with the passage as its CREATION batch sent it."""

    @abstractmethod
    def correction_deadlines(self, record_ids: Sequence[str]) -> dict[str, date]:
        """The earliest deadline of each record's open requests (records with none absent)."""


class Transaction(BatchOperations, PendingReads):
    """One unit of work; every method runs inside it and commits (or not) with it."""

    # -- records ---------------------------------------------------------------------------

    @abstractmethod
    def versions_stored_by(self, record_id: str, event_id: str) -> list[tuple[int, str]]:
        """The content versions of the record that event `event_id` stored: (version, hash)."""

    @abstractmethod
    def events_taken(self, record_id: str, event_id: str) -> list[str | None]:
        """The events `event_id` the record took that no content version keeps (`TakenEvent`):
        the content hash of each delivery, None for a revocation."""

    @abstractmethod
    def remember_events(self, events: Iterable[TakenEvent]) -> None:
        """Remember these events (one already remembered is left as it is)."""

    @abstractmethod
    def save(self, changes: Iterable[Change]) -> None:
        """Write what changes say: records, new content versions, history entries."""

    @abstractmethod
    def log_unusable(self, events: Iterable[UnusableEvent]) -> None: ...

    @abstractmethod
    def dismiss_unusable(self, ids: Sequence[int], note: str, at: datetime) -> list[int]:
        """Mark unusable events dealt with (kept, out of the listings and counts); the ids
        found, whether dismissed before or not (a second dismissal replaces the note)."""

    @abstractmethod
    def dismiss_open_unusable(
        self, certifier: str | None, note: str, at: datetime, *, sender: str | None = None
    ) -> int:
        """Mark every unusable event not dealt with yet dealt with (those naming `certifier`,
        and those `sender` sent, when given): a platform's flood, in one statement; how
        many."""

    @abstractmethod
    def forget_dismissed_unusable(self, dismissed_before: datetime, at: datetime) -> int:
        """Forget the raw input of the unusable events dismissed before `dismissed_before`
        (their rows stay, `forgotten_at` = `at`); how many were forgotten now. The same
        input sent again brings it back, the row open again."""

    # -- inputs ----------------------------------------------------------------------------

    @abstractmethod
    def offsets(self, source: str) -> dict[int, int]:
        """The next offset to read of each partition of a log, as stored."""

    @abstractmethod
    def save_offsets(
        self, source: str, offsets: dict[int, int], marks: Mapping[int, str] | None = None
    ) -> None:
        """Store each partition's next offset, with the mark of the record just before it
        (`streams/log_source.log_marks`); a partition without one has its mark forgotten."""

    @abstractmethod
    def queue_dead_letters(self, letters: Iterable[DeadLetter]) -> None: ...

    @abstractmethod
    def forget_dead_letters(self, ids: Iterable[int]) -> None: ...

    # -- CDC reports -----------------------------------------------------------------------

    @abstractmethod
    def find_batch(self, id_flux: str | None, file_name: str | None) -> str | None:
        """The batch a report speaks of: by its idFlux first, then by its file name, then by
        the one batch id its file name carries (a file renamed before its upload)."""

    @abstractmethod
    def report_imported(self, sha256: str) -> bool: ...

    @abstractmethod
    def processing_imported(
        self, id_traitement: str, batch_id: str | None, file_name: str | None
    ) -> bool:
        """Whether a report of the CDC's processing `id_traitement` was imported for the same
        file: its batch, or (no batch matched) its nomFichier."""

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
    def open_request_like(self, asked: CorrectionRequest) -> CorrectionRequest | None:
        """The open request that says what `asked` says (record, day, source, certifier,
        note): a request entered twice (a retried POST, a command run again) is one."""

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
