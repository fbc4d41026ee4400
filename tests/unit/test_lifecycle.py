"""The record's state machine (`models/lifecycle.py`), transition by transition, without a store.

Each test builds the record a store would hand over, applies one event, cut, deposit, report or
retry, and checks what must change (status, flags, versions, history) and what must not.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from accrochage.models.batch_life import apply_deposited, apply_report, cut_move
from accrochage.models.deadline import PARIS
from accrochage.models.decode import Decoded, decode
from accrochage.models.lifecycle import apply_delivered
from accrochage.models.operator import apply_retry
from accrochage.models.record import Change, Record
from accrochage.models.revocation import apply_revoked
from accrochage.models.vocabulary import Outcome
from accrochage.models.vocabulary import RecordStatus as S
from tests.factories import TODAY, delivered_event, make_registry, revoked_event

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=PARIS)
EARLIER = NOW - timedelta(days=2)
LATER = NOW + timedelta(hours=1)
RECORD_ID = "PX-2026-000123"


def delivered(**overrides: Any) -> Decoded:
    return decode(delivered_event(**overrides), make_registry(), TODAY)


def revoked(**overrides: Any) -> Decoded:
    return decode(revoked_event(**overrides), make_registry(), TODAY)


def created(decoded: Decoded | None = None) -> Record:
    change = apply_delivered(None, decoded or delivered(), EARLIER, "test", 2000)
    assert change.record is not None
    return change.record


def at(status: S, **fields: Any) -> Record:
    """The example record as a store would read it in `status`."""
    batch = "B-1" if status in (S.BATCHED, S.DEPOSITED, S.ACCEPTED, S.REJECTED) else None
    defaults: dict[str, Any] = {
        "status": status,
        "batch_id": batch,
        "pending_since": EARLIER if status is S.PENDING else None,
    }
    return replace(created(), **(defaults | fields))


def changed(change: Change) -> Record:
    assert change.record is not None, f"{change.outcome}: no change"
    return change.record


# -- certification.delivered ----------------------------------------------------------------


def test_a_valid_event_creates_a_pending_record_with_its_deadline() -> None:
    change = apply_delivered(None, delivered(), NOW, "http:1", 1234)
    record = changed(change)
    assert change.outcome is Outcome.CREATED
    assert record.status is S.PENDING and record.outstanding
    assert record.delivered_on == date(2026, 11, 18) and record.deadline == date(2027, 2, 18)
    assert record.version == record.latest_version == 1
    assert record.pending_since == NOW and record.xml_bytes == 1234
    assert change.content is not None and change.content.version == 1
    assert change.content.source == "http:1" and change.content.event_id is not None
    assert change.history is not None
    assert (change.history.from_status, change.history.to_status) == (None, S.PENDING)


def test_an_invalid_event_creates_an_invalid_record_that_keeps_its_errors() -> None:
    decoded = delivered(delivered_on="2099-01-01")
    assert decoded.errors
    record = changed(apply_delivered(None, decoded, NOW, None, None))
    assert record.status is S.INVALID and record.outstanding
    assert record.pending_since is None
    assert record.errors == tuple(decoded.errors)


@pytest.mark.parametrize("status", [s for s in S if s is not S.INVALID])
def test_the_same_content_again_changes_nothing_whatever_the_status(status: S) -> None:
    change = apply_delivered(at(status), delivered(), NOW, None, 2000)
    assert change.outcome is Outcome.UNCHANGED and not change.changed


def test_the_same_invalid_content_again_changes_nothing() -> None:
    decoded = delivered(delivered_on="2099-01-01")
    change = apply_delivered(created(decoded), decoded, NOW, None, None)
    assert change.outcome is Outcome.UNCHANGED


def test_a_correction_of_a_pending_record_replaces_it_and_keeps_its_place() -> None:
    change = apply_delivered(at(S.PENDING), delivered(score="400"), NOW, None, 2100)
    record = changed(change)
    assert change.outcome is Outcome.UPDATED
    assert record.status is S.PENDING and record.version == 2 == record.latest_version
    assert record.pending_since == EARLIER, "a correction must not reset the batching age"
    assert record.created_at == EARLIER and record.updated_at == NOW
    assert change.content is not None and change.content.version == 2


def test_a_valid_correction_of_an_invalid_record_makes_it_pending_from_now() -> None:
    invalid = created(delivered(delivered_on="2099-01-01"))
    record = changed(apply_delivered(invalid, delivered(), NOW, None, 2000))
    assert record.status is S.PENDING and record.errors == ()
    assert record.pending_since == NOW


def test_an_invalid_record_revalidated_with_the_same_content_becomes_pending() -> None:
    """Same content, now valid (the configuration changed): not a replay, a revalidation."""
    record = replace(created(), status=S.INVALID, pending_since=None)
    change = apply_delivered(record, delivered(), NOW, None, 2000)
    assert change.outcome is Outcome.UPDATED and changed(change).status is S.PENDING


def test_a_correction_after_a_rejection_requeues_the_record() -> None:
    rejected = at(S.REJECTED, cdc_message="identité inconnue")
    record = changed(apply_delivered(rejected, delivered(score="400"), NOW, None, 2000))
    assert record.status is S.PENDING and record.batch_id is None
    assert record.cdc_message is None and record.pending_since == NOW


@pytest.mark.parametrize("status", [S.BATCHED, S.DEPOSITED, S.ACCEPTED])
def test_a_correction_once_in_a_batch_is_stored_beside_the_record(status: S) -> None:
    before = at(status)
    change = apply_delivered(before, delivered(score="400"), NOW, None, 2000)
    record = changed(change)
    assert change.outcome is Outcome.CORRECTION_STORED
    assert record.status is status and record.batch_id == before.batch_id
    assert record.version == 1 and record.correction_version == 2 == record.latest_version
    assert record.content_hash == before.content_hash
    assert record.correction_hash == change.content.content_hash if change.content else False
    assert record.outstanding, "a pending correction keeps even an accepted record outstanding"
    assert change.history is not None and change.history.to_status is status


def test_the_stored_correction_sent_again_changes_nothing_while_in_a_batch() -> None:
    first = apply_delivered(at(S.ACCEPTED), delivered(score="400"), NOW, None, 2000)
    again = apply_delivered(changed(first), delivered(score="400"), LATER, None, 2000)
    assert again.outcome is Outcome.UNCHANGED


def test_the_stored_correction_sent_after_a_rejection_requeues_it() -> None:
    stored = changed(apply_delivered(at(S.BATCHED), delivered(score="400"), NOW, None, 2000))
    rejected = replace(stored, status=S.REJECTED)
    change = apply_delivered(rejected, delivered(score="400"), LATER, None, 2000)
    record = changed(change)
    assert change.outcome is Outcome.UPDATED
    assert record.status is S.PENDING and record.version == 3
    assert record.correction_version is None and record.correction_hash is None


def test_a_record_id_of_another_certifier_is_refused() -> None:
    other = replace(created(), certifier="other")
    change = apply_delivered(other, delivered(score="400"), NOW, None, 2000)
    assert change.outcome is Outcome.REFUSED and not change.changed
    assert [e.field for e in change.errors] == ["record_id"]


# -- certification.revoked ------------------------------------------------------------------


def test_a_revocation_without_a_record_is_refused() -> None:
    change = apply_revoked(None, revoked(), NOW)
    assert change.outcome is Outcome.REFUSED and change.errors[0].field == "record_id"


def test_a_revocation_by_another_certifier_is_refused() -> None:
    change = apply_revoked(replace(created(), certifier="other"), revoked(), NOW)
    assert change.outcome is Outcome.REFUSED and change.errors[0].field == "certifier"


@pytest.mark.parametrize("status", [S.INVALID, S.PENDING, S.REJECTED])
def test_a_record_never_sent_is_withdrawn_by_a_revocation(status: S) -> None:
    change = apply_revoked(at(status), revoked(), NOW)
    record = changed(change)
    assert change.outcome is Outcome.WITHDRAWN
    assert record.status is S.WITHDRAWN and not record.outstanding
    assert record.pending_since is None
    assert change.history is not None and "fraud detected" in change.history.reason


@pytest.mark.parametrize(
    ("status", "leaves"),
    [
        (S.BATCHED, "superseded at the next flush and the record withdrawn"),
        (S.DEPOSITED, "cut into a SUPPRESSION if the report accepts it"),
        (S.ACCEPTED, "flagged for SUPPRESSION"),
    ],
)
def test_a_record_the_cdc_may_hold_is_flagged_with_how_it_leaves(status: S, leaves: str) -> None:
    change = apply_revoked(at(status), revoked(), NOW)
    record = changed(change)
    assert change.outcome is Outcome.REVOCATION_FLAGGED
    assert record.status is status and record.revocation_pending and record.outstanding
    assert change.history is not None and leaves in change.history.reason


def test_a_revocation_of_a_withdrawn_or_flagged_record_changes_nothing() -> None:
    assert apply_revoked(at(S.WITHDRAWN), revoked(), NOW).outcome is Outcome.UNCHANGED
    flagged = at(S.ACCEPTED, revocation_pending=True)
    assert apply_revoked(flagged, revoked(), NOW).outcome is Outcome.UNCHANGED


def test_a_withdrawn_record_with_a_stored_correction_stays_outstanding() -> None:
    record = at(S.WITHDRAWN, correction_version=2)
    assert record.outstanding


# -- cut, deposit -----------------------------------------------------------------------------


def test_a_cut_moves_a_pending_record_to_batched_in_its_history() -> None:
    moved = cut_move(NOW, "forced", "B-9")
    assert (moved.from_status, moved.to_status, moved.batch_id) == (S.PENDING, S.BATCHED, "B-9")
    assert (moved.at, moved.reason) == (NOW, "batch cut: forced")


def test_a_deposit_moves_the_batched_records_of_that_batch_only() -> None:
    change = apply_deposited(at(S.BATCHED), "B-1", NOW)
    assert change.outcome is Outcome.MOVED and changed(change).status is S.DEPOSITED
    assert apply_deposited(at(S.BATCHED), "B-2", NOW).outcome is Outcome.UNCHANGED
    for status in (S.PENDING, S.ACCEPTED, S.REJECTED, S.DEPOSITED):
        assert apply_deposited(at(status), "B-1", NOW).outcome is Outcome.UNCHANGED, status


# -- CDC report -----------------------------------------------------------------------------


def report(record: Record, accepted: bool, batch: str | None = "B-1", **kw: Any) -> Change:
    message = None if accepted else "idTechnique inconnu"
    return apply_report(
        record,
        accepted=accepted,
        message=message,
        report_batch=batch,
        now=NOW,
        label="r.xml",
        **kw,
    )


@pytest.mark.parametrize("status", [S.BATCHED, S.DEPOSITED])
def test_a_report_accepts_or_rejects_a_record_awaiting_it(status: S) -> None:
    accepted = changed(report(at(status), True))
    assert accepted.status is S.ACCEPTED and not accepted.outstanding
    rejected = report(at(status), False)
    record = changed(rejected)
    assert record.status is S.REJECTED and record.outstanding
    assert record.cdc_message == "idTechnique inconnu"
    assert rejected.history is not None and rejected.history.report == "r.xml"


def test_a_later_report_may_accept_a_rejected_record() -> None:
    assert changed(report(at(S.REJECTED), True)).status is S.ACCEPTED


def test_a_report_changes_nothing_where_it_has_nothing_to_say() -> None:
    assert report(at(S.ACCEPTED), True).outcome is Outcome.UNCHANGED
    assert report(at(S.ACCEPTED), False).outcome is Outcome.UNCHANGED
    assert report(at(S.REJECTED), False).outcome is Outcome.UNCHANGED
    assert report(at(S.PENDING), True, batch=None).outcome is Outcome.UNCHANGED
    assert report(at(S.BATCHED), True, batch="B-OLD").outcome is Outcome.UNCHANGED


def test_a_report_without_a_known_batch_applies_by_id() -> None:
    assert changed(report(at(S.DEPOSITED), True, batch=None)).status is S.ACCEPTED


def test_a_record_revoked_in_flight_is_withdrawn_when_rejected() -> None:
    flagged = at(S.DEPOSITED, revocation_pending=True)
    record = changed(report(flagged, False))
    assert record.status is S.WITHDRAWN and not record.revocation_pending
    assert not record.outstanding


def test_a_record_revoked_in_flight_stays_flagged_when_accepted() -> None:
    flagged = at(S.DEPOSITED, revocation_pending=True)
    record = changed(report(flagged, True))
    assert record.status is S.ACCEPTED and record.revocation_pending and record.outstanding


def test_a_whole_file_rejection_touches_only_records_awaiting_a_report() -> None:
    assert changed(report(at(S.DEPOSITED), False, whole_file=True)).status is S.REJECTED
    assert report(at(S.REJECTED), True, whole_file=True).outcome is Outcome.UNCHANGED
    assert report(at(S.ACCEPTED), False, whole_file=True).outcome is Outcome.UNCHANGED


# -- retry ----------------------------------------------------------------------------------


def test_a_retry_requeues_a_rejected_record() -> None:
    change = apply_retry(at(S.REJECTED), NOW)
    record = changed(change)
    assert record.status is S.PENDING and record.batch_id is None
    assert record.pending_since == NOW
    assert change.history is not None and change.history.reason == "retried by the operator"


@pytest.mark.parametrize("status", [s for s in S if s is not S.REJECTED])
def test_a_retry_of_anything_but_a_rejected_record_is_refused(status: S) -> None:
    change = apply_retry(at(status), NOW)
    assert change.outcome is Outcome.REFUSED and not change.changed
    assert f"is {status.value}" in change.errors[0].message
