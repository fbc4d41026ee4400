"""The embedded service: HTTP ingestion, the batch timer, the query API (aiohttp).

Writes go through the group writer (one thread, group commit); reads run on reader
connections in a thread pool, so a slow query never stalls ingestion or the event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from typing import Any, TypeVar

from aiohttp import web

from accrochage.api.errors import ApiError, auth_middleware, error_middleware
from accrochage.api.writer import GroupWriter
from accrochage.app import Core
from accrochage.models.deadline import paris_today
from accrochage.state import queries
from accrochage.state.lifecycle import Status
from accrochage.streams.ingest import Incoming

log = logging.getLogger("accrochage.service")
T = TypeVar("T")
MAX_BODY = 64 * 1024 * 1024
MAX_PAGE = 1000
CORE = web.AppKey("core", Core)
WRITER = web.AppKey("writer", GroupWriter)
READERS = web.AppKey("readers", ThreadPoolExecutor)


class _Readers(threading.local):
    conn: Any = None


_local = _Readers()


async def read(request: web.Request, query: Callable[..., T], *args: Any) -> T:
    core = request.app[CORE]

    def run() -> T:
        if _local.conn is None:
            _local.conn = core.store.reader()
        return query(_local.conn, *args)

    return await asyncio.get_running_loop().run_in_executor(request.app[READERS], run)


def _as_of(request: web.Request) -> date:
    value = request.query.get("as_of")
    if not value:
        return paris_today(request.app[CORE].clock)
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
    results = await request.app[WRITER].submit(items)
    if isinstance(parsed, list):
        return web.json_response([r.as_dict() | {"http_status": r.http_status} for r in results])
    return web.json_response(results[0].as_dict(), status=results[0].http_status)


async def get_records(request: web.Request) -> web.Response:
    statuses = tuple(s for s in request.query.getall("status", []) if s)
    for status in statuses:
        if status not in Status.__members__.values():
            raise ApiError(
                400,
                "bad_parameter",
                f"unknown status {status!r}",
                {"allowed": [s.value for s in Status]},
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
    rows = await read(request, queries.outstanding, query)
    page, more = rows[:limit], len(rows) > limit
    cursor = queries.encode_cursor(page[-1]["deadline"], page[-1]["record_id"]) if more else None
    return web.json_response({"records": page, "next_cursor": cursor})


async def get_record(request: web.Request) -> web.Response:
    record_id = request.match_info["record_id"]
    detail = await read(request, queries.record_detail, record_id, _as_of(request))
    if detail is None:
        raise ApiError(404, "not_found", f"no record {record_id}")
    return web.json_response(detail)


async def get_batches(request: web.Request) -> web.Response:
    rows = await read(
        request,
        lambda c: queries.batches(
            c,
            state=request.query.get("state"),
            certifier=request.query.get("certifier"),
            limit=_int_param(request, "limit", 100, MAX_PAGE) or 100,
        ),
    )
    return web.json_response({"batches": rows})


async def get_batch(request: web.Request) -> web.Response:
    batch_id = request.match_info["batch_id"]
    detail = await read(request, queries.batch_detail, batch_id)
    if detail is None:
        raise ApiError(404, "not_found", f"no batch {batch_id}")
    return web.json_response(detail)


async def get_summary(request: web.Request) -> web.Response:
    margin = request.app[CORE].settings.batching.margin_days
    return web.json_response(await read(request, queries.summary, _as_of(request), margin))


async def get_unusable(request: web.Request) -> web.Response:
    limit = _int_param(request, "limit", 100, MAX_PAGE) or 100
    return web.json_response({"events": await read(request, queries.unusable, limit)})


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def batch_timer(app: web.Application) -> None:
    """Tick on the wall clock: an idle certifier still flushes on time."""
    core = app[CORE]
    tick = core.settings.batching.tick.total_seconds()
    loop = asyncio.get_running_loop()
    flusher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="flusher")
    try:
        while True:
            try:
                report = await loop.run_in_executor(flusher, core.flusher.flush)
                for written in report.written:
                    log.info("wrote %s (%d passages)", written.path.name, written.passages)
                for failed in report.failed:
                    log.error("batch %s failed: %s", failed.batch_id, failed.error)
            except Exception:
                log.exception("flush failed; retrying at the next tick")
            await asyncio.sleep(tick)
    finally:
        flusher.shutdown(wait=True)


def build_app(core: Core, *, timer: bool = True) -> web.Application:
    app = web.Application(
        client_max_size=MAX_BODY,
        middlewares=[error_middleware, auth_middleware(core.settings.api.token)],
    )
    app[CORE] = core
    app[WRITER] = GroupWriter(core.ingestor)
    app[READERS] = ThreadPoolExecutor(max_workers=4, thread_name_prefix="reader")
    app.router.add_post("/events", post_events)
    app.router.add_get("/records", get_records)
    app.router.add_get("/records/{record_id}", get_record)
    app.router.add_get("/batches", get_batches)
    app.router.add_get("/batches/{batch_id}", get_batch)
    app.router.add_get("/summary", get_summary)
    app.router.add_get("/unusable", get_unusable)
    app.router.add_get("/health", health)

    async def lifecycle(app: web.Application) -> Any:
        app[WRITER].start()
        task = asyncio.get_running_loop().create_task(batch_timer(app)) if timer else None
        yield
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await app[WRITER].stop()
        app[READERS].shutdown(wait=True)

    app.cleanup_ctx.append(lifecycle)
    return app


def run_service(core: Core) -> None:
    """Serve until SIGTERM or SIGINT; in-flight requests and the queue finish first."""
    api = core.settings.api
    log.info("accrochage service on http://%s (outbox %s)", api.bind, core.settings.paths.outbox)
    web.run_app(
        build_app(core),
        host=api.host,
        port=api.port,
        print=None,
        shutdown_timeout=30,
        handle_signals=True,
    )
