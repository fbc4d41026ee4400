"""The record's life (DESIGN.md): what one event, cut, deposit, report or retry does to a record.

Pure functions over typed values: the store reads the current `Record`s, a function here says
what changes (a `Change`), and the store writes the answer in the same transaction. Nothing
here knows how records are stored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from enum import StrEnum

from accrochage.models.cdc import classify
from accrochage.models.deadline import deadline_for
from accrochage.models.decode import Decoded
from accrochage.models.problems import Problem
from accrochage.models.vocabulary import CdcReason, RecordStatus

Status = RecordStatus
INVALID_CONTENT_KEPT = 65_536
"""Characters of an invalid content kept in the state (its hash is of the whole content)."""
TRUNCATED = "_truncated"
NEVER_SENT = frozenset({Status.INVALID, Status.PENDING, Status.REJECTED, Status.EXCLUDED})
EXCLUDABLE = frozenset({Status.INVALID, Status.PENDING, Status.REJECTED})
IN_A_BATCH = frozenset({Status.BATCHED, Status.DEPOSITED, Status.ACCEPTED})
AWAITING_REPORT = frozenset({Status.BATCHED, Status.DEPOSITED})


class Outcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    CORRECTION_STORED = "correction_stored"
    WITHDRAWN = "withdrawn"
    REVOCATION_FLAGGED = "revocation_flagged"
    REFUSED = "refused"
    MOVED = "moved"
    """A cut, a deposit, a report outcome or a retry changed the record's status."""


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

    @property
    def outstanding(self) -> bool:
        return is_outstanding(
            self.status, self.correction_version is not None, self.revocation_pending
        )


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


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    record_id: str
    at: datetime
    from_status: RecordStatus | None
    to_status: RecordStatus
    reason: str
    batch_id: str | None = None
    report: str | None = None


@dataclass(slots=True)
class Change:
    outcome: Outcome
    record: Record | None = None
    content: Content | None = None
    history: HistoryEntry | None = None
    errors: list[Problem] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.record is not None


def is_outstanding(status: RecordStatus, correction: bool, revocation: bool) -> bool:
    if status in (Status.ACCEPTED, Status.WITHDRAWN, Status.EXCLUDED):
        return correction or revocation
    return True


def kept_payload(decoded: Decoded) -> str:
    """The content as stored: whole when valid; an invalid one only up to a cap.

    A valid content is bounded by the contract's field lengths; an invalid one is not (an
    unknown field of 60 MiB), and it is never rendered: its start is enough to fix it.
    """
    content = decoded.content or ""
    if decoded.valid or len(content) <= INVALID_CONTENT_KEPT:
        return content
    return json.dumps(
        {TRUNCATED: {"characters": len(content), "start": content[:INVALID_CONTENT_KEPT]}},
        ensure_ascii=False,
    )


def _content(decoded: Decoded, version: int, now: datetime, source: str | None) -> Content:
    assert decoded.record_id is not None and decoded.content_hash is not None
    return Content(
        record_id=decoded.record_id,
        version=version,
        content_hash=decoded.content_hash,
        event_id=decoded.event_id,
        payload=kept_payload(decoded),
        occurred_at=_envelope_text(decoded, "occurred_at"),
        emitted_by=_envelope_text(decoded, "source"),
        received_at=now,
        source=source,
    )


def _envelope_text(decoded: Decoded, name: str) -> str | None:
    value = (decoded.payload or {}).get(name)
    return value[:255] if isinstance(value, str) else None


def _new_record(decoded: Decoded, status: RecordStatus, now: datetime, size: int | None) -> Record:
    assert decoded.record_id is not None and decoded.content_hash is not None
    return Record(
        record_id=decoded.record_id,
        certifier=decoded.certifier,
        code=decoded.code,
        status=status,
        version=1,
        content_hash=decoded.content_hash,
        delivered_on=decoded.delivered_on,
        deadline=deadline_for(decoded.delivered_on) if decoded.delivered_on else None,
        errors=tuple(decoded.errors),
        warnings=tuple(decoded.warnings),
        xml_bytes=size,
        batch_id=None,
        pending_since=now if status is Status.PENDING else None,
        correction_version=None,
        revocation_pending=False,
        cdc_message=None,
        created_at=now,
        updated_at=now,
        latest_version=1,
    )


