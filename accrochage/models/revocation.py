"""A record's revocation and withdrawal: what a `certification.revoked` event does (withdrawn if
never sent, flagged while the CDC may hold it), and the record states the rest of its life
reaches when it leaves, or must leave, the CDC."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from accrochage.models.decode import Decoded
from accrochage.models.problems import Problem
from accrochage.models.record import NEVER_SENT, Change, HistoryEntry, Record, Status
from accrochage.models.record_deadline import legal_deadline
from accrochage.models.vocabulary import Outcome


def belongs_elsewhere(current: Record, certifier: str | None) -> bool:
    """Whether `current` is a record of another certifier than the event's `certifier`."""
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
    if belongs_elsewhere(current, decoded.certifier):
        return Change(
            Outcome.REFUSED,
            errors=[
                Problem("certifier", f"record {decoded.record_id} belongs to {current.certifier!r}")
            ],
        )
    mismatch = _another_certification(current, decoded)
    if mismatch is not None:
        return Change(Outcome.REFUSED, errors=[mismatch])
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
            HistoryEntry(
                decoded.record_id, now, before, Status.WITHDRAWN, reason, event_id=decoded.event_id
            ),
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
            event_id=decoded.event_id,
        ),
    )


def _another_certification(current: Record, decoded: Decoded) -> Problem | None:
    """A revocation naming a certification the record is not: the platform's only check that
    its `record_id` is the one it means (withdrawn, an accepted record goes out as a
    SUPPRESSION). A record with a stored correction may be about to change code: not judged."""
    named = decoded.code
    if named is None or current.code is None or current.correction_version is not None:
        return None
    if named == current.code:
        return None
    return Problem(
        "certification.code",
        f"record {current.record_id} is a certification {current.code}, not {named}: check "
        "the record_id (nothing was revoked)",
    )


def _withdrawn_by(record: Record) -> str:
    """How the flagged record leaves, in its history: only one the CDC accepted goes out as a
    SUPPRESSION; one whose file waits is withdrawn when that file is superseded or refused."""
    if record.held_elsewhere:
        return f"flagged for the CDC's support (it holds it as {record.cdc_held_as})"
    if record.status is Status.BATCHED:
        return (
            "flagged: its file, if not deposited, is superseded at the next flush and the "
            "record withdrawn (deposited, its CDC report decides)"
        )
    if record.status is Status.DEPOSITED:
        return (
            "flagged: withdrawn if the CDC's report refuses its file's passage, cut into a "
            "SUPPRESSION if the report accepts it"
        )
    return "flagged for SUPPRESSION"


def without_correction(record: Record) -> Record:
    """The record with no stored correction waiting to be sent."""
    return replace(
        record,
        correction_version=None,
        correction_hash=None,
        correction_valid=None,
        correction_errors=(),
    )


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


def waiting_for_nothing(record: Record) -> Record:
    """An accepted record left with nothing to send the CDC (its correction taken back, its
    revocation undone): back to the batch whose content the CDC holds, its legal date shown
    again, waiting for no SUPPRESSION (an earlier refusal of one answered so)."""
    return replace(
        record,
        batch_id=record.accepted_batch_id,
        deadline=legal_deadline(record),
        pending_since=None,
        suppression_rejected=False,
    )
