"""The API's requests and answers as pydantic models: the source of `GET /openapi.json`.

Each answer of the service is checked against its model in the tests (extra keys refused),
so the description cannot drift from what the routes return.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from accrochage.models.vocabulary import SupportWork


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
    status: str | None
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


class CorrectionRequestRef(Answer):
    """A record's open correction request of earliest deadline (CONTRACT §9)."""

    request_id: str
    deadline: str
    days_left: int
    status: str


class PlatformRow(Answer):
    """A record as a platform's scoped token reads it (`api/platform_view.py`): its fate, no
    personal data, no free text."""

    record_id: str
    certifier: str | None
    status: str
    delivered_on: str | None
    deadline: str | None
    days_left: int | None
    batch_id: str | None
    errors: list[ProblemOut]
    warnings: list[ProblemOut]
    correction_pending: bool
    correction_errors: list[ProblemOut]
    """The stored correction's errors: fix them in a new corrected event (or load newer
    reference data and `revalidate`); until then it is not sent."""
    revocation_pending: bool
    cdc_reason: str | None
    suppression_rejected: bool
    """The CDC refused the record's SUPPRESSION: it still holds the passage (retry)."""
    identity_procedure: bool
    """Rejected twice for identity: gather the evidence for the CDC's procedure."""


class RecordRow(PlatformRow):
    """A record as the operator reads it: a platform's row and what only the operator sees."""

    cdc_message: str | None
    correction_request: CorrectionRequestRef | None
    cdc_held_as: str | None
    """The idTechnique the CDC holds this certification under, when its acceptance named
    another one: its corrections and withdrawals go through the CDC's support."""


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
    next_cursor: str | None


class BatchDetail(BatchRow):
    members: list[str]


class HistoryRow(Answer):
    at: str
    from_status: str | None
    to_status: str
    reason: str
    batch_id: str | None
    report: str | None
    event_id: str | None


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
    source: str
    received_on: str
    deadline: str
    days_left: int | None
    """Null once the request is closed: no deadline runs."""
    status: str
    answer: RequestAnswerOut | None
    at_risk: bool | None = None
    overdue: bool
    note: str | None
    opened_at: str


class CorrectionRequestList(Answer):
    correction_requests: list[CorrectionRequestOut]
    next_cursor: str | None


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


class RecordDetail(RecordRow):
    version: int
    accepted_batch_id: str | None
    """The batch whose passage the CDC accepted (null until one was)."""
    correction_version: int | None
    correction_valid: bool | None
    """Whether the stored correction passed validation (null without one): only a valid one
    replaces what the CDC holds."""
    excluded_from: str | None
    content: dict[str, Any] | None
    correction: dict[str, Any] | None
    batches: list[BatchRow]
    batch: BatchRow | None
    history: list[HistoryRow]
    correction_requests: list[CorrectionRequestOut]


class PlatformRecordsPage(Answer):
    records: list[PlatformRow]
    next_cursor: str | None


class PlatformHistoryRow(Answer):
    at: str
    from_status: str | None
    to_status: str
    batch_id: str | None
    event_id: str | None


class PlatformRecord(PlatformRow):
    accepted_batch_id: str | None
    version: int
    history: list[PlatformHistoryRow]


class NextDeadline(Answer):
    record_id: str
    certifier: str | None
    deadline: str
    days_left: int
    urgency: str


class RequestCounts(Answer):
    open: int
    at_risk: int
    overdue: int


class RequestSummary(RequestCounts):
    by_certifier: dict[str, RequestCounts]


class LeftOutBatch(Answer):
    batch_id: str
    certifier: str
    file_name: str
    records: int


class HeldElsewhere(Answer):
    record_id: str
    certifier: str | None
    cdc_held_as: str
    """The idTechnique the CDC holds the certification under."""
    waits_for: SupportWork


class Summary(Answer):
    model_config = ConfigDict(extra="allow")

    as_of: str
    records: int
    outstanding: int
    by_status: dict[str, int]
    by_certifier: dict[str, dict[str, int]]
    at_risk: int
    deadline_unknown: int
    """Outstanding records counted at risk because their delivery date cannot be read."""
    overdue: int
    at_risk_by_certifier: dict[str, int]
    """`at_risk` per certifier (`?`: records naming none); certifiers with none left out."""
    overdue_by_certifier: dict[str, int]
    """`overdue` per certifier, the same way."""
    deadline_margin_days: int
    next_deadlines: list[NextDeadline]
    unusable_events: int
    left_out: list[LeftOutBatch]
    """Reported batches whose processed report did not mention some of their records."""
    held_elsewhere: list[HeldElsewhere]
    """Accepted records the CDC holds under another idTechnique that wait for a correction
    or withdrawal: no SUPPRESSION is cut for them; the CDC's support applies it."""
    batches: dict[str, int]
    refdata_warnings: list[str]
    correction_requests: RequestSummary


class UnusableRow(Answer):
    id: int
    received_at: str
    source: str | None
    certifier: str | None
    """The certifier the event names, when it names one readable."""
    event_id: str | None
    record_id: str | None
    raw: str
    errors: list[ProblemOut]
    dismissed_at: str | None
    dismissed_note: str | None
    forgotten_at: str | None
    """When its raw input was forgotten (`raw` is empty since): dismissed for longer than
    `state.forget_dismissed_after`."""


class UnusableList(Answer):
    events: list[UnusableRow]
    next_cursor: str | None


class Health(Answer):
    status: str
    reason: str | None = None
    message: str | None = None