def apply_delivered(
    current: Record | None,
    decoded: Decoded,
    now: datetime,
    source: str | None,
    xml_bytes: int | None,
) -> Change:
    """A `certification.delivered` event against the record it names (or none yet)."""
    assert decoded.record_id is not None
    status = Status.PENDING if decoded.valid else Status.INVALID
    if current is None:
        reason = "event received" if decoded.valid else "event received with errors"
        return Change(
            Outcome.CREATED,
            _new_record(decoded, status, now, xml_bytes),
            _content(decoded, 1, now, source),
            HistoryEntry(decoded.record_id, now, None, status, reason),
        )
    if _belongs_elsewhere(current, decoded.certifier):
        return Change(
            Outcome.REFUSED,
            errors=[
                Problem(
                    "record_id",
                    f"{decoded.record_id} is already a record of certifier "
                    f"{current.certifier!r}; "
                    "record ids are unique across the tracker (the CDC idTechnique)",
                )
            ],
        )
    before = current.status
    revalidated = before is Status.INVALID and decoded.valid
    # A stored correction only counts as the current content while the record is in a batch:
    # once rejected (or never sent), sending it again must re-queue it like any correction.
    same = decoded.content_hash == current.content_hash or (
        before in IN_A_BATCH and decoded.content_hash == current.correction_hash
    )
    if same and not revalidated:
        return Change(Outcome.UNCHANGED)
    version = current.latest_version + 1
    content = _content(decoded, version, now, source)
    if before in IN_A_BATCH:
        reason = "correction received after the batch was cut: kept for the correction path"
        return Change(
            Outcome.CORRECTION_STORED,
            replace(
                current,
                correction_version=version,
                correction_hash=decoded.content_hash,
                latest_version=version,
                updated_at=now,
            ),
            content,
            HistoryEntry(decoded.record_id, now, before, before, reason),
        )
    was_waiting = before is Status.PENDING and status is Status.PENDING
    fresh = _new_record(decoded, status, now, xml_bytes)
    record = replace(
        fresh,
        version=version,
        latest_version=version,
        created_at=current.created_at,
        revocation_pending=current.revocation_pending,
        pending_since=current.pending_since if was_waiting else fresh.pending_since,
    )
    reason = "correction received" if decoded.valid else "correction received with errors"
    if before is Status.EXCLUDED:
        # The operator took it out of the obligation: it stays out, with its new content.
        record = replace(record, status=Status.EXCLUDED, excluded_from=status, pending_since=None)
        status = Status.EXCLUDED
        reason += "; the record stays excluded"
    return Change(
        Outcome.UPDATED,
        record,
        content,
        HistoryEntry(decoded.record_id, now, before, status, reason),
    )


def _belongs_elsewhere(current: Record, certifier: str | None) -> bool:
    return (
        current.certifier is not None and certifier is not None and current.certifier != certifier
    )


def apply_revoked(current: Record | None, decoded: Decoded, now: datetime) -> Change:
    """A `certification.revoked` event: withdrawn if never sent, flagged if the CDC has it."""
    assert decoded.record_id is not None
    if current is None:
        return Change(
            Outcome.REFUSED,
            errors=[
                Problem(
                    "record_id",
                    f"no record {decoded.record_id} to revoke; send the revocation after "
                    "the certification.delivered event",
                )
            ],
        )
    if _belongs_elsewhere(current, decoded.certifier):
        return Change(
            Outcome.REFUSED,
            errors=[
                Problem("certifier", f"record {decoded.record_id} belongs to {current.certifier!r}")
            ],
        )
    before = current.status
    if before is Status.WITHDRAWN or current.revocation_pending:
        return Change(Outcome.UNCHANGED)
    why = decoded.payload.get("reason") if decoded.payload else None
    reason = "revoked" + (f": {why}" if why else "")
    if before in NEVER_SENT:
        return Change(
            Outcome.WITHDRAWN,
            replace(
                current,
                status=Status.WITHDRAWN,
                updated_at=now,
                pending_since=None,
                excluded_from=None,
            ),
            None,
            HistoryEntry(decoded.record_id, now, before, Status.WITHDRAWN, reason),
        )
    return Change(
        Outcome.REVOCATION_FLAGGED,
        replace(current, revocation_pending=True, updated_at=now),
        None,
        HistoryEntry(
            decoded.record_id,
            now,
            before,
            before,
            reason + " after the batch was cut: flagged for SUPPRESSION",
        ),
    )


def cut_entry(record_id: str, now: datetime, reason: str, batch_id: str) -> HistoryEntry:
    """The history of a pending record taken into a batch (the store moves members in bulk)."""
    return HistoryEntry(
        record_id, now, Status.PENDING, Status.BATCHED, f"batch cut: {reason}", batch_id
    )


