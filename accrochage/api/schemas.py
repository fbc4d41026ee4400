"""The API's requests and answers as pydantic models: the source of `GET /openapi.json`.

Each answer of the service is checked against its model in the tests (extra keys refused),
so the description cannot drift from what the routes return.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict

from accrochage.api.write_schemas import Answer as Answer
from accrochage.api.write_schemas import CheckAnswer as CheckAnswer
from accrochage.api.write_schemas import CorrectionAnswerIn as CorrectionAnswerIn
from accrochage.api.write_schemas import CorrectionRequestIn as CorrectionRequestIn
from accrochage.api.write_schemas import CorrectionRequestOut as CorrectionRequestOut
from accrochage.api.write_schemas import ErrorBody as ErrorBody
from accrochage.api.write_schemas import ErrorDetail as ErrorDetail
from accrochage.api.write_schemas import EventAnswer as EventAnswer
from accrochage.api.write_schemas import EventAnswerInArray as EventAnswerInArray
from accrochage.api.write_schemas import ProblemOut as ProblemOut
from accrochage.api.write_schemas import RequestAnswerOut as RequestAnswerOut
from accrochage.models.deadline import Urgency
from accrochage.models.vocabulary import (
    BatchState,
    CdcAction,
    CdcReason,
    RecordStatus,
    RequestStatus,
    SchemaVersion,
    SupportWork,
)


class CorrectionRequestRef(Answer):
    """A record's open correction request of earliest deadline (CONTRACT §9)."""

    request_id: str
    deadline: str
    days_left: int
    status: RequestStatus


class PlatformRow(Answer):
    """A record as a platform's scoped token reads it (`api/platform_view.py`): its fate, no
    personal data, no free text."""

    record_id: str
    certifier: str | None
    status: RecordStatus
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
    cdc_reason: CdcReason | None
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


class BatchArchived(Answer):
    archived_at: str
    to: str | None
    """The folder holding the file now; null: deleted."""


class BatchRow(Answer):
    batch_id: str
    certifier: str
    action: CdcAction
    state: BatchState
    file: str | None
    file_name: str
    schema_version: SchemaVersion
    passages: int
    bytes: int | None
    sha256: str | None
    created_at: str
    written_at: str | None
    deposited_at: str | None
    error: str | None
    report: BatchReport | None
    archived: BatchArchived | None
    """Its file archived away from the outbox (`accrochage archived`); null: not."""


class BatchList(Answer):
    batches: list[BatchRow]
    next_cursor: str | None


class BatchDetail(BatchRow):
    members: list[str]


class HistoryRow(Answer):
    at: str
    from_status: RecordStatus | None
    to_status: RecordStatus
    reason: str
    batch_id: str | None
    report: str | None
    event_id: str | None


class CorrectionRequestList(Answer):
    correction_requests: list[CorrectionRequestOut]
    next_cursor: str | None


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
    from_status: RecordStatus | None
    to_status: RecordStatus
    batch_id: str | None
    event_id: str | None


class Change(HistoryRow):
    """A record's change (`GET /changes`): its history entry, with the record it is of."""

    seq: int
    """The change's place in the order stored: send the last one read as `after`."""
    record_id: str
    certifier: str | None


class ChangesPage(Answer):
    changes: list[Change]
    next_after: str
    """What to send as `after` next time, unchanged: the last change given, or as far as
    this request looked (changes of other certifiers skipped), in this state's numbering."""
    more: bool
    """Whether changes were stored after `next_after` already: ask again at once."""


class PlatformChange(PlatformHistoryRow):
    seq: int
    record_id: str
    certifier: str | None


class PlatformChangesPage(Answer):
    changes: list[PlatformChange]
    next_after: str
    more: bool


class PlatformRecord(PlatformRow):
    accepted_batch_id: str | None
    version: int
    history: list[PlatformHistoryRow]


class NextDeadline(Answer):
    record_id: str
    certifier: str | None
    deadline: str
    days_left: int
    urgency: Urgency


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
    status: Literal["ok", "degraded"]
    reason: str | None = None
    message: str | None = None
