"""A record and what changes it, as values (DESIGN.md, "The record's life").

`lifecycle.py` (before the record is sent), `revocation.py` (revoked), `batch_life.py` (cut,
deposited, reported),
`withdrawal.py` (taking back what the CDC holds) and `operator.py` (what the operator does by
hand) are pure functions from these values to a `Change`; the store reads and
writes them, nothing here knows how.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from accrochage.models.problems import Problem
from accrochage.models.vocabulary import CdcReason, Outcome, RecordStatus, SchemaVersion

Status = RecordStatus
INVALID_CONTENT_KEPT = 16_384
"""Characters of an invalid content kept in the state (its hash is of the whole content):
more than the largest valid event (about 10 KB, with 64 digital results), so that an event
with one bad field is kept whole, while padding costs the shared state little (at 64 KiB, a
platform's 450 KB of gzip requests added 98 MB to it)."""
TRUNCATED = "_truncated"
NEVER_SENT = frozenset({Status.INVALID, Status.PENDING, Status.REJECTED, Status.EXCLUDED})
EXCLUDABLE = frozenset({Status.INVALID, Status.PENDING, Status.REJECTED})
IN_A_BATCH = frozenset({Status.BATCHED, Status.DEPOSITED, Status.ACCEPTED})
AWAITING_REPORT = frozenset({Status.BATCHED, Status.DEPOSITED})
SETTLED = frozenset({Status.ACCEPTED, Status.WITHDRAWN, Status.EXCLUDED})
"""Outstanding only while a correction or a revocation is pending (`is_outstanding`); a
record of any other status is always outstanding."""
IDENTITY_REASONS = frozenset({CdcReason.IDENTITY_NOT_FOUND, CdcReason.IDENTITY_AMBIGUOUS})
IDENTITY_PROCEDURE_AFTER = 2
"""Identity rejections after which a record needs the CDC's procedure (SPEC §8)."""


def yields_id(status: RecordStatus, ever_valid: bool) -> bool:
    """Whether a record's id goes to another certifier's valid event (`Record.yields_id`)."""
    return not ever_valid and status in (Status.INVALID, Status.WITHDRAWN)


@dataclass(frozen=True, slots=True)
class Record:
    """A record's current row: its status, its current content's summary, its flags."""

    record_id: str
    certifier: str | None
    code: str | None
    status: RecordStatus
    version: int
    content_hash: str
    delivered_on: date | None
    deadline: date | None
    errors: tuple[Problem, ...]
    warnings: tuple[Problem, ...]
    xml_bytes: int | None
    batch_id: str | None
    pending_since: datetime | None
    correction_version: int | None
    revocation_pending: bool
    cdc_message: str | None
    created_at: datetime
    updated_at: datetime
    latest_version: int
    """The highest content version stored (a stored correction may exceed `version`)."""
    correction_hash: str | None = None
    """The content hash of the stored correction, when there is one."""
    cdc_reason: CdcReason | None = None
    """The class of the CDC's last message on it (`cdc_message`), when there is one."""
    excluded_from: RecordStatus | None = None
    """While `excluded`: the status `include` gives back (that of its current content)."""
    accepted_batch_id: str | None = None
    """The CREATION batch whose content the CDC holds (what a SUPPRESSION repeats)."""
    suppression_rejected: bool = False
    """The CDC refused the record's last SUPPRESSION (`retry` cuts it again)."""
    correction_valid: bool | None = None
    """Whether the stored correction passed validation (only a valid one replaces sent data)."""
    correction_errors: tuple[Problem, ...] = ()
    """The stored correction's errors (what to fix before it can be sent), as `errors` are
    the content's; `revalidate` checks them again against newer reference data."""
    identity_rejections: int = 0
    """CDC rejections for identity so far (two flag the CDC's identity procedure)."""
    delivery_met: bool = False
    """The CDC accepted a passage of this record once: its delivery deadline is met for good
    (CONTRACT §9). Whatever its later contents, it has no deadline of its own any more; what is
    due is the answer to an open correction request, if any (the queries show that one)."""
    cdc_held_as: str | None = None
    """The idTechnique the CDC holds this certification under, when its acceptance ("existe
    déjà en base") named another one than `record_id`: a SUPPRESSION naming `record_id` would
    find nothing there, so none is cut; the CDC's support applies its corrections and
    withdrawals (`support-applied`)."""

    ever_valid: bool = True
    """A content of this record passed validation once (it may have been sent). Until then
    its record id is not its certifier's for good: a valid event of another certifier takes
    it (`yields_id`), so that an invalid event cannot reserve an id another certifier needs."""

    @property
    def yields_id(self) -> bool:
        """Never valid, so never sent: its id goes to the first valid event of another
        certifier (record ids are unique across the tracker, the CDC's idTechnique)."""
        return yields_id(self.status, self.ever_valid)

    @property
    def identity_procedure(self) -> bool:
        return self.identity_rejections >= IDENTITY_PROCEDURE_AFTER

    @property
    def held_elsewhere(self) -> bool:
        """Accepted under another idTechnique: only the CDC's support can correct or withdraw
        it (see `cdc_held_as`)."""
        return self.status is Status.ACCEPTED and self.cdc_held_as is not None

    @property
    def suppression_in_flight(self) -> bool:
        return self.status is Status.ACCEPTED and self.batch_id != self.accepted_batch_id

    @property
    def suppression_awaited(self) -> bool:
        """Its SUPPRESSION is cut and the CDC has not refused it: that file's answer comes
        before anything else the record may do (a refusal left the CDC holding the passage,
        and nothing is in flight)."""
        return self.suppression_in_flight and not self.suppression_rejected

    @property
    def outstanding(self) -> bool:
        return is_outstanding(
            self.status, self.correction_version is not None, self.revocation_pending
        )


@dataclass(frozen=True, slots=True)
class PreparedPassage:
    """A content's `passageCertification` bytes, rendered once where the event was decoded.

    Flush writes them as they are into files whose passages are written in `schema`, instead
    of loading, validating and rendering the content a second time; a file written in
    another version renders the content itself.
    """

    schema: SchemaVersion
    data: bytes


@dataclass(frozen=True, slots=True)
class Content:
    """One version of a record's content, as received (the payload without the envelope)."""

    record_id: str
    version: int
    content_hash: str
    event_id: str | None
    payload: str
    occurred_at: str | None
    emitted_by: str | None
    received_at: datetime
    source: str | None
    passage: PreparedPassage | None = None


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    record_id: str
    at: datetime
    from_status: RecordStatus | None
    to_status: RecordStatus
    reason: str
    batch_id: str | None = None
    report: str | None = None
    event_id: str | None = None
    """The event that made the change (a platform's event; None: the operator, a cut, a
    report): a revocation is known again by it when it is replayed (`models/replay.py`)."""


@dataclass(frozen=True, slots=True)
class MembersMoved:
    """The same transition for every member of a batch (a cut): the store writes each
    member's history entry itself, in one statement, rather than receive thousands of them.
    Each entry is the `HistoryEntry` of the member's record id with these fields."""

    batch_id: str
    at: datetime
    from_status: RecordStatus
    to_status: RecordStatus
    reason: str
    report: str | None = None
    """The report that made the move, as `HistoryEntry.report` names it."""


@dataclass(slots=True)
class Change:
    outcome: Outcome
    record: Record | None = None
    content: Content | None = None
    history: HistoryEntry | None = None
    errors: list[Problem] = field(default_factory=list)
    extra_history: list[HistoryEntry] = field(default_factory=list)
    """Further transitions of the same change (a rejection, then its correction's promotion)."""
    yielded: Record | None = None
    """The record of another certifier, never valid, whose id this change takes: its last
    content is kept in the unusable log, for its certifier to send again under another id."""

    @property
    def changed(self) -> bool:
        return self.record is not None


def is_outstanding(status: RecordStatus, correction: bool, revocation: bool) -> bool:
    if status in SETTLED:
        return correction or revocation
    return True


def moved(
    current: Record,
    after: Record,
    now: datetime,
    reason: str,
    batch_id: str | None = None,
    report: str | None = None,
) -> Change:
    """`current` becomes `after`, with the history entry that says so (from and to statuses
    are the records' own)."""
    entry = HistoryEntry(
        current.record_id, now, current.status, after.status, reason, batch_id, report
    )
    return Change(Outcome.MOVED, after, None, entry)
