"""The HTTP API (aiohttp): event ingestion and the query API, for both runtimes.

Writes go through an `EventWriter` (`api/writing.py`): the writer service of this process
(one thread, group commit), or a writer process (`api/writer_link.py`) to which this process
sends its requests' events decoded, concurrent requests gathered into one group. Large
arrays are decoded in decode processes when there are (`streams/decoding.py`). Reads run on
readers in a thread pool (`api/context.py`; the query routes are in `api/reads.py`), so a
slow query never stalls ingestion or the event loop. What the API needs comes in an
`ApiContext`; the runtimes (`runtimes/`) build it and run the app.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

from aiohttp import web

from accrochage.api import corrections, metrics, ui
from accrochage.api.auth import auth_check, scope_of, sender_of
from accrochage.api.bodies import BODY_SECONDS, TooLarge, read_body
from accrochage.api.browsers import same_site_check
from accrochage.api.budgets import BUDGETS, EventBudgets
from accrochage.api.changes import get_changes
from accrochage.api.connections import CONNECTIONS
from accrochage.api.context import (
    CONTEXT,
    READER_TURNS,
    READERS,
    ApiContext,
    on_reader_thread,
)
from accrochage.api.errors import (
    CLIENT_ERROR_LINES,
    EVERY_ANSWER,
    SERVER_ERROR_LINES,
    SERVER_ERRORS_LOGGED_EVERY,
    ApiError,
    error_middleware,
    refusing,
)
from accrochage.api.expect import ADMISSION, expecting
from accrochage.api.health import health, problem
from accrochage.api.intake import (
    LARGE_BODIES,
    SENDERS_TURNS,
    events_in,
    off_loop_if_large,
    senders_turn,
)
from accrochage.api.openapi import openapi
from accrochage.api.protocol import ACCESS_LOG, REFUSED_REQUESTS_LOGGED_EVERY
from accrochage.api.query_names import documented, known_query_names
from accrochage.api.reads import (
    get_batch,
    get_batches,
    get_record,
    get_records,
    get_summary,
    get_unusable,
)
from accrochage.api.refused_lines import REFUSED_LINES, RefusedLines
from accrochage.api.turns import FairSlots
from accrochage.errors import StorageLowError
from accrochage.models.problems import problems_as_dicts
from accrochage.models.vocabulary import Outcome
from accrochage.streams.check import check
from accrochage.streams.corrections import Corrections
from accrochage.streams.decoding import DecodeFailed
from accrochage.streams.incoming import NO_ROOM, Incoming
from accrochage.streams.log_lines import LinesEvery

T = TypeVar("T")
log = logging.getLogger("accrochage.api")
POOL_MIN_EVENTS = 16
"""A request with fewer events is decoded in the writer's thread, or in this process for a
writer process: one round trip to a decode process per request costs the serving process more
than decoding a few events (measured: 1,280 against 2,420 single-event requests/s); an array
is worth sending."""
READER_THREADS = 4
DECODE_TURNS = web.AppKey("decode_turns", FairSlots)
"""Arrays sent to the decode processes, senders in turn: two a process, so that each has the
next one waiting while it decodes (one a process: arrays of 100 from 8 connections were
decoded 15 % more slowly, 4,800 events/s against 5,648 in `bench.http`)."""
CHECK_TURNS = web.AppKey("check_turns", FairSlots)
"""`POST /check` requests checked in the reader threads: one a sender at a time (the threads
share one interpreter lock: a sender's second check in parallel gains it nothing), one thread
left for reads."""


def _decoding_processes(context: ApiContext) -> int:
    return context.decoder.processes if context.decoder is not None else 1


async def _body(request: web.Request) -> bytes:
    limit = request.app[CONTEXT].max_body_bytes
    try:
        return await read_body(request, limit)
    except TooLarge as exc:
        raise _too_large(str(exc), limit) from None


def _too_large(what: str, limit: int) -> ApiError:
    return ApiError(
        413,
        "payload_too_large",
        f"{what}; api.max_body_bytes is {limit}: send fewer events per request",
        {"max_body_bytes": limit},
    )


async def post_events(request: web.Request) -> web.Response:
    context = request.app[CONTEXT]

    def pooled(items: list[Incoming]) -> bool:
        return context.decoder is not None and len(items) >= POOL_MIN_EVENTS

    def prepare(body: bytes) -> tuple[list[Incoming], bool]:
        # The address and the token (its place, never its value): behind a proxy every
        # platform has the proxy's address, and the unusable log said no more.
        source = f"http:{request.remote} ({sender_of(request)})"
        items, array = events_in(body, context.max_events_per_request, source, scope_of(request))
        request.app[BUDGETS].spend(sender_of(request), len(items))
        if not pooled(items) and context.decode_here is not None and context.writer.decodes_here:
            items = context.decode_here(items)
        return items, array

    async with senders_turn(request):
        body = await _body(request)
        items, array = await off_loop_if_large(request.app, body, partial(prepare, body))
    if pooled(items):
        assert context.decoder is not None
        try:
            loop = asyncio.get_running_loop()
            async with request.app[DECODE_TURNS].turn(sender_of(request)):
                # Off the loop: submitting starts the decode processes again after one died.
                decoding = await loop.run_in_executor(None, context.decoder.submit, items)
                items = await asyncio.wrap_future(decoding)
        except DecodeFailed:  # the writer decodes them; the next request starts a new pool
            log.error("a decode process ended; this request's events are decoded by the writer")
    results = await context.writer.store(items, sender_of(request))
    refused(request, sum(r.outcome == Outcome.FORBIDDEN for r in results), len(results))
    if array:
        return web.json_response([r.as_dict() | {"http_status": r.http_status} for r in results])
    (result,) = results
    if result.failed_status == NO_ROOM:  # its errors, then why it was not stored
        *errors, why = result.errors
        raise ApiError(NO_ROOM, StorageLowError.code, why.message, problems_as_dicts(errors))
    if not result.stored:
        raise ApiError(500, "internal_error", "the event could not be stored; see the service log")
    return web.json_response(result.as_dict(), status=result.http_status)


async def post_check(request: web.Request) -> web.Response:
    """`POST /check`: one event or an array, validated as ingestion would; nothing stored."""
    context = request.app[CONTEXT]
    limit = context.max_events_per_request
    scope = scope_of(request)

    def read(body: bytes) -> tuple[list[Incoming], bool]:
        items, array = events_in(body, limit, "http:check", scope)
        request.app[BUDGETS].spend(sender_of(request), len(items))
        return items, array

    async with senders_turn(request):
        body = await _body(request)
        items, array = await off_loop_if_large(request.app, body, partial(read, body))

    def run() -> list[dict[str, Any]]:
        reference = context.reference() if context.reference is not None else None
        found = check(items, context.registry, context.clock, context.store, reference)
        refused(request, sum(one.forbidden for one in found), len(found))
        return [one.as_dict() for one in found]

    async with request.app[CHECK_TURNS].turn(sender_of(request)):
        answers = await on_reader_thread(request, run)
    return web.json_response(answers if array else answers[0])


def refused(request: web.Request, count: int, of: int) -> None:
    """A request's events its scoped token may not send, logged by token (never its value),
    route and how many (`api/refused_lines.py`). A platform asking about record ids of
    certifiers it does not send for is probing (through `/check` as well), and the operator
    should know."""
    if count:
        request.app[REFUSED_LINES].note(sender_of(request), request.path, count, of)


async def get_openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi())


async def _every_answer_headers(_: web.Request, response: web.StreamResponse) -> None:
    """Every answer may hold personal data (a record's holder, an unusable event's text) and
    is read in browsers too (HTTP Basic): none is kept in a cache, none sniffed as another
    type than it says. None names the Python and aiohttp versions serving it (aiohttp's
    default `Server`), which only helps someone looking for a known flaw."""
    for name, value in EVERY_ANSWER.items():
        response.headers.setdefault(name, value)
    response.headers["Server"] = EVERY_ANSWER["Server"]  # aiohttp's is set before this hook


def build_app(context: ApiContext) -> web.Application:
    """The routes of CONTRACT.md §4 over `context`; the caller starts and stops the writer."""
    admission = (
        same_site_check(tokenless=not context.token.get_secret_value()),
        auth_check(context.token, context.ingest_tokens),
    )
    app = web.Application(
        client_max_size=context.max_body_bytes,
        middlewares=[
            error_middleware,
            *(refusing(check) for check in admission),
            known_query_names(documented(openapi())),
        ],
    )
    app[ADMISSION] = admission
    app.on_response_prepare.append(_every_answer_headers)
    app[CONTEXT] = context
    budgets = EventBudgets(context.event_budgets, refused=context.metrics.rate_limited)
    context.metrics.limits(budgets.senders)
    app[BUDGETS] = budgets
    app[SERVER_ERROR_LINES] = LinesEvery(SERVER_ERRORS_LOGGED_EVERY)
    app[CLIENT_ERROR_LINES] = LinesEvery(REFUSED_REQUESTS_LOGGED_EVERY)
    app[REFUSED_LINES] = RefusedLines()
    app[BODY_SECONDS] = context.body_timeout_seconds
    app[ACCESS_LOG] = context.access_log
    app[CONNECTIONS] = context.connections
    app[LARGE_BODIES] = asyncio.Semaphore(1)
    app[SENDERS_TURNS] = {}
    decoding = 2 * _decoding_processes(context)
    app[DECODE_TURNS] = FairSlots(decoding, per_sender=decoding)
    app[CHECK_TURNS] = FairSlots(READER_THREADS - 1, per_sender=1)
    app[READER_TURNS] = FairSlots(READER_THREADS, per_sender=READER_THREADS - 1)
    app[READERS] = ThreadPoolExecutor(max_workers=READER_THREADS, thread_name_prefix="reader")
    events_body = expecting(lambda request: request.app[CONTEXT].max_body_bytes, _too_large)
    app.router.add_post("/events", post_events, expect_handler=events_body)
    app.router.add_post("/check", post_check, expect_handler=events_body)
    app.router.add_get("/records", get_records)
    app.router.add_get("/records/{record_id}", get_record)
    app.router.add_get("/changes", get_changes)
    app.router.add_get("/batches", get_batches)
    app.router.add_get("/batches/{batch_id}", get_batch)
    app.router.add_get("/summary", get_summary)
    app.router.add_get("/unusable", get_unusable)
    app.router.add_get("/health", health)
    app.router.add_get("/openapi.json", get_openapi)
    metrics.add_routes(app)
    keys = tuple(context.registry.certifiers)
    service = Corrections(context.store, context.clock, context.margin_days, keys)
    corrections.add_routes(app, service)
    ui.add_routes(
        app, context.store, context.clock, context.margin_days, keys, partial(problem, context)
    )

    async def readers(app: web.Application) -> Any:
        yield
        app[READERS].shutdown(wait=True)

    app.cleanup_ctx.append(readers)
    return app
