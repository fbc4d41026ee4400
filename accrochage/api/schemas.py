"""The API's requests and answers as pydantic models: the source of `GET /openapi.json`.

Each answer of the service is checked against its model in the tests (extra keys refused),
so the description cannot drift from what the routes return.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


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
    """The answer to one event: 201 stored, 200 unchanged, 422 invalid (still kept) or unusable."""

    record_id: str | None
    status: str | None
    outcome: str
    errors: list[ProblemOut] = []
    warnings: list[ProblemOut]


class EventAnswerInArray(EventAnswer):
    http_status: int


class CheckAnswer(Answer):
    record_id: str | None
    valid: bool
    errors: list[ProblemOut]
    warnings: list[ProblemOut]


class RecordRow(Answer):
    certifier: str | None
    record_id: str
    status: str
    delivered_on: str | None
    deadline: str | None
    days_left: int | None
    batch_id: str | None
    errors: list[ProblemOut]
    warnings: list[ProblemOut]
    correction_pending: bool
    revocation_pending: bool
    cdc_message: str | None
    cdc_reason: str | None


class RecordsPage(Answer):
    records: list[RecordRow]
    next_cursor: str | None


class BatchReport(Answer):
    accepted: int
    rejected: int
    imported_at: str | None
    file: str | None


class BatchRow(Answer):
    batch_id: str
    certifier: str
    action: str
    state: str
    file: str | None
    file_name: str
    schema_version: str
    passages: int
    bytes: int | None
    sha256: str | None
    created_at: str
    written_at: str | None
    deposited_at: str | None
    error: str | None
    report: BatchReport | None


class BatchList(Answer):
    batches: list[BatchRow]


class BatchDetail(BatchRow):
    members: list[str]


class HistoryRow(Answer):
    at: str
    from_status: str | None
    to_status: str
    reason: str
    batch_id: str | None
    report: str | None


class RecordDetail(RecordRow):
    version: int
    correction_version: int | None
    excluded_from: str | None
    content: dict[str, Any] | None
    correction: dict[str, Any] | None
    batches: list[BatchRow]
    batch: BatchRow | None
    history: list[HistoryRow]


class NextDeadline(Answer):
    record_id: str
    certifier: str | None
    deadline: str
    days_left: int
    urgency: str


class Summary(Answer):
    model_config = ConfigDict(extra="allow")

    as_of: str
    records: int
    outstanding: int
    by_status: dict[str, int]
    by_certifier: dict[str, dict[str, int]]
    at_risk: int
    overdue: int
    deadline_margin_days: int
    next_deadlines: list[NextDeadline]
    unusable_events: int
    batches: dict[str, int]
    refdata_warnings: list[str]


class UnusableRow(Answer):
    id: int
    received_at: str
    source: str | None
    event_id: str | None
    record_id: str | None
    raw: str
    errors: list[ProblemOut]


class UnusableList(Answer):
    events: list[UnusableRow]


class Health(Answer):
    status: str
    reason: str | None = None
    message: str | None = None
