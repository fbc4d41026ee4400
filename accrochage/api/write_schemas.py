"""What the write routes take and answer, on the base every answer shares.

`Answer` (extra keys refused), a problem and the error body every route may answer; the
answers of `POST /events` and `POST /check`; a correction request's body, its answer's, and
the request as it is answered (CONTRACT §9). `api/schemas.py` holds the read routes' answers
and names these again: `GET /openapi.json` describes every model it names.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from accrochage.models.vocabulary import RecordStatus, RequestSource, RequestStatus


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProblemOut(Answer):
    field: str
    message: str


class ErrorDetail(Answer):
    code: str
    message: str
    details: Any


class ErrorBody(Answer):
    """Every error, whatever raised it."""

    error: ErrorDetail


class EventAnswer(Answer):
    """The answer to one event: 201 stored, 200 unchanged, 422 invalid (still kept) or unusable,
    403 refused to a scoped ingest token (its record untouched, the event kept as unusable)."""

    record_id: str | None
    status: RecordStatus | None
    """The record's status after the event; null when it touched no record."""
    outcome: Literal[
        "created",
        "updated",
        "unchanged",
        "correction_stored",
        "withdrawn",
        "revocation_flagged",
        "refused",
        "unusable",
        "forbidden",
        "failed",
    ]
    errors: list[ProblemOut] = []
    warnings: list[ProblemOut]


class EventAnswerInArray(EventAnswer):
    http_status: int


class CheckAnswer(Answer):
    record_id: str | None
    valid: bool
    errors: list[ProblemOut]
    warnings: list[ProblemOut]


class RequestAnswerOut(Answer):
    kind: str
    """`unfounded`, `corrected` or `cancelled` (entered by mistake)."""
    text: str | None
    at: str | None


class CorrectionRequestOut(Answer):
    """A correction request (CONTRACT §9); `at_risk` is absent from a record's detail."""

    request_id: str
    record_id: str
    certifier: str | None
    source: RequestSource
    received_on: str
    deadline: str
    days_left: int | None
    """Null once the request is closed: no deadline runs."""
    status: RequestStatus
    answer: RequestAnswerOut | None
    at_risk: bool | None = None
    overdue: bool
    note: str | None
    opened_at: str
    warnings: list[ProblemOut] | None = None
    """In the answer to `POST /correction-requests` only: what looks mistyped (a record the
    tracker does not know, a day before its delivery); the request is opened all the same."""


class CorrectionRequestIn(BaseModel):
    """`POST /correction-requests`: `received_on` is the day the request arrived."""

    model_config = ConfigDict(extra="forbid")

    record_id: str
    received_on: str
    source: Literal["cdc", "holder"] = "cdc"
    certifier: str | None = None
    note: str | None = None


class CorrectionAnswerIn(BaseModel):
    """`POST /correction-requests/{id}/answer`: `{"unfounded": TEXT}`, `{"corrected": true}`
    or `{"cancelled": TEXT}` (entered by mistake: what was meant)."""

    model_config = ConfigDict(extra="forbid")

    unfounded: str | None = None
    corrected: bool | None = None
    cancelled: str | None = None
