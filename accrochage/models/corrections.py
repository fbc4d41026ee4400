"""Correction requests (décret 2024-1236, CONTRACT §9): pure values and their rules.

A request from the CDC or a holder must be answered within 3 months of the day it was
received, with corrected data or a reason why it is unfounded. Its deadline follows the same
month arithmetic as a record's (`deadline_for`), so 31 January gives 30 April. The store keeps
the requests; the rules of opening and answering live here, where they can be tested alone.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from accrochage.errors import Conflict, FieldError, NotFound
from accrochage.models.deadline import days_left, deadline_for, paris_day
from accrochage.models.vocabulary import RequestSource, RequestStatus

ID_PREFIX = "CR-"
ID_HEX = 12
MAX_NOTE = 2000
MAX_ANSWER = 2000


class AnswerKind(StrEnum):
    """How a request was closed: the data was corrected, or the request was unfounded."""

    UNFOUNDED = "unfounded"
    CORRECTED = "corrected"
    CANCELLED = "cancelled"
    """Entered by mistake: no one asked it (the text says what was meant)."""


class RequestNotFound(NotFound):
    """No correction request has this id."""


class RequestClosed(Conflict):
    """The request was already answered, corrected or cancelled: a request is closed once."""

    code = "request_closed"


@dataclass(frozen=True, slots=True)
class CorrectionRequest:
    request_id: str
    record_id: str
    certifier: str | None
    """The certifier the operator named; None: the record's, once the record is known."""
    source: RequestSource
    received_on: date
    """The day the request reached the certifier: the law counts from it."""
    deadline: date
    status: RequestStatus
    note: str | None
    """Operator text (may mention a person): stored and shown, never logged."""
    opened_at: datetime
    answer_kind: AnswerKind | None = None
    answer_text: str | None = None
    answered_at: datetime | None = None
    held_hash: str | None = None
    """The hash of the content the CDC held for the record when the request was opened (None:
    it held none, or the request came first): an acceptance of that same content again (a
    correction taken back, then sent again) answers nothing, and closes nothing."""

    @property
    def is_open(self) -> bool:
        return self.status is RequestStatus.OPEN

    def days_left(self, today: date) -> int:
        return days_left(self.deadline, today)


@dataclass(frozen=True, slots=True)
class RequestClosure:
    """A CDC acceptance that may close requests on a record (the feedback loop builds it).

    `version`: the content version the CDC accepted; a request closes only if that content
    was stored at or after the request was opened and is not the content the CDC held then
    (`CorrectionRequest.held_hash`). None: the acceptance of the suppression
    of a revoked record, which closes any open request on it.
    """

    record_id: str
    version: int | None


def new_request_id() -> str:
    """Short enough to type, unique enough never to repeat (48 random bits)."""
    return ID_PREFIX + uuid.uuid4().hex[:ID_HEX].upper()


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
"""Control characters an operator's text has no use for (tabs and line breaks are kept)."""


def storable_text(field: str, text: str) -> str:
    """`text`, or `FieldError` when it cannot be stored as UTF-8 (a lone surrogate, such as a
    JSON `\\ud800`) or holds a control character. The text itself is never quoted back."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise FieldError(
            field,
            f"{field} holds a character that cannot be stored (a lone surrogate, such as "
            "\\ud800): send it as valid Unicode text",
        ) from None
    if _CONTROL.search(text):
        raise FieldError(field, f"{field} holds a control character (U+0000 to U+001F): remove it")
    return _one_writing(text)


def _one_writing(text: str) -> str:
    """One writing of one text (an accent composed or written apart, as macOS writes it): a
    request or an answer entered twice is known as one, as events' names are compared."""
    return unicodedata.normalize("NFC", text)


OVERSEAS_AHEAD = timedelta(days=1)
"""How far a request's day may be ahead of Paris's: in La Réunion or Mayotte (Paris + 2 or 3
hours) it is tomorrow already late each evening, in New Caledonia (Paris + 10) from 14:00. An
operator there entering the day a request arrived was refused as "in the future"."""


def ahead_of_paris(request: CorrectionRequest) -> bool:
    """Whether the request's day is after the Paris day it was opened on: the day overseas, or
    a mistyped one (its deadline, a day late, counts from it)."""
    return request.received_on > paris_day(request.opened_at)


