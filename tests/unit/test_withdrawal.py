"""The record after it was sent (`models/withdrawal.py`), transition by transition, no store."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

from accrochage.models.batch_life import apply_report, suppression_deposited
from accrochage.models.lifecycle import apply_delivered
from accrochage.models.record import Record
from accrochage.models.record_deadline import legal_deadline
from accrochage.models.revocation import apply_revoked
from accrochage.models.suppression_report import apply_suppression_report
from accrochage.models.vocabulary import CdcReason, Outcome
from accrochage.models.vocabulary import RecordStatus as S
from accrochage.models.withdrawal import (
    Sending,
    apply_held_elsewhere,
    apply_rejected_with_correction,
    apply_superseded,
    apply_suppression_retry,
)
from tests.unit.test_lifecycle import EARLIER, NOW, at, changed, delivered, revoked

SUPPRESSION = "S-1"


def accepted(**fields: Any) -> Record:
    return at(S.ACCEPTED, accepted_batch_id="B-1", delivery_met=True, **fields)


def corrected(record: Record, score: str = "999") -> Record:
    change = apply_delivered(record, delivered(score=score), EARLIER, "test", 3000)
    return changed(change)


def in_flight(record: Record) -> Record:
    return replace(record, batch_id=SUPPRESSION, pending_since=None)


def test_a_correction_of_an_accepted_record_waits_for_a_suppression_without_a_deadline() -> None:
    record = corrected(accepted())
    assert record.status is S.ACCEPTED and record.outstanding
    assert record.correction_version == 2 and record.correction_valid is True
    assert record.deadline is None, "accepted on time: never at risk again"
    assert record.pending_since == EARLIER, "the age rule counts from the correction"
    assert not record.suppression_in_flight


def test_an_invalid_correction_is_stored_as_such() -> None:
    record = changed(
        apply_delivered(accepted(), delivered(delivered_on="2026-02-30"), NOW, "t", None)
    )
    assert record.correction_valid is False and record.correction_version == 2


def test_a_revocation_of_an_accepted_record_flags_it() -> None:
    record = changed(apply_revoked(accepted(), revoked(), NOW))
    assert record.revocation_pending and record.deadline is None and record.pending_since == NOW


def test_an_accepted_suppression_of_a_revoked_record_withdraws_it() -> None:
    record = in_flight(changed(apply_revoked(accepted(), revoked(), NOW)))
    change = apply_suppression_report(
        record,
        batch_id=SUPPRESSION,
        accepted=True,
        message=None,
        now=NOW,
        label="r",
        correction=None,
    )
    after = changed(change)
    assert after.status is S.WITHDRAWN and not after.outstanding
    assert not after.revocation_pending and after.accepted_batch_id is None


def test_an_accepted_suppression_of_a_corrected_record_makes_the_correction_pending() -> None:
    record = in_flight(corrected(accepted()))
    change = apply_suppression_report(
        record,
        batch_id=SUPPRESSION,
        accepted=True,
        message=None,
        now=NOW,
        label="r",
        correction=(delivered(score="999"), 3000),
    )
    after = changed(change)
    assert (after.status, after.version, after.batch_id) == (S.PENDING, 2, None)
    assert after.correction_version is None
    assert after.deadline is None and after.delivery_met, (
        "the CDC had it on time: only an open request's deadline is due (the queries read it)"
    )
    assert after.pending_since == NOW and after.xml_bytes == 3000


def test_a_refused_suppression_keeps_the_record_accepted_and_retry_cuts_it_again() -> None:
    record = in_flight(corrected(accepted()))
    for message, whole, reason in (
        ("Erreur", False, CdcReason.OTHER),
        ("Le passage certification … existe déjà en base", False, CdcReason.OTHER),
        ("file rejected: XSD", True, CdcReason.FILE_REJECTED),
    ):
        after = changed(
            apply_suppression_report(
                record,
                batch_id=SUPPRESSION,
                accepted=False,
                message=message,
                now=NOW,
                label="r",
                correction=None,
                whole_file=whole,
            )
        )
        assert after.status is S.ACCEPTED and after.suppression_rejected
        assert after.cdc_reason is reason and after.outstanding
    retried = changed(apply_suppression_retry(after, NOW))
    assert not retried.suppression_rejected and retried.batch_id == "B-1"
    assert retried.pending_since == NOW


def test_a_suppression_report_on_another_batch_changes_nothing() -> None:
    record = in_flight(corrected(accepted()))
    change = apply_suppression_report(
        record,
        batch_id="S-OLD",
        accepted=True,
        message=None,
        now=NOW,
        label="r",
        correction=None,
    )
    assert change.outcome is Outcome.UNCHANGED


def test_members_of_a_superseded_file_go_back_each_their_way() -> None:
    plain = at(S.BATCHED)
    assert changed(apply_superseded(plain, "B-1", NOW, None)).status is S.PENDING
    gone = changed(apply_revoked(at(S.BATCHED), revoked(), NOW))
    assert changed(apply_superseded(gone, "B-1", NOW, None)).status is S.WITHDRAWN
    fixed = corrected(at(S.BATCHED))
    after = changed(apply_superseded(fixed, "B-1", NOW, (delivered(score="999"), 3000)))
    assert (after.status, after.version, after.batch_id) == (S.PENDING, 2, None)
    assert after.deadline == date(2027, 2, 18), "never accepted: its delivery deadline"
    assert apply_superseded(plain, "B-2", NOW, None).outcome is Outcome.UNCHANGED


def test_a_rejection_makes_the_stored_correction_the_content() -> None:
    fixed = corrected(at(S.DEPOSITED))
    rejected = changed(
        apply_report(
            fixed, accepted=False, message="Erreur", report_batch="B-1", now=NOW, label="r"
        )
    )
    after = changed(apply_rejected_with_correction(rejected, (delivered(score="999"), 10), NOW))
    assert (after.status, after.version, after.correction_version) == (S.PENDING, 2, None)


def test_the_cdc_holding_an_earlier_content_makes_the_newer_one_a_correction() -> None:
    newer = replace(at(S.BATCHED, batch_id="B-2"), version=2, content_hash="new")
    held = Sending("B-1", 1, "old")
    after = changed(apply_held_elsewhere(newer, held, NOW, "held", "r"))
    assert (after.status, after.version, after.accepted_batch_id) == (S.ACCEPTED, 1, "B-1")
    assert (after.correction_version, after.correction_hash) == (2, "new")
    assert after.deadline is None and after.outstanding
    same = changed(apply_held_elsewhere(newer, Sending("B-1", 2, "new"), NOW, "held", "r"))
    assert same.correction_version is None and not same.outstanding
    assert apply_held_elsewhere(after, held, NOW, "h", "r").outcome is Outcome.UNCHANGED


def test_two_identity_rejections_flag_the_procedure() -> None:
    record = at(S.BATCHED)
    for round_ in (1, 2):
        record = changed(
            apply_report(
                record,
                accepted=False,
                message="Aucun titulaire ne correspond aux critères obligatoires",
                report_batch="B-1",
                now=NOW,
                label="r",
            )
        )
        assert record.identity_rejections == round_
        assert record.identity_procedure is (round_ == 2)
        record = replace(record, status=S.BATCHED)


def test_acceptance_remembers_the_batch_the_cdc_holds() -> None:
    after = changed(
        apply_report(
            at(S.DEPOSITED), accepted=True, message=None, report_batch="B-1", now=NOW, label="r"
        )
    )
    assert after.accepted_batch_id == "B-1" and not after.suppression_in_flight


def test_an_old_suppression_file_deposited_says_nothing_of_a_record_it_no_longer_holds() -> None:
    """A SUPPRESSION file superseded (its record cut again in another) then recorded as
    deposited: the record's history must not say its withdrawal went in that file."""
    record = in_flight(corrected(accepted()))
    assert suppression_deposited(record, SUPPRESSION, NOW).history is not None
    moved = replace(record, batch_id="S-2")
    change = suppression_deposited(moved, SUPPRESSION, NOW)
    assert change.outcome is Outcome.UNCHANGED and change.history is None


def test_an_accepted_record_without_a_delivery_date_keeps_the_deadline_it_had() -> None:
    """Left with nothing to send, an accepted record shows its legal date again: the one its
    delivery gave, or, without a delivery date, the one it had (none to compute)."""
    dated = accepted(deadline=None)
    assert dated.delivered_on is not None
    assert legal_deadline(dated) is not None and legal_deadline(dated) > dated.delivered_on
    undated = accepted(delivered_on=None, deadline=date(2026, 9, 30))
    assert legal_deadline(undated) == date(2026, 9, 30)
    assert legal_deadline(replace(undated, deadline=None)) is None
