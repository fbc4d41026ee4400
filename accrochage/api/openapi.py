"""`GET /openapi.json`: an OpenAPI 3.1 description of every route, generated from the models.

The events' schema comes from the event models (`models/event.py`), the answers' from
`api/schemas.py`; `accrochage openapi -o docs/openapi.json` saves it, and a test keeps that
file equal to what the models generate.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from accrochage.api import schemas as s
from accrochage.api.route_table import ROUTES, Param, Route
from accrochage.models.event import DeliveredEvent, RevokedEvent

REF = "#/components/schemas/{model}"
ERRORS = (400, 401, 403, 405, 413, 415, 417, 421, 500, 503, 507)
AUTH_ERRORS = (401, 403, 421)
"""Not on an open route: a token's, a foreign site's (403) or a foreign Host's (421)."""
ERROR_HEADERS: dict[int, dict[str, str]] = {
    401: {"WWW-Authenticate": 'How to authenticate: Basic realm="accrochage" (or a Bearer token).'},
    405: {"Allow": "The methods the route takes."},
    429: {
        "Retry-After": "Seconds until the ingest token's events a minute (api.events_per_minute) "
        "make room for this request (rate_limited)."
    },
    503: {
        "Retry-After": "Seconds to wait before sending again: on state_busy (another process "
        "holds the state) and too_many_connections; none on writer_unavailable, which no "
        "retry mends until the service is restarted."
    },
}
"""Headers an error answer carries (`api/auth.py`, `api/errors.py`, `api/connections.py`)."""
BODY_TIMEOUT = 408
"""A request with a body may also end so (`api.body_timeout`)."""
RATE_LIMITED = 429
"""An ingestion route's answer beyond the token's events a minute (`api/budgets.py`)."""


def _errors_of(route: Route) -> list[int]:
    """The error answers a route may give: no 401/403 on an open one, 408 with a body."""
    statuses = [s for s in ERRORS if not (route.who == "open" and s in AUTH_ERRORS)]
    if route.method == "post":
        statuses.append(BODY_TIMEOUT)
    if route.who == "ingest":
        statuses.append(RATE_LIMITED)
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
        # anyOf, not oneOf: an empty page of records is both a RecordsPage and a
        # PlatformRecordsPage, and oneOf refuses an answer that matches two alternatives.
        return {"anyOf": [_schema_of(a) for a in args]}
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
                **_headers(status),
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
                        "schema": {
                            "oneOf": [event, {"type": "array", "items": event, "minItems": 1}]
                        }
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
