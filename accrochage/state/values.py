"""The plain values that cross the store's interface (besides those of `models/`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from accrochage.models.batch import Archived, FrozenBatch, ReleasedFile
from accrochage.models.problems import Problem
from accrochage.models.record import PreparedPassage
from accrochage.models.vocabulary import BatchState, CdcAction

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
    raw_sha256: str | None = None
    """The whole raw input's digest: a second event of the same input (a platform's retry,
    a file ingested again) is not kept twice."""
    certifier: str | None = None
    """The certifier the event names, when it names one readable (not necessarily a
    configured one)."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A rejected event waiting to be produced to the rejected topic (transactional outbox)."""

    topic: str
    key: bytes | None
    value: str
    id: int | None = None


@dataclass(frozen=True, slots=True)
class StoredContent:
    """A content version as stored: the payload without the envelope but its event id; with
    its certification code and prepared passage when read for a batch's file."""

    payload: str
    event_id: str | None
    code: str | None = None
    passage: PreparedPassage | None = None


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
class BatchFile:
    """What the state records of a batch's file: whose, the batch's state, its name, and
    where it is (None until released)."""

    certifier: str
    state: BatchState
    file_name: str
    path: Path | None
    archived: bool = False
    """Its file left the outbox for good (`accrochage archived`)."""


@dataclass(frozen=True, slots=True)
class Observation:
    """The numbers an operator watches, read at once (metrics, alerts, the dashboard).

    Keys are the certifier as stored (None when the event named none); callers map
    certifiers that are not configured to `?`.
    """

    records: dict[tuple[str | None, str], int]
    """(certifier, status) -> records."""
    at_risk: dict[str | None, int]
    """Outstanding records due from today to today + the margin, and those whose deadline is
    due but unknown (`deadline_unknown`)."""
    overdue: dict[str | None, int]
    """Outstanding records whose deadline has passed."""
    next_deadline: dict[str | None, date]
    """The earliest deadline of each certifier's outstanding records (overdue included)."""
    batches: dict[tuple[str, str], int]
    """(certifier, state) -> batches."""
    unreported: dict[str, int]
    """Files written (or deposited) before the cut-off and still without a CDC report."""
    to_deposit: int = 0
    deadline_unknown: dict[str | None, int] | None = None
    """Outstanding records whose delivery date cannot be read: due, on a day nobody knows."""
    correction_requests_open: dict[str | None, int] | None = None
    correction_requests_at_risk: dict[str | None, int] | None = None


@dataclass(frozen=True, slots=True)
class ToDeposit:
    batch_id: str
    certifier: str
    passages: int
    written_at: datetime | None
    file_name: str = ""
    """The name the operator uploads (no person in it: CONTRACT §7)."""
    action: str = "CREATION"


@dataclass(frozen=True, slots=True)
class DashboardNumbers:
    """What the dashboard adds to an `Observation`: counts and batch ids, no personal data."""

    deadlines: dict[tuple[str | None, date | None], int]
    """(certifier, deadline) -> outstanding records; deadline None: met for good. Records whose
    deadline is unknown are not here but in `Observation.deadline_unknown`."""
    rejections: dict[tuple[str | None, str | None], int]
    """(certifier, cdc_reason) -> rejected records."""
    refused_suppressions: dict[tuple[str | None, str | None], int]
    """(certifier, cdc_reason) -> accepted records whose SUPPRESSION the CDC refused: the CDC
    still holds their passage, and they wait for `accrochage retry`."""
    to_deposit: list[ToDeposit]
    """The oldest files written and not yet deposited (at most `limit`): the most urgent."""
    for_support: dict[str | None, int] = field(default_factory=dict)
    """certifier -> accepted records the CDC holds under another idTechnique that wait for a
    correction or withdrawal only its support can apply."""


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


@dataclass(frozen=True, slots=True)
class CarryingBatch:
    """A batch that carried a record (`accrochage evidence`): its file as recorded."""

    batch_id: str
    certifier: str
    action: CdcAction
    state: BatchState
    schema_version: str
    created_at: datetime
    file_name: str
    file_path: Path | None
    """Where its file is recorded now (None: never released)."""
    sha256: str | None
    size: int | None
    archived: Archived | None = None
    """Its file archived away from the outbox since (`accrochage archived`)."""


@dataclass(frozen=True, slots=True)
class ReportNaming:
    """An imported CDC report that names a record (`accrochage evidence`)."""

    sha256: str
    name: str
    """The report file's name when it was imported."""
    nom_fichier: str | None
    batch_id: str | None
    imported_at: datetime
    outcome: str
    """What it said of the record: accepted, rejected, unchanged, unknown or file_rejected."""
    kept_as: Path | None
    """The copy kept beside the state, when the stored summary says where."""


@dataclass(frozen=True, slots=True)
class EvidenceSources:
    """Where the evidence of one record lies: its batches and the reports naming it."""

    batches: tuple[CarryingBatch, ...]
    reports: tuple[ReportNaming, ...]


@dataclass(frozen=True, slots=True)
class WriteHolder:
    """A writer holding the state now (another process's, or this one's)."""

    pid: int | None
    """Its process id; None when the system does not tell (`/proc/locks` unreadable)."""
    stopped: bool
    """Stopped (Ctrl-Z in a terminal, SIGSTOP): it keeps the state until it is resumed."""


@dataclass(frozen=True, slots=True)
class StoreHealth:
    """How the state's storage looks (`accrochage doctor`): counts and names, no record."""

    bytes: int
    """The database's size (its pages; a SQLite WAL beside it is not counted)."""
    migrations: tuple[str, ...]
    """The schema migrations applied, in the order they were."""
    free_bytes: int = 0
    """Of `bytes`, the pages deleted data left: reused by later writes, given back to the
    disk by `compact` alone."""


@dataclass(frozen=True, slots=True)
class Restored:
    """A backup put in the state's place (`accrochage restore`)."""

    backup: Path
    state: Path
    replaced: Path | None
    """Where the state it replaced was moved (with its `-wal` and `-shm`); None: none was."""
    records: int
    batches: int
    migration: str | None
    last_change: str | None
    """When the backup's last change of a record was stored: what came after is not in it."""
    pending: tuple[str, ...]
    """The migrations of this version the backup lacks: the next writer applies them."""
    seconds: float


@dataclass(frozen=True, slots=True)
class Compacted:
    """The state written again without its free space (`accrochage compact`)."""

    state: Path
    bytes_before: int
    bytes_after: int
    """The state's file and its `-wal`, before and after."""
    seconds: float


@dataclass(frozen=True, slots=True)
class BackupTaken:
    """A backup of the state, checked and durable under its name."""

    path: Path
    bytes: int
    records: int
    batches: int
    migration: str | None
    """The last schema migration applied to the copy: the version it restores to."""
    last_change: str | None
    """When its last change of a record was stored (None: it holds no record)."""
    seconds: float


@dataclass(frozen=True, slots=True)
class UpgradePlan:
    """What upgrading the state's schema would do, read without changing anything."""

    pending: tuple[str, ...]
    """The migrations this version would apply, in order (none: up to date)."""
    applied: tuple[str, ...]
    serving: int | None
    """The process serving the state (`run`, `worker`), perhaps of another version: the
    state is not migrated under it (-1: one is starting and has not said its pid yet)."""
