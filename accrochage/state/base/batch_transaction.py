"""The batch operations of a unit of work (`transaction.Transaction`): pending members cut into
batches, files recorded, and the CDC loop's supersessions."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

from accrochage.models.batch import (
    Archived,
    BatchInfo,
    FrozenBatch,
    Member,
    ReleasedFile,
)
from accrochage.models.record import HistoryEntry, MembersMoved, Record
from accrochage.models.withdrawal import Sending


class BatchOperations(ABC):
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
        at most `limit` (-1: all), in their rows' order. How many were."""

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
    def take_suppressible(
        self, members: Sequence[Member], batch_id: str, at: datetime
    ) -> dict[str, bool]:
        """The planned SUPPRESSION members still to withdraw as planned (`suppressible`, the
        version the CDC holds unchanged), moved into `batch_id`: whether each one taken is
        revoked (rather than corrected), by record id."""

    @abstractmethod
    def add_to_batch(
        self, batch_id: str, members: Sequence[Member], history: Iterable[HistoryEntry]
    ) -> None:
        """Members taken for a batch cut in parts, added to it with their history entries."""

    @abstractmethod
    def accept_plain(self, moved: MembersMoved, record_ids: Sequence[str]) -> dict[str, int]:
        """Of `record_ids`, the records in `moved.batch_id` and status `moved.from_status`
        that wait for nothing else (no correction stored, not revoked), accepted as
        `batch_life.accepted_plain` says, with their history entries: the content version
        each one accepted holds, by record id."""

    @abstractmethod
    def withdraw_plain(self, moved: MembersMoved, record_ids: Sequence[str]) -> list[str]:
        """Of `record_ids`, the revoked records `accepted` in the SUPPRESSION batch
        `moved.batch_id`, withdrawn as `suppression_report.withdrawn_plain` says, with their
        history entries: their ids."""

    @abstractmethod
    def to_supersede(self) -> list[str]:
        """CREATION batches written, never deposited nor reported, holding a record that was
        corrected or revoked since: their files are replaced before anyone uploads them."""

    @abstractmethod
    def half_superseded(self) -> list[str]:
        """CREATION batches superseded with members still batched in them: superseded in parts
        (`streams/supersede_due.py`), by a process that stopped before the last."""

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
