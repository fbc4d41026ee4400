"""Every route of the HTTP API as its OpenAPI description says it: method, path, the answers
and their models, the parameters, who may call it (`api/openapi.py` builds the document)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from accrochage.api import schemas as s
from accrochage.api.params import MAX_PAGE, PAGE
from accrochage.models.deadline import FIRST_DAY, LAST_DAY, MAX_DUE_WITHIN
from accrochage.models.vocabulary import BatchState, CdcReason, RecordOrder, RecordStatus, values


@dataclass(frozen=True)
class Param:
    name: str
    where: str = "query"
    schema: dict[str, Any] = field(default_factory=lambda: {"type": "string"})
    description: str = ""
    repeat: bool = False


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    summary: str
    answers: dict[int, Any]
    params: tuple[Param, ...] = ()
    body: bool = False
    who: str = "operator"
    media: str = "application/json"
    request: type[BaseModel] | None = None
    """The body's model, for a route whose body is not events."""


DAY = {"type": "string", "format": "date"}
PAGING = (
    Param(
        "limit",
        schema={"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
        description=f"rows in one page (default {PAGE})",
    ),
    Param("cursor", description="the next_cursor of the previous page, unchanged"),
)
RECORD_FILTERS = (
    Param("certifier", description="a configured certifier key"),
    Param(
        "status",
        schema={"enum": values(RecordStatus)},
        repeat=True,
        description="repeatable; default: outstanding records only",
    ),
    Param("reason", schema={"enum": values(CdcReason)}, description="the CDC message's class"),
    Param("due_within", schema={"type": "integer", "minimum": 0, "maximum": MAX_DUE_WITHIN}),
    Param("overdue", schema={"type": "boolean"}),
    Param(
        "deadline_unknown",
        schema={"type": "boolean"},
        description="only outstanding records whose delivery date cannot be read (deadline "
        "unknown, counted at risk)",
    ),
    Param("as_of", schema=DAY, description=f"{FIRST_DAY} to {LAST_DAY}; default today (Paris)"),
    Param(
        "order",
        schema={"enum": values(RecordOrder), "default": RecordOrder.DEADLINE.value},
        description="deadline: the nearest first, to read (a record whose deadline changes "
        "between two pages may be missed or repeated); record_id: to walk every record once "
        "whatever changes meanwhile (a synchronisation)",
    ),
    *PAGING,
)
ROUTES = (
    Route(
        "post",
        "/events",
        "Send one event (or an array); answered after the commit",
        {
            201: s.EventAnswer,
            200: s.EventAnswer | list[s.EventAnswerInArray],
            403: s.EventAnswer | s.ErrorBody,
            422: s.EventAnswer | s.ErrorBody,
            500: s.EventAnswer | s.ErrorBody,
        },
        body=True,
        who="ingest",
    ),
    Route(
        "post",
        "/check",
        "Validate one event (or an array) without storing it",
        {200: s.CheckAnswer | list[s.CheckAnswer]},
        body=True,
        who="ingest",
    ),
    Route(
        "get",
        "/records",
        "Records, the nearest deadline first or by record id (outstanding by default); to a "
        "token scoped to certifiers, theirs only, without content (PlatformRecordsPage)",
        {200: s.RecordsPage | s.PlatformRecordsPage},
        RECORD_FILTERS,
    ),
    Route(
        "get",
        "/records/{record_id}",
        "One record with its content, batches and history; to a token scoped to certifiers, "
        "one of theirs, its fate without content (PlatformRecord)",
        {200: s.RecordDetail | s.PlatformRecord, 404: s.ErrorBody},
        (Param("record_id", "path"), Param("as_of", schema=DAY)),
    ),
    Route(
        "get",
        "/changes",
        "Every change of the records (a history entry), in the order stored, after `after`: "
        "a platform keeps `next_after` and asks again (at once while `more`); to a token "
        "scoped to certifiers, their records' changes only, without free text "
        "(PlatformChangesPage). 409 changes_restarted: the state was restored from a backup "
        "since `after` was given; read the records again, then the changes after the "
        "error's details.after",
        {200: s.ChangesPage | s.PlatformChangesPage, 409: s.ErrorBody},
        (
            Param(
                "after",
                schema={"type": "string", "pattern": "^[0-9a-f]{8}\\.[0-9]{1,18}$"},
                description="the next_after of an earlier answer, unchanged; left out: from "
                "the first change",
            ),
            Param("certifier", description="only this certifier's records"),
            PAGING[0],
        ),
    ),
    Route(
        "get",
        "/batches",
        "Batches, newest first",
        {200: s.BatchList},
        (
            Param("state", schema={"enum": values(BatchState)}),
            Param("certifier"),
            *PAGING,
        ),
    ),
    Route(
        "get",
        "/batches/{batch_id}",
        "One batch with its members",
        {200: s.BatchDetail, 404: s.ErrorBody},
        (Param("batch_id", "path"),),
    ),
    Route(
        "get",
        "/summary",
        "Counts per certifier and status, at risk, overdue",
        {200: s.Summary},
        (Param("as_of", schema=DAY),),
    ),
    Route(
        "get",
        "/unusable",
        "Events without a usable record, newest first; not those the operator dismissed",
        {200: s.UnusableList},
        (
            Param(
                "all",
                schema={"type": "boolean"},
                description="those dismissed too (`accrochage dismiss-unusable`)",
            ),
            Param("certifier", description="those naming this certifier (its key) only"),
            Param(
                "sender",
                description="those this HTTP sender sent only: 'api.ingest_tokens #N' (or "
                "'#N'), as the service's log names a platform's token, or 'operator'",
            ),
            *PAGING,
        ),
    ),
    Route(
        "get",
        "/health",
        "ok, or degraded (503) while the storage refuses writes",
        # 503 is also the error shape: too_many_connections refuses a connection before
        # its request is read (`api/connections.py`), /health's as any other.
        {200: s.Health, 503: s.Health | s.ErrorBody},
        who="open",
    ),
    Route(
        "post",
        "/correction-requests",
        "Open a correction request (deadline: received_on + 3 months); 200 and the request "
        "open already when the same one is sent again",
        {201: s.CorrectionRequestOut, 200: s.CorrectionRequestOut, 422: s.ErrorBody},
        request=s.CorrectionRequestIn,
    ),
    Route(
        "get",
        "/correction-requests",
        "Correction requests, open ones first, the nearest deadline first",
        {200: s.CorrectionRequestList},
        (
            Param("open", schema={"type": "boolean"}, description="only the open requests"),
            Param("certifier", description="only those this certifier owes (its key)"),
            Param("as_of", schema=DAY, description="default today (Paris)"),
            *PAGING,
        ),
    ),
    Route(
        "post",
        "/correction-requests/{request_id}/answer",
        "Close a correction request by hand: unfounded (with why), corrected or cancelled",
        {200: s.CorrectionRequestOut, 404: s.ErrorBody, 409: s.ErrorBody, 422: s.ErrorBody},
        (Param("request_id", "path"),),
        request=s.CorrectionAnswerIn,
    ),
    Route(
        "get",
        "/openapi.json",
        "This description (also in the project: docs/openapi.json)",
        {200: dict[str, Any]},
    ),
    Route("get", "/metrics", "Prometheus metrics (text format)", {200: str}, media="text/plain"),
    Route("get", "/ui", "The dashboard (HTML, refreshing itself)", {200: str}, media="text/html"),
    Route("get", "/", "Redirects to /ui", {302: str}, media="text/plain"),
)
