"""Correction requests as pure values (models/corrections.py): deadline, answers, the JSON."""

from __future__ import annotations

import re
from datetime import date, datetime

import pytest

from accrochage.errors import BadParameter, Conflict
from accrochage.models.corrections import (
    AnswerKind,
    RequestClosed,
    answer,
    corrected_by,
    new_request_id,
    open_request,
    to_json,
)
from accrochage.models.deadline import PARIS
from accrochage.models.vocabulary import RequestSource, RequestStatus
from tests.test_correction_requests import CONTRACT_KEYS

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=PARIS)


@pytest.mark.parametrize(
    ("received", "deadline"),
    [
        (date(2026, 1, 31), date(2026, 4, 30)),
        (date(2026, 11, 30), date(2027, 2, 28)),
        (date(2027, 11, 30), date(2028, 2, 29)),
        (date(2026, 9, 10), date(2026, 12, 10)),
    ],
)
def test_the_deadline_is_three_calendar_months_after_the_request(
    received: date, deadline: date
) -> None:
    opened = open_request("PX-1", received, NOW.replace(year=2028))
    assert opened.deadline == deadline
    assert opened.status is RequestStatus.OPEN and opened.source is RequestSource.CDC


def test_ids_are_short_readable_and_unique() -> None:
    ids = {new_request_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(re.fullmatch(r"CR-[0-9A-F]{12}", i) for i in ids)


def test_opening_refuses_a_future_day_and_an_empty_record_id() -> None:
    """A day after Paris's is the day overseas (La Réunion, New Caledonia): accepted, with a
    warning where the request is opened (`streams/corrections.Opened.warnings`)."""
    assert open_request("PX-1", date(2026, 12, 2), NOW).received_on == date(2026, 12, 2)
    with pytest.raises(BadParameter, match="future, even overseas"):
        open_request("PX-1", date(2026, 12, 3), NOW)
    with pytest.raises(BadParameter, match="record_id"):
        open_request("  ", date(2026, 11, 2), NOW)
    blank = open_request(" PX-1 ", date(2026, 11, 2), NOW, note="  ", certifier="")
    assert (blank.record_id, blank.note, blank.certifier) == ("PX-1", None, None)


def test_unfounded_needs_its_reason_and_a_closed_request_stays_closed() -> None:
    opened = open_request("PX-1", date(2026, 11, 2), NOW, source=RequestSource.HOLDER)
    with pytest.raises(BadParameter, match="reason"):
        answer(opened, AnswerKind.UNFOUNDED, "   ", NOW)
    done = answer(opened, AnswerKind.UNFOUNDED, " the diploma says so ", NOW)
    assert done.status is RequestStatus.ANSWERED and done.answer_text == "the diploma says so"
    with pytest.raises(RequestClosed, match="already answered") as refused:
        answer(done, AnswerKind.CORRECTED, None, NOW)
    assert isinstance(refused.value, Conflict) and refused.value.status == 409
    corrected = answer(opened, AnswerKind.CORRECTED, None, NOW)
    assert corrected.status is RequestStatus.CORRECTED and corrected.answer_text


def test_the_json_object_and_its_urgency() -> None:
    opened = open_request("PX-1", date(2026, 9, 10), NOW, note="call back")
    shown = to_json(opened, "pix", date(2026, 12, 1), 14)
    assert list(shown)[:9] == CONTRACT_KEYS
    assert shown["deadline"] == "2026-12-10" and shown["days_left"] == 9
    assert shown["at_risk"] and not shown["overdue"] and shown["certifier"] == "pix"
    late = to_json(opened, None, date(2026, 12, 11), 14)
    assert late["overdue"] and not late["at_risk"] and late["days_left"] == -1
    closed = to_json(corrected_by(opened, "report.xml", NOW), None, date(2026, 12, 11), 14)
    assert not closed["overdue"] and closed["answer"]["kind"] == "corrected"
    assert "report.xml" in closed["answer"]["text"]
