"""What a flush did, batch by batch: cut, written, failed, superseded; told as it happens
(`on_cut`, `on_file`) to whoever prints it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from accrochage.models.batch import FrozenBatch
from accrochage.models.vocabulary import CdcAction


@dataclass(frozen=True, slots=True)
class CutBatch:
    batch_id: str
    certifier: str
    passages: int
    reason: str
    action: CdcAction = CdcAction.CREATION

    @classmethod
    def of(cls, batch: FrozenBatch, reason: str) -> CutBatch:
        return cls(batch.batch_id, batch.certifier.key, batch.passages, reason, batch.action)


@dataclass(frozen=True, slots=True)
class WrittenBatch:
    batch_id: str
    certifier: str
    path: Path
    passages: int
    bytes: int
    sha256: str


@dataclass(frozen=True, slots=True)
class FailedBatch:
    batch_id: str
    certifier: str
    error: str


@dataclass(frozen=True, slots=True)
class NotDue:
    """A certifier whose pending records were left to wait, and when `max_delay` makes them
    due: a first `flush` after an `ingest` said only "nothing due", and nothing told the
    operator why, nor about `--force`."""

    certifier: str
    pending: int
    due_at: datetime
    waiting: str = "pending record(s)"
    """What waits: records to cut, or records to withdraw (their SUPPRESSION file)."""


@dataclass(slots=True)
class FlushReport:
    cut: list[CutBatch] = field(default_factory=list)
    superseded: list[str] = field(default_factory=list)
    """Written files replaced before any deposit (moved to `superseded/`)."""
    header_changed: dict[str, str] = field(default_factory=dict)
    """Of those, the files superseded because their header is not the configuration's any
    more, and what changed (`models.batch.header_changes`)."""
    written: list[WrittenBatch] = field(default_factory=list)
    failed: list[FailedBatch] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    not_due: list[NotDue] = field(default_factory=list)
    on_file: Callable[[WrittenBatch | FailedBatch], None] | None = None
    """Told of each file as it is written or fails (a command prints it at once)."""
    on_cut: Callable[[CutBatch], None] | None = None
    """Told of each batch as its transaction commits."""

    def add_cut(self, cut: CutBatch) -> None:
        self.cut.append(cut)
        if self.on_cut is not None:
            self.on_cut(cut)

    def add_written(self, written: WrittenBatch) -> None:
        self.written.append(written)
        if self.on_file is not None:
            self.on_file(written)

    def add_failed(self, failed: FailedBatch) -> None:
        self.failed.append(failed)
        if self.on_file is not None:
            self.on_file(failed)

    @property
    def ok(self) -> bool:
        return not self.failed

    def withdrawals_wait(self, certifier: str, records: int, due_at: datetime) -> None:
        """A certifier's records to withdraw not due yet: `flush` after a revocation said
        "nothing due", and nothing of the SUPPRESSION waiting nor of `--force`."""
        self.not_due.append(
            NotDue(certifier, records, due_at, "record(s) to withdraw (SUPPRESSION)")
        )


def superseded_why(report: FlushReport, batch_id: str) -> str:
    """Why a file was superseded, and what the operator does with it (the same words from
    `flush` and from the service's log)."""
    changed = report.header_changed.get(batch_id)
    why = (
        "a record changed before its file was deposited"
        if changed is None
        else f"its header is not the configuration's any more ({changed})"
    )
    return (
        f"{why}; the file moved to superseded/ (do not upload it); its records are cut "
        "again when due (they keep their age: `flush --force` cuts them now)"
    )
