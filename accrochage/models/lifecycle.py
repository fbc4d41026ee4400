"""The record's life (DESIGN.md): what one event, cut, deposit or report does to a record.

Pure functions over typed values (`models/record.py`): the store reads the current `Record`s,
a function here says what changes (a `Change`), and the store writes the answer in the same
transaction. Nothing here knows how records are stored.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime

from accrochage.models.deadline import deadline_for
from accrochage.models.decode import Decoded
from accrochage.models.problems import Problem
from accrochage.models.record import (
    IN_A_BATCH,
    INVALID_CONTENT_KEPT,
    TRUNCATED,
    Change,
    Content,
    HistoryEntry,
    Record,
    Status,
)
from accrochage.models.record_deadline import (
    deadline_beside_correction,
    delivery_deadline,
)
from accrochage.models.revocation import (
    awaiting_withdrawal,
    belongs_elsewhere,
    waiting_for_nothing,
    without_correction,
)
from accrochage.models.scope import takes_id
from accrochage.models.vocabulary import Outcome, RecordStatus


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
        passage=decoded.passage,
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
        ever_valid=decoded.valid,
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
            HistoryEntry(decoded.record_id, now, None, status, reason, event_id=decoded.event_id),
        )
    if belongs_elsewhere(current, decoded.certifier):
        if takes_id(current.yields_id, decoded):
            return _taken_over(current, decoded, now, source, xml_bytes)
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
    # The same content found valid now (newer reference data): stored again, to be sent.
    revalidated = decoded.valid and (
        before is Status.INVALID
        or (
            before in IN_A_BATCH
            and current.correction_valid is False
            and decoded.content_hash == current.correction_hash
        )
    )
    # Taking a correction back is a decision: an event with errors (no event_id, say) makes none.
    back = (
        decoded.valid
        and before in IN_A_BATCH
        and current.correction_version is not None
        and decoded.content_hash == current.content_hash
    )
    if back and not current.suppression_awaited:
        return _back_to_sent(current, decoded, now)
    # A stored correction only counts as the current content while the record is in a batch:
    # once rejected (or never sent), sending it again must re-queue it like any correction.
    # Back to the content sent while its SUPPRESSION is in flight: that content is the
    # correction to send again once the CDC has deleted it.
    same = (decoded.content_hash == current.content_hash and not back) or (
        before in IN_A_BATCH and decoded.content_hash == current.correction_hash
    )
    if same and not revalidated:
        return Change(Outcome.UNCHANGED)
    version = current.latest_version + 1
    content = _content(decoded, version, now, source)
    if before in IN_A_BATCH:
        reason = "correction received after the batch was cut: kept for the correction path"
        if not decoded.valid:
            reason += " (it has errors: a valid correction must follow before it is sent)"
        # Arrival order: new content after a revocation is the platform's way back, as for a
        # record never sent; kept revoked, the CDC would never get it. One with errors is no
        # way back: it could never be sent, and the CDC would keep the revoked passage.
        undone = current.revocation_pending and decoded.valid
        if undone:
            reason += "; it undoes the revocation received before it"
        elif current.revocation_pending:
            reason += "; the revocation received before it stands (only a valid one undoes it)"
        flagged = replace(
            current,
            revocation_pending=current.revocation_pending and not undone,
            correction_version=version,
            correction_hash=decoded.content_hash,
            correction_valid=decoded.valid,
            correction_errors=tuple(decoded.errors),
            latest_version=version,
            deadline=deadline_beside_correction(current, decoded.delivered_on),
            updated_at=now,
        )
        return Change(
            Outcome.CORRECTION_STORED,
            awaiting_withdrawal(flagged, now),
            content,
            HistoryEntry(decoded.record_id, now, before, before, reason, event_id=decoded.event_id),
        )
    was_waiting = before is Status.PENDING and status is Status.PENDING
    fresh = _new_record(decoded, status, now, xml_bytes)
    record = replace(
        fresh,
        # An event that names no certifier (nor a code that tells it) leaves the owner as it is.
        certifier=decoded.certifier or current.certifier,
        version=version,
        latest_version=version,
        created_at=current.created_at,
        revocation_pending=current.revocation_pending,
        pending_since=current.pending_since if was_waiting else fresh.pending_since,
        # The CDC's identity procedure counts rejections across corrected deposits.
        identity_rejections=current.identity_rejections,
        delivery_met=current.delivery_met,
        deadline=delivery_deadline(current, decoded.delivered_on),
        ever_valid=current.ever_valid or decoded.valid,
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
        HistoryEntry(decoded.record_id, now, before, status, reason, event_id=decoded.event_id),
    )


TAKEN_OVER = "record id taken by a valid event of certifier"
"""How the history entry of a record taken over begins (`_taken_over`): what came before it
was another certifier's."""


def _taken_over(
    current: Record, decoded: Decoded, now: datetime, source: str | None, xml_bytes: int | None
) -> Change:
    """A valid event of another certifier naming the id of a record that never passed
    validation (so never left): the id becomes its certifier's record, created as for a new
    id. The earlier contents stay under the id as versions; the last goes to the unusable
    log (`Change.yielded`), so that its certifier sees it to send again under another id."""
    assert decoded.record_id is not None
    version = current.latest_version + 1
    record = replace(
        _new_record(decoded, Status.PENDING, now, xml_bytes),
        version=version,
        latest_version=version,
    )
    reason = (
        f"{TAKEN_OVER} {decoded.certifier!r}: the events of "
        f"certifier {current.certifier!r} before it never passed validation (the last one is "
        "kept in the unusable log)"
    )
    return Change(
        Outcome.CREATED,
        record,
        _content(decoded, version, now, source),
        HistoryEntry(
            decoded.record_id,
            now,
            current.status,
            Status.PENDING,
            reason,
            event_id=decoded.event_id,
        ),
        yielded=current,
    )


def _back_to_sent(current: Record, decoded: Decoded, now: datetime) -> Change:
    """The platform sent again the content the record's batch carries, after a correction:
    its last word is what was sent, so the stored correction is dropped (never sent). An
    accepted record waits for no SUPPRESSION any more, unless it was revoked."""
    assert decoded.record_id is not None
    record = replace(
        without_correction(current),
        deadline=delivery_deadline(current, current.delivered_on),
        updated_at=now,
    )
    if record.status is Status.ACCEPTED and not record.revocation_pending:
        record = replace(waiting_for_nothing(record), cdc_message=None, cdc_reason=None)
    return Change(
        Outcome.UPDATED,
        record,
        None,
        HistoryEntry(
            decoded.record_id,
            now,
            current.status,
            record.status,
            "the content sent was received again: the stored correction is dropped",
            event_id=decoded.event_id,
        ),
    )
