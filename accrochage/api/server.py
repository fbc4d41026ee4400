"""The HTTP API (aiohttp): event ingestion and the query API, for both runtimes.

Writes go through the writer service (one thread, group commit); reads run on readers in a
thread pool, so a slow query never stalls ingestion or the event loop. What the API needs
comes in an `ApiContext`; the runtimes (`runtimes/`) build it and run the app.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

from aiohttp import web

from accrochage.api.errors import ApiError, auth_middleware, error_middleware
from accrochage.models.deadline import Clock, paris_today
from accrochage.models.vocabulary import RecordStatus, values
from accrochage.state import queries
from accrochage.state.base import Reader, Store
from accrochage.streams.ingest import Incoming
from accrochage.streams.writer import WriterService

T = TypeVar("T")
MAX_BODY = 64 * 1024 * 1024
MAX_PAGE = 1000
READER_THREADS = 4


@dataclass(frozen=True, slots=True)
class ApiContext:
    store: Store
    clock: Clock
    writer: WriterService
    token: str
    margin_days: int


CONTEXT = web.AppKey("context", ApiContext)
READERS = web.AppKey("readers", ThreadPoolExecutor)


class _Readers(threading.local):
    reader: Reader | None = None


_local = _Readers()


async def read(request: web.Request, query: Callable[[Reader], T]) -> T:
    """Run `query(reader)` on a reader thread's own reader, off the event loop."""
    store = request.app[CONTEXT].store

    def run() -> T:
        if _local.reader is None:
            _local.reader = store.reader()
        return query(_local.reader)

    return await asyncio.get_running_loop().run_in_executor(request.app[READERS], run)


def _as_of(request: web.Request) -> date:
    value = request.query.get("as_of")
    if not value:
        return paris_today(request.app[CONTEXT].clock)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ApiError(400, "bad_parameter", "as_of must be YYYY-MM-DD", {"as_of": value}) from None


def _int_param(request: web.Request, name: str, default: int | None, high: int) -> int | None:
    value = request.query.get(name)
    if value is None or value == "":
        return default
    if not value.isdigit() or not 0 <= int(value) <= high:
        raise ApiError(
            400, "bad_parameter", f"{name} must be an integer within 0–{high}", {name: value}
        )
    return int(value)


async def post_events(request: web.Request) -> web.Response:
    body = await request.read()
    source = f"http:{request.remote}"
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        parsed = None  # decoded again below: the event is logged as unusable, answered 422
    items = (
        [Incoming(e if isinstance(e, dict) else json.dumps(e), source) for e in parsed]
        if isinstance(parsed, list)
        else [Incoming(body, source)]
    )
    if isinstance(parsed, list) and not items:
        raise ApiError(400, "empty_array", "the array holds no event")
    results = await asyncio.wrap_future(request.app[CONTEXT].writer.submit(items))
    if isinstance(parsed, list):
        return web.json_response([r.as_dict() | {"http_status": r.http_status} for r in results])
    return web.json_response(results[0].as_dict(), status=results[0].http_status)


async def get_records(request: web.Request) -> web.Response:
    statuses = tuple(s for s in request.query.getall("status", []) if s)
    for status in statuses:
        if status not in values(RecordStatus):
            raise ApiError(
                400,
                "bad_parameter",
                f"unknown status {status!r}",
                {"allowed": values(RecordStatus)},
            )
    limit = _int_param(request, "limit", 100, MAX_PAGE) or 100
    query = queries.OutstandingQuery(
        as_of=_as_of(request),
        certifier=request.query.get("certifier") or None,
        statuses=statuses,
        due_within=_int_param(request, "due_within", None, 100_000),
        overdue=request.query.get("overdue", "").lower() in {"1", "true", "yes"},
        limit=limit + 1,
        cursor=request.query.get("cursor") or None,
    )
    rows = await read(request, lambda reader: reader.outstanding(query))
    page, more = rows[:limit], len(rows) > limit
    cursor = queries.encode_cursor(page[-1]["deadline"], page[-1]["record_id"]) if more else None
    return web.json_response({"records": page, "next_cursor": cursor})


async def get_record(request: web.Request) -> web.Response:
    record_id = request.match_info["record_id"]
    as_of = _as_of(request)
    detail = await read(request, lambda reader: reader.record_detail(record_id, as_of))
    if detail is None:
        raise ApiError(404, "not_found", f"no record {record_id}")
    return web.json_response(detail)


async def get_batches(request: web.Request) -> web.Response:
    rows = await read(
        request,
        lambda reader: reader.batches(
            state=request.query.get("state"),
            certifier=request.query.get("certifier"),
            limit=_int_param(request, "limit", 100, MAX_PAGE) or 100,
        ),
    )
    return web.json_response({"batches": rows})


async def get_batch(request: web.Request) -> web.Response:
    batch_id = request.match_info["batch_id"]
    detail = await read(request, lambda reader: reader.batch_detail(batch_id))
    if detail is None:
        raise ApiError(404, "not_found", f"no batch {batch_id}")
    return web.json_response(detail)


async def get_summary(request: web.Request) -> web.Response:
    margin = request.app[CONTEXT].margin_days
    as_of = _as_of(request)
    return web.json_response(await read(request, lambda reader: reader.summary(as_of, margin)))


async def get_unusable(request: web.Request) -> web.Response:
    limit = _int_param(request, "limit", 100, MAX_PAGE) or 100
    return web.json_response({"events": await read(request, lambda reader: reader.unusable(limit))})


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def build_app(context: ApiContext) -> web.Application:
    """The routes of CONTRACT.md §4 over `context`; the caller starts and stops the writer."""
    app = web.Application(
        client_max_size=MAX_BODY,
        middlewares=[error_middleware, auth_middleware(context.token)],
    )
    app[CONTEXT] = context
    app[READERS] = ThreadPoolExecutor(max_workers=READER_THREADS, thread_name_prefix="reader")
    app.router.add_post("/events", post_events)
    app.router.add_get("/records", get_records)
    app.router.add_get("/records/{record_id}", get_record)
    app.router.add_get("/batches", get_batches)
    app.router.add_get("/batches/{batch_id}", get_batch)
    app.router.add_get("/summary", get_summary)
    app.router.add_get("/unusable", get_unusable)
    app.router.add_get("/health", health)

    async def readers(app: web.Application) -> Any:
        yield
        app[READERS].shutdown(wait=True)

    app.cleanup_ctx.append(readers)
    return app