def apply_deposited(current: Record, batch_id: str, now: datetime) -> Change:
    """The file of the record's batch was uploaded: batched -> deposited."""
    if current.batch_id != batch_id or current.status is not Status.BATCHED:
        return Change(Outcome.UNCHANGED)
    return Change(
        Outcome.MOVED,
        replace(current, status=Status.DEPOSITED, updated_at=now),
        None,
        HistoryEntry(
            current.record_id,
            now,
            Status.BATCHED,
            Status.DEPOSITED,
            "file deposited on the CDC portal",
            batch_id,
        ),
    )


def apply_report(
    current: Record,
    *,
    accepted: bool,
    message: str | None,
    report_batch: str | None,
    now: datetime,
    label: str,
    whole_file: bool = False,
) -> Change:
    """One outcome of a CDC processing report for one record.

    A report on an older batch says nothing of a record that has moved on (re-queued, sent
    again in another batch); a record not awaiting a report keeps its status.
    """
    target = Status.ACCEPTED if accepted else Status.REJECTED
    if report_batch is not None and current.batch_id != report_batch:
        return Change(Outcome.UNCHANGED)
    waiting = AWAITING_REPORT if whole_file else AWAITING_REPORT | {Status.REJECTED}
    if current.status is target or current.status not in waiting:
        return Change(Outcome.UNCHANGED)
    after, revocation = target, current.revocation_pending
    reason = "accepted by the CDC" if accepted else f"rejected by the CDC: {message}"
    if not accepted and revocation:
        # Revoked while in flight and never accepted: the CDC holds nothing to delete.
        after, revocation = Status.WITHDRAWN, False
        reason += "; it had been revoked, so it is withdrawn"
    return Change(
        Outcome.MOVED,
        replace(
            current,
            status=after,
            cdc_message=message,
            cdc_reason=classify(message, whole_file=whole_file) if message or whole_file else None,
            revocation_pending=revocation,
            updated_at=now,
        ),
        None,
        HistoryEntry(
            current.record_id, now, current.status, after, reason, current.batch_id, label
        ),
    )


def apply_retry(current: Record, now: datetime) -> Change:
    """The operator re-queues a rejected record without new content."""
    if current.status is not Status.REJECTED:
        return Change(
            Outcome.REFUSED,
            errors=[
                Problem(
                    "record_id",
                    f"record {current.record_id} is {current.status}: only rejected records "
                    "can be retried (a corrected event re-queues the others)",
                )
            ],
        )
    return Change(
        Outcome.MOVED,
        replace(current, status=Status.PENDING, pending_since=now, batch_id=None, updated_at=now),
        None,
        HistoryEntry(
            current.record_id, now, Status.REJECTED, Status.PENDING, "retried by the operator"
        ),
    )


def apply_exclude(current: Record, reason: str, now: datetime) -> Change:
    """The operator takes a record out of the obligation (an invalid, pending or rejected one)."""
    if current.status is Status.EXCLUDED:
        return Change(Outcome.UNCHANGED)
    if current.status not in EXCLUDABLE:
        return Change(
            Outcome.REFUSED,
            errors=[
                Problem(
                    "record_id",
                    f"record {current.record_id} is {current.status}: only invalid, pending and "
                    "rejected records can be excluded (the CDC may hold the others)",
                )
            ],
        )
    return Change(
        Outcome.MOVED,
        replace(
            current,
            status=Status.EXCLUDED,
            excluded_from=current.status,
            pending_since=None,
            updated_at=now,
        ),
        None,
        HistoryEntry(
            current.record_id, now, current.status, Status.EXCLUDED, f"excluded: {reason}"
        ),
    )


def apply_include(current: Record, now: datetime) -> Change:
    """The operator puts an excluded record back: it gets the status of its current content."""
    if current.status is not Status.EXCLUDED:
        return Change(
            Outcome.REFUSED,
            errors=[
                Problem(
                    "record_id",
                    f"record {current.record_id} is {current.status}, not excluded",
                )
            ],
        )
    after = current.excluded_from or Status.PENDING
    return Change(
        Outcome.MOVED,
        replace(
            current,
            status=after,
            excluded_from=None,
            pending_since=now if after is Status.PENDING else None,
            updated_at=now,
        ),
        None,
        HistoryEntry(current.record_id, now, Status.EXCLUDED, after, "included again"),
    )
