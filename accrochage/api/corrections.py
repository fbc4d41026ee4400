"""`/correction-requests` (CONTRACT §9): open, list and answer correction requests over HTTP.

Operator routes (the `api.token`, as `/records`). Bodies are read strictly (JSON types as
documented, no unknown key); a field error is a 422 naming the field, never quoting its value:
a note may name a person, and neither it nor an answer's text is ever logged.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import date
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from accrochage.api import params
from accrochage.api.bodies import TooLarge, read_body
from accrochage.api.context import on_reader_thread
from accrochage.api.errors import ApiError
from accrochage.api.expect import expecting
from accrochage.api.schemas import CorrectionAnswerIn, CorrectionRequestIn
from accrochage.models.canonical import storable
from accrochage.models.deadline import FIRST_DAY, LAST_DAY, paris_today
from accrochage.models.field_errors import body_problems
from accrochage.models.json_input import marked_object
from accrochage.models.problems import (
    DUPLICATED,
    GIVEN_TWICE,
    Problem,
    given_twice,
    problems_as_dicts,
)
from accrochage.models.vocabulary import RequestSource, RequestStatus
from accrochage.state import queries
from accrochage.streams.corrections import Corrections

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
MAX_BODY = 64 * 1024
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
SERVICE = web.AppKey("corrections", Corrections)


def _twice(body: dict[str, Any]) -> list[Problem]:
    """The body's own keys given twice, its parser's mark taken out (a nested object is no
    field of a body: its type is the error), each named when it can be written back."""
    twice = given_twice(body)
    if twice:
        del body[DUPLICATED]
    return [Problem(key if storable(key) == key else "body", GIVEN_TWICE) for key in twice]


def _too_large(what: str, limit: int) -> ApiError:
    return ApiError(
        413, "payload_too_large", f"{what}; a correction request body is at most {limit} bytes"
    )


async def _body(request: web.Request, model: type[M], what: str) -> M:
    try:
        raw = await read_body(request, MAX_BODY)
    except TooLarge as exc:
        raise _too_large(str(exc), MAX_BODY) from None
    try:
        parsed = json.loads(raw, object_pairs_hook=marked_object)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ApiError(400, "bad_body", "the body must be one JSON object") from None
    if not isinstance(parsed, dict):
        raise ApiError(400, "bad_body", "the body must be one JSON object")
    problems = _twice(parsed)
    try:
        validated = model.model_validate(parsed, strict=True)
    except ValidationError as exc:
        problems += body_problems(exc, what)
    if problems:
        raise ApiError(
            422,
            "invalid_body",
            "the body has field errors: see details",
            problems_as_dicts(problems),
        )
    return validated


def _day(value: str, name: str) -> date:
    try:
        if not _DAY.fullmatch(value):
            raise ValueError(value)
        parsed = date.fromisoformat(value)
    except ValueError:
        raise _field(name, "must be a date YYYY-MM-DD") from None
    if not FIRST_DAY <= parsed <= LAST_DAY:
        raise _field(name, f"must be from {FIRST_DAY} to {LAST_DAY}")
    return parsed


def _field(name: str, message: str) -> ApiError:
    return ApiError(422, "invalid_body", f"{name} {message}", [{"field": name, "message": message}])


async def _run(request: web.Request, work: Callable[[], T]) -> T:
    """Blocking store work on a reader thread, in its sender's turn (the store serialises
    writers itself)."""
    return await on_reader_thread(request, work)


async def post_request(request: web.Request) -> web.Response:
    body = await _body(request, CorrectionRequestIn, "a correction request")
    received_on = _day(body.received_on, "received_on")
    service = request.app[SERVICE]
    opened = await _run(
        request,
        lambda: service.add(
            body.record_id,
            received_on,
            source=RequestSource(body.source),
            certifier=body.certifier,
            note=body.note,
        ),
    )
    said = {"warnings": problems_as_dicts(opened.warnings())}
    return web.json_response(opened.json | said, status=200 if opened.already else 201)


async def get_requests(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    open_only = params.flag(request, "open")
    as_of = params.day(request, "as_of", paris_today(service.clock))
    limit = params.page_size(request)
    cursor = params.key(request, "cursor")
    after = None if cursor is None else queries.request_after(cursor)
    certifier = params.one(request, "certifier") or None
    rows = await _run(
        request,
        lambda: service.list(
            open_only=open_only, as_of=as_of, limit=limit + 1, after=after, certifier=certifier
        ),
    )
    page, more = rows[:limit], len(rows) > limit
    last = page[-1] if more else None
    cursor = (
        None
        if last is None
        else queries.request_cursor(
            last["status"] != RequestStatus.OPEN.value, last["deadline"], last["request_id"]
        )
    )
    return web.json_response({"correction_requests": page, "next_cursor": cursor})


async def post_answer(request: web.Request) -> web.Response:
    request_id = request.match_info["request_id"]
    body = await _body(request, CorrectionAnswerIn, "an answer")
    given = [body.unfounded is not None, body.corrected is True, body.cancelled is not None]
    if given.count(True) != 1:
        raise ApiError(
            422,
            "invalid_body",
            'send exactly one of {"unfounded": "why the data is right"}, {"corrected": true} '
            'and {"cancelled": "what was meant"} (a request entered by mistake)',
        )
    service = request.app[SERVICE]
    done = await _run(
        request,
        lambda: service.answer(
            request_id,
            unfounded=body.unfounded,
            corrected=bool(body.corrected),
            cancelled=body.cancelled,
        ),
    )
    return web.json_response(done)


def add_routes(app: web.Application, service: Corrections) -> None:
    app[SERVICE] = service
    body = expecting(lambda _: MAX_BODY, _too_large)
    app.router.add_post("/correction-requests", post_request, expect_handler=body)
    app.router.add_get("/correction-requests", get_requests)
    app.router.add_post(
        "/correction-requests/{request_id}/answer", post_answer, expect_handler=body
    )