def open_request(
    record_id: str,
    received_on: date,
    opened_at: datetime,
    *,
    source: RequestSource = RequestSource.CDC,
    certifier: str | None = None,
    note: str | None = None,
    request_id: str | None = None,
) -> CorrectionRequest:
    """A new open request; its deadline is received_on + 3 months (the records' rule)."""
    record_id = record_id.strip()
    if not record_id or len(record_id) > 255 or not record_id.isprintable():
        raise FieldError(
            "record_id",
            "record_id must be the record's id (its idTechnique): 1 to 255 printable characters",
        )
    if received_on > paris_day(opened_at) + OVERSEAS_AHEAD:
        raise FieldError(
            "received_on",
            f"received_on {received_on} is in the future, even overseas: give the day the "
            "request arrived",
        )
    note = storable_text("note", (note or "").strip()) or None
    if note is not None and len(note) > MAX_NOTE:
        raise FieldError("note", f"note is longer than {MAX_NOTE} characters: shorten it")
    certifier = (certifier or "").strip() or None
    return CorrectionRequest(
        request_id=request_id or new_request_id(),
        record_id=record_id,
        certifier=certifier,
        source=RequestSource(source),
        received_on=received_on,
        deadline=deadline_for(received_on),
        status=RequestStatus.OPEN,
        note=note,
        opened_at=opened_at,
    )


DECLARED_CORRECTED = "corrected data sent (declared by the operator)"


def answer(
    request: CorrectionRequest, kind: AnswerKind, text: str | None, at: datetime
) -> CorrectionRequest:
    """Close a request by hand: `unfounded` needs the reason, `cancelled` what was meant; a
    closed request stays closed.
    The same answer given again (a retry whose answer was lost) is that answer, unchanged."""
    if not request.is_open and _same_answer(request, kind, text):
        return request
    if not request.is_open:
        raise RequestClosed(
            f"correction request {request.request_id} is already {request.status} "
            f"({request.answer_kind or 'closed'} on {_day(request.answered_at)}): "
            "a request is answered once; open a new one if the CDC or the holder asks again"
        )
    field = kind.value if kind is not AnswerKind.CORRECTED else AnswerKind.UNFOUNDED.value
    text = storable_text(field, (text or "").strip())
    if kind is not AnswerKind.CORRECTED and not text:
        raise FieldError(field, _TEXT_NEEDED[kind])
    if len(text) > MAX_ANSWER:
        raise FieldError(field, f"the answer is longer than {MAX_ANSWER} characters: shorten it")
    status = _STATUS_OF[kind]
    return replace(
        request,
        status=status,
        answer_kind=kind,
        answer_text=text or DECLARED_CORRECTED,
        answered_at=at,
    )


_TEXT_NEEDED = {
    AnswerKind.UNFOUNDED: "an unfounded answer needs its reason: say why the data is right as sent",
    AnswerKind.CANCELLED: "a cancellation needs its reason: say what was meant (the right "
    "record id or day), so that the request entered by mistake explains itself",
}
_STATUS_OF = {
    AnswerKind.UNFOUNDED: RequestStatus.ANSWERED,
    AnswerKind.CORRECTED: RequestStatus.CORRECTED,
    AnswerKind.CANCELLED: RequestStatus.CANCELLED,
}


def _same_answer(request: CorrectionRequest, kind: AnswerKind, text: str | None) -> bool:
    """Whether `request` was closed by hand with this very answer."""
    if request.answer_kind is not kind or request.answered_at is None:
        return False
    return request.answer_text == (_one_writing((text or "").strip()) or DECLARED_CORRECTED)


def corrected_by(
    request: CorrectionRequest, label: str, at: datetime, *, withdrawn: bool = False
) -> CorrectionRequest:
    """Closed by the CDC's acceptance of corrected data (`withdrawn`: of a revoked record's
    removal, which the history must not call a correction)."""
    done = "record withdrawn from the CDC" if withdrawn else "corrected data accepted by the CDC"
    return replace(
        request,
        status=RequestStatus.CORRECTED,
        answer_kind=AnswerKind.CORRECTED,
        answer_text=f"{done} ({label})",
        answered_at=at,
    )


def stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def to_json(
    request: CorrectionRequest, certifier: str | None, as_of: date, margin_days: int
) -> dict[str, Any]:
    """CONTRACT §9's object, plus `note`, `opened_at`, `at_risk` and `overdue` (as records:
    at risk is open and due within the margin, not past it; overdue is open and past it;
    `days_left` is null once the request is closed: no deadline runs).
    `certifier`: the record's, when the record is known (the request is owed by it), else
    the one the request was entered with."""
    left = request.days_left(as_of)
    answered = None
    if request.answer_kind is not None:
        at = None if request.answered_at is None else stamp(request.answered_at)
        answered = {"kind": request.answer_kind.value, "text": request.answer_text, "at": at}
    return {
        "request_id": request.request_id,
        "record_id": request.record_id,
        "certifier": certifier or request.certifier,
        "source": request.source.value,
        "received_on": request.received_on.isoformat(),
        "deadline": request.deadline.isoformat(),
        "days_left": left if request.is_open else None,
        "status": request.status.value,
        "answer": answered,
        "at_risk": request.is_open and 0 <= left <= margin_days,
        "overdue": request.is_open and left < 0,
        "note": request.note,
        "opened_at": stamp(request.opened_at),
    }


def _day(moment: datetime | None) -> str:
    return moment.date().isoformat() if moment is not None else "an earlier day"
