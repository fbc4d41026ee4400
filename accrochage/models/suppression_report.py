"""The CDC's answer to a SUPPRESSION of a record (CONTRACT §9): from the file that carries the
record now, or from an earlier one it has left (superseded before any deposit, and uploaded
all the same)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from accrochage.models.cdc import classify
from accrochage.models.decode import Decoded
from accrochage.models.record import Change, MembersMoved, Record, Status, moved
from accrochage.models.revocation import without_correction
from accrochage.models.vocabulary import CdcReason, Outcome
from accrochage.models.withdrawal import taken_back, with_correction

SUPPRESSION_ACCEPTED = "SUPPRESSION accepted by the CDC"


def withdrawn_plain(batch_id: str, now: datetime, label: str) -> MembersMoved:
    """`apply_suppression_report` for every revoked record of the reported SUPPRESSION batch
    `batch_id` that the report accepts in its PassagesOK: withdrawn (`_withdrawn`), as one
    move the store makes in one statement. A corrected record sends its correction next, its
    content decoded again: it goes through the record's life."""
    reason = f"{SUPPRESSION_ACCEPTED}: withdrawn"
    return MembersMoved(batch_id, now, Status.ACCEPTED, Status.WITHDRAWN, reason, label)


def apply_suppression_report(
    current: Record,
    *,
    batch_id: str,
    accepted: bool,
    message: str | None,
    now: datetime,
    label: str,
    correction: tuple[Decoded, int | None] | None,
    whole_file: bool = False,
    held_as: str | None = None,
) -> Change:
    """The CDC's answer to a SUPPRESSION of the record.

    Accepted: a revoked record is `withdrawn`; a corrected one becomes `pending` with its new
    content (`correction`, decoded again), due by its open correction request, if any (the
    queries read that one): the CDC had it, its delivery deadline is met. Refused ("existe
    déjà" included: it never accepts a suppression): the record stays `accepted` with
    `suppression_rejected`, and `retry` cuts it again — unless the message says the CDC holds
    it under another idTechnique (`held_as`, read by `held_under`): sent again, it would be
    refused again, so the record is marked `cdc_held_as` for the CDC's support.
    """
    if current.status is not Status.ACCEPTED or current.batch_id != batch_id:
        return Change(Outcome.UNCHANGED)
    if not accepted:
        reason = CdcReason.FILE_REJECTED if whole_file else classify(message)
        if reason is CdcReason.ALREADY_EXISTS:
            reason = CdcReason.OTHER
        refused = replace(
            current,
            suppression_rejected=True,
            cdc_message=message,
            cdc_reason=reason,
            pending_since=None,
            updated_at=now,
        )
        next_step = "`accrochage retry` cuts the suppression again"
        if held_as is not None:
            refused = replace(refused, cdc_held_as=held_as)
            next_step = f"it holds it as {held_as}: its correction or withdrawal is for its support"
        return moved(
            current,
            refused,
            now,
            f"SUPPRESSION rejected by the CDC: {message}; the CDC still holds the passage "
            f"({next_step})",
            batch_id,
            label,
        )
    return _deleted(current, batch_id, now, label, correction)


def _deleted(
    current: Record,
    batch_id: str,
    now: datetime,
    label: str,
    correction: tuple[Decoded, int | None] | None,
    where: str = "",
) -> Change:
    """The CDC deleted the passage a SUPPRESSION asked it to (`where`: which file, when not
    the record's own): a revoked record is withdrawn, a corrected one sends its correction
    next."""
    said = f"{SUPPRESSION_ACCEPTED}{f' ({where})' if where else ''}"
    if current.revocation_pending or current.correction_version is None or correction is None:
        return moved(current, _withdrawn(current, now), now, f"{said}: withdrawn", batch_id, label)
    decoded, size = correction
    record = replace(
        with_correction(current, decoded, size, now),
        cdc_message=None,
        cdc_reason=None,
    )
    done = f"{said}: the correction is sent next, in a CREATION file"
    return moved(current, record, now, done, batch_id, label)


def wants_suppression(record: Record) -> bool:
    """Whether the record still asks the CDC to delete its passage: revoked, or corrected
    (a correction equal to what the CDC holds asks nothing)."""
    return record.revocation_pending or (
        record.correction_version is not None and not taken_back(record)
    )


def apply_earlier_suppression(
    current: Record,
    *,
    batch_id: str,
    deleted_hash: str | None,
    now: datetime,
    label: str,
    content: tuple[Decoded, int | None] | None,
) -> Change:
    """The CDC accepted the SUPPRESSION of an earlier file the record has left (superseded
    before any deposit, then uploaded all the same): it deleted the passage that file carried
    (`deleted_hash`). When that is the passage the record is held by (still `accepted` with
    that content), the CDC no longer holds it: a revoked record is withdrawn, a corrected one
    sends its correction next, and any other sends its content again (`content`: the one to
    send, decoded again), its delivery deadline met all the same. Any other record (sent
    again and accepted since, withdrawn, pending) has moved past that deletion: unchanged."""
    if (
        current.status is not Status.ACCEPTED
        or deleted_hash is None
        or deleted_hash != current.content_hash
    ):
        return Change(Outcome.UNCHANGED)
    where = "in an earlier file, uploaded anyway"
    if not current.revocation_pending and content is None:
        return Change(Outcome.UNCHANGED)
    if wants_suppression(current):
        return _deleted(current, batch_id, now, label, content, where)
    assert content is not None
    decoded, size = content
    as_sent = replace(
        current, correction_version=current.version, correction_hash=current.content_hash
    )
    record = replace(
        with_correction(as_sent, decoded, size, now), cdc_message=None, cdc_reason=None
    )
    done = (
        f"SUPPRESSION accepted by the CDC ({where}): it no longer holds the passage, the "
        "content is sent again in a CREATION file"
    )
    return moved(current, record, now, done, batch_id, label)


def _withdrawn(current: Record, now: datetime) -> Record:
    return replace(
        without_correction(current),
        status=Status.WITHDRAWN,
        revocation_pending=False,
        accepted_batch_id=None,
        suppression_rejected=False,
        pending_since=None,
        deadline=None,
        cdc_message=None,
        cdc_reason=None,
        updated_at=now,
    )
