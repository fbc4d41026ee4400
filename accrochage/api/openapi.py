"""`GET /openapi.json`: an OpenAPI 3.1 description of every route, generated from the models.

The events' schema comes from the event models (`models/event.py`), the answers' from
`api/schemas.py`; `accrochage openapi -o docs/openapi.json` saves it, and a test keeps that
file equal to what the models generate.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from accrochage.api import schemas as s
from accrochage.api.params import MAX_PAGE, PAGE
from accrochage.models.deadline import FIRST_DAY, LAST_DAY, MAX_DUE_WITHIN
from accrochage.models.event import DeliveredEvent, RevokedEvent
from accrochage.models.vocabulary import BatchState, CdcReason, RecordStatus, values

REF = "#/components/schemas/{model}"
ERRORS = (400, 401, 403, 405, 413, 415, 421, 500, 503, 507)
AUTH_ERRORS = (401, 403, 421)
"""Not on an open route: a token's, a foreign site's (403) or a foreign Host's (421)."""
ERROR_HEADERS: dict[int, dict[str, str]] = {
    401: {"WWW-Authenticate": 'How to authenticate: Basic realm="accrochage" (or a Bearer token).'},
    405: {"Allow": "The methods the route takes."},
    503: {
        "Retry-After": "Seconds to wait before sending again: on state_busy (another process "
        "holds the state) and too_many_connections; none on writer_unavailable, which no "
        "retry mends until the service is restarted."
    },
}
"""Headers an error answer carries (`api/auth.py`, `api/errors.py`, `api/connections.py`)."""
BODY_TIMEOUT = 408
"""A request with a body may also end so (`api.body_timeout`)."""


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
            403: s.EventAnswer,
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
        "Records, the nearest deadline first (outstanding by default); to a token scoped to "
        "certifiers, theirs only, without content (PlatformRecordsPage)",
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
            *PAGING,
        ),
    ),
    Route(
        "get",
        "/health",
        "ok, or degraded (503) while the storage refuses writes",
        {200: s.Health, 503: s.Health},
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
        "Close a correction request by hand: unfounded (with why) or corrected",
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


def _errors_of(route: Route) -> list[int]:
    """The error answers a route may give: no 401/403 on an open one, 408 with a body."""
    statuses = [s for s in ERRORS if not (route.who == "open" and s in AUTH_ERRORS)]
    if route.method == "post":
        statuses.append(BODY_TIMEOUT)
    return sorted(statuses)


def _headers(status: int) -> dict[str, Any]:
    described = ERROR_HEADERS.get(status)
    if described is None:
        return {}
    return {
        "headers": {
            name: {"description": text, "schema": {"type": "string"}}
            for name, text in described.items()
        }
    }


def _security(who: str) -> list[dict[str, list[str]]]:
    if who == "open":
        return []
    return [{"bearer": []}, {"basic": []}]


def _param(param: Param) -> dict[str, Any]:
    schema = {"type": "array", "items": param.schema} if param.repeat else param.schema
    return {
        "name": param.name,
        "in": param.where,
        "required": param.where == "path",
        "schema": schema,
        **({"description": param.description} if param.description else {}),
        **({"explode": True} if param.repeat else {}),
    }


def _schema_of(answer: Any) -> dict[str, Any]:
    if answer is str:
        return {"type": "string"}
    if isinstance(answer, type) and issubclass(answer, BaseModel):
        return {"$ref": REF.format(model=answer.__name__)}
    origin = getattr(answer, "__origin__", None)
    if origin is list:
        return {"type": "array", "items": _schema_of(answer.__args__[0])}
    if origin is dict:
        return {"type": "object"}
    args = getattr(answer, "__args__", None)
    if args:
        return {"oneOf": [_schema_of(a) for a in args]}
    return {}


def openapi() -> dict[str, Any]:
    models: list[type[BaseModel]] = [
        value
        for value in vars(s).values()
        if isinstance(value, type) and issubclass(value, BaseModel) and value is not BaseModel
    ]
    _, answers = models_json_schema([(m, "serialization") for m in models], ref_template=REF)
    _, events = models_json_schema(
        [(DeliveredEvent, "validation"), (RevokedEvent, "validation")], ref_template=REF
    )
    components = {**answers.get("$defs", {}), **events.get("$defs", {})}
    event = {
        "oneOf": [{"$ref": REF.format(model=m.__name__)} for m in (DeliveredEvent, RevokedEvent)]
    }
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        responses: dict[str, Any] = {}
        for status, answer in route.answers.items():
            responses[str(status)] = {
                "description": _phrase(status),
                "content": {route.media: {"schema": _schema_of(answer)}},
            }
        for status in _errors_of(route):
            responses.setdefault(
                str(status),
                {
                    "description": _phrase(status),
                    "content": {
                        "application/json": {"schema": {"$ref": REF.format(model="ErrorBody")}}
                    },
                    **_headers(status),
                },
            )
        operation: dict[str, Any] = {
            "summary": route.summary,
            "parameters": [_param(p) for p in route.params],
            "responses": responses,
            "security": _security(route.who),
        }
        if route.body:
            operation["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"oneOf": [event, {"type": "array", "items": event}]}
                    }
                },
            }
        if route.request is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": _schema_of(route.request)}},
            }
        paths.setdefault(route.path, {})[route.method] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "accrochage",
            "version": "2",
            "description": "Certification records on their way to the CDC (SI CPF), on time. "
            "Tokens: api.token (operator, every route) or api.ingest_tokens (POST /events, "
            "POST /check and GET /openapi.json; an ingest token scoped to certifiers has an "
            "event for another certifier, or about another certifier's record, refused with "
            "403, and reads its "
            "certifiers' records with GET /records and /records/{record_id}, without their "
            "content), as Bearer or as the password of HTTP Basic.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "basic": {"type": "http", "scheme": "basic"},
            },
        },
    }


def _phrase(status: int) -> str:
    return HTTPStatus(status).phrase


def openapi_text() -> str:
    return json.dumps(openapi(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"
