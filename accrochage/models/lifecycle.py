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
    NEVER_SENT,
    TRUNCATED,
    Change,
    Content,
    HistoryEntry,
    Outcome,
    Record,
    Status,
)
from accrochage.models.record_deadline import (
    deadline_beside_correction,
    delivery_deadline,
    legal_deadline,
)
from accrochage.models.vocabulary import RecordStatus


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
            HistoryEntry(decoded.record_id, now, None, status, reason),
        )
    if _belongs_elsewhere(current, decoded.certifier):
        if current.yields_id and decoded.valid:
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
    revalidated = before is Status.INVALID and decoded.valid
    back = (
        before in IN_A_BATCH
        and current.correction_version is not None
        and decoded.content_hash == current.content_hash
    )
    # A SUPPRESSION the CDC refused left it holding the content sent: nothing is in flight.
    in_flight = current.suppression_in_flight and not current.suppression_rejected
    if back and not in_flight:
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
        flagged = replace(
            current,
            correction_version=version,
            correction_hash=decoded.content_hash,
            correction_valid=decoded.valid,
            latest_version=version,
            deadline=deadline_beside_correction(current, decoded.delivered_on),
            updated_at=now,
        )
        return Change(
            Outcome.CORRECTION_STORED,
            awaiting_withdrawal(flagged, now),
            content,
            HistoryEntry(decoded.record_id, now, before, before, reason),
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
        HistoryEntry(decoded.record_id, now, before, status, reason),
    )


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
        f"record id taken by a valid event of certifier {decoded.certifier!r}: the events of "
        f"certifier {current.certifier!r} before it never passed validation (the last one is "
        "kept in the unusable log)"
    )
    return Change(
        Outcome.CREATED,
        record,
        _content(decoded, version, now, source),
        HistoryEntry(decoded.record_id, now, current.status, Status.PENDING, reason),
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
        record = replace(
            record,
            deadline=legal_deadline(record),
            pending_since=None,
            suppression_rejected=False,
            batch_id=current.accepted_batch_id,
            cdc_message=None,
            cdc_reason=None,
        )
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
        ),
    )


def _belongs_elsewhere(current: Record, certifier: str | None) -> bool:
    return (
        current.certifier is not None and certifier is not None and current.certifier != certifier
    )


def no_record_to_revoke(record_id: str) -> Problem:
    return Problem(
        "record_id",
        f"no record {record_id} to revoke; send the revocation after the "
        "certification.delivered event",
    )


def apply_revoked(current: Record | None, decoded: Decoded, now: datetime) -> Change:
    """A `certification.revoked` event: withdrawn if never sent, flagged if the CDC has it."""
    assert decoded.record_id is not None
    if current is None:
        return Change(Outcome.REFUSED, errors=[no_record_to_revoke(decoded.record_id)])
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
        awaiting_withdrawal(replace(current, revocation_pending=True, updated_at=now), now),
        None,
        HistoryEntry(
            decoded.record_id,
            now,
            before,
            before,
            reason + " after the batch was cut: " + _withdrawn_by(current),
        ),
    )


def _withdrawn_by(record: Record) -> str:
    if record.held_elsewhere:
        return f"flagged for the CDC's support (it holds it as {record.cdc_held_as})"
    return "flagged for SUPPRESSION"


def without_correction(record: Record) -> Record:
    """The record with no stored correction waiting to be sent."""
    return replace(record, correction_version=None, correction_hash=None, correction_valid=None)


def withdrawn(record: Record, now: datetime) -> Record:
    """A revoked record the CDC never acknowledged, taken out of its batch's way: withdrawn,
    its stored correction dropped (nothing is left to correct)."""
    return replace(
        without_correction(record),
        status=Status.WITHDRAWN,
        revocation_pending=False,
        pending_since=None,
        cdc_held_as=None,
        updated_at=now,
    )


def awaiting_withdrawal(record: Record, now: datetime) -> Record:
    """An accepted record that must leave the CDC (revoked, or corrected): it waits for a
    SUPPRESSION from `now` (the batching age rule), and its delivery deadline is met for good:
    what is due now is the open correction request's answer, tracked by the request itself.
    """
    if record.status is not Status.ACCEPTED or record.pending_since is not None:
        return record
    if record.correction_version is None and not record.revocation_pending:
        return record
    return replace(record, deadline=None, pending_since=now)
