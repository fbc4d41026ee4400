"""The unit of work: what a write may read and change, committed or rolled back as one."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path

from accrochage.models.batch import (
    Archived,
    BatchInfo,
    FrozenBatch,
    Member,
    PendingStats,
    ReleasedFile,
    Suppressible,
)
from accrochage.models.corrections import CorrectionRequest, RequestClosure
from accrochage.models.record import Change, HistoryEntry, MembersMoved, Record
from accrochage.models.replay import TakenEvent
from accrochage.models.withdrawal import Sending
from accrochage.state.values import (
    AlertDelivery,
    AlertState,
    DeadLetter,
    ImportedReport,
    StoredContent,
    UnusableEvent,
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
        history: Iterable[HistoryEntry] | MembersMoved,
    ) -> None:
        """Freeze a batch: its header, its members' content versions, their history (an
        entry each, or one move for them all: a cut's); the members of a SUPPRESSION are
        recorded as sent for withdrawal. The members of a creation must have been moved by
        `take_pending` in the same transaction (this does not move them: left pending, they
        would be cut into a second file)."""

    @abstractmethod
    def extend_batch(
        self, certifier: str, members: Sequence[Member], moved: MembersMoved
    ) -> list[Member] | None:
        """Add to `moved.batch_id`, a creation cut in several transactions, the next part of
        its members: those still pending as planned are moved and added, with their history;
        them, in order. None (nothing done) when the batch is no longer `cut` (superseded)."""

    @abstractmethod
    def return_plain(self, moved: MembersMoved, pending_since: datetime, limit: int = -1) -> int:
        """Make `moved` (`withdrawal.superseded_plain`) for the members batched in its batch
        that wait for nothing (no revocation pending, no correction), `pending_since` then;
        at most `limit` (-1: all), in code and record id order. How many were."""

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
    def batch_archived(self, batch_id: str, archived: Archived) -> None:
        """Its file left the outbox for good (`accrochage archived`): moved to an archive, or
        deleted. It is no longer looked for there."""

    @abstractmethod
    def batch_reported(self, batch_id: str, file: Path | None) -> None:
        """A CDC report was imported for it; `file`: where it now lives (`done/`)."""

    @abstractmethod
    def records_in_batch(self, batch_id: str) -> list[Record]:
        """The records whose current batch is this one."""

    @abstractmethod
    def record_ids_in_batch(self, batch_id: str) -> list[str]:
        """The ids of the records whose current batch is this one, in the order of
        `records_in_batch`: to read them a piece at a time (`records`)."""

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
    def undeposited_creations(self) -> list[FrozenBatch]:
        """CREATION batches cut (a file not written yet), written or whose file failed, never
        deposited nor reported, as frozen at their cut: a header the configuration no longer
        gives is superseded."""

    @abstractmethod
    def batch_superseded(self, batch_id: str, file: Path | None) -> None:
        """The batch is never to be uploaded; `file`: where its file now lives."""

    @abstractmethod
    def sendings(self, record_id: str) -> list[Sending]:
        """The CREATION batches that carried the record, oldest first, but those whose report
        rejected it and those cut before a SUPPRESSION the CDC accepted (what it may hold)."""

    @abstractmethod
    def carried_hash(self, batch_id: str, record_id: str) -> str | None:
        """The hash of the record's content version that `batch_id` froze (what its file
        carried); None when the batch did not carry the record."""

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
        """Rejected records, and accepted ones whose SUPPRESSION the CDC refused (not those it
        holds under another idTechnique: its support settles them), sorted: of one batch, one
        certifier, one `cdc_reason`, or all."""

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

    @abstractmethod
    def correction_deadlines(self, record_ids: Sequence[str]) -> dict[str, date]:
        """The earliest deadline of each record's open requests (records with none absent)."""
