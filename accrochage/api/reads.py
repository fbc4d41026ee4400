"""The query routes of the HTTP API (CONTRACT §4): records, batches, the summary and the
unusable events, each read off the event loop (`context.read`), paged by cursor."""

from __future__ import annotations

from aiohttp import web

from accrochage.api import params
from accrochage.api.auth import scope_of
from accrochage.api.context import CONTEXT, day_asked, read
from accrochage.api.errors import ApiError
from accrochage.api.platform_view import (
    certifier_read,
    held_within,
    platform_detail,
    platform_row,
    shown_to,
    taking,
)
from accrochage.errors import NotFound
from accrochage.models.deadline import MAX_DUE_WITHIN
from accrochage.models.vocabulary import BatchState, CdcReason, RecordOrder, RecordStatus, values
from accrochage.state import queries
from accrochage.state.base import Reader
from accrochage.state.values import JsonRow
from accrochage.streams.summary import as_configured


async def get_records(request: web.Request) -> web.Response:
    statuses = tuple(s for s in request.query.getall("status", []) if s)
    for status in statuses:
        if status not in values(RecordStatus):
            raise ApiError(
                400,
                "bad_parameter",
                f"unknown status {status[:100]!r}",
                {"allowed": values(RecordStatus)},
            )
    limit = params.page_size(request)
    order = RecordOrder(params.word(request, "order", values(RecordOrder)) or RecordOrder.DEADLINE)
    cursor = params.key(request, "cursor")
    if cursor is not None:
        queries.records_after(cursor, order)
    scope = scope_of(request)
    certifier = params.key(request, "certifier")
    if scope is not None:
        certifier = certifier_read(certifier, scope)
    query = queries.OutstandingQuery(
        as_of=day_asked(request),
        certifier=certifier,
        statuses=statuses,
        due_within=params.integer(request, "due_within", None, MAX_DUE_WITHIN),
        overdue=params.flag(request, "overdue"),
        deadline_unknown=params.flag(request, "deadline_unknown"),
        limit=limit + 1,
        cursor=cursor,
        reason=params.word(request, "reason", values(CdcReason)),
        only_outstanding=not statuses,
        order=order,
    )
    rows = await read(request, lambda reader: reader.outstanding(query))
    page, more = rows[:limit], len(rows) > limit
    cursor = queries.records_cursor(page[-1], order) if more else None
    shown = page if scope is None else [platform_row(row) for row in page]
    return web.json_response({"records": shown, "next_cursor": cursor})


async def get_record(request: web.Request) -> web.Response:
    record_id = request.match_info["record_id"]
    as_of = day_asked(request)
    scope = scope_of(request)

    def detail_shown(reader: Reader) -> tuple[JsonRow | None, int | None]:
        # A platform's: who holds the id first, so that another certifier's record and an
        # unknown id cost the same one lookup: the answer's timing does not tell them apart.
        if scope is not None and not held_within(scope, reader.record_holders([record_id])):
            return None, None
        detail = reader.record_detail(record_id, as_of)
        taken_by = None if detail is None or scope is None else taking(detail["history"])
        taken = None if taken_by is None else reader.content_version_of(record_id, taken_by)
        return detail, taken

    detail, taken_version = await read(request, detail_shown)
    if detail is None or (scope is not None and not shown_to(scope, detail)):
        raise NotFound(f"no record {record_id}")
    return web.json_response(detail if scope is None else platform_detail(detail, taken_version))


async def get_batches(request: web.Request) -> web.Response:
    state = params.word(request, "state", values(BatchState))
    certifier = params.key(request, "certifier")
    limit = params.page_size(request)
    cursor = params.key(request, "cursor")
    after = None if cursor is None else queries.batch_after(cursor)
    rows = await read(
        request,
        lambda reader: reader.batches(
            state=state, certifier=certifier, limit=limit + 1, after=after
        ),
    )
    page, more = rows[:limit], len(rows) > limit
    last = page[-1] if more else None
    cursor = None if last is None else queries.batch_cursor(last["created_at"], last["batch_id"])
    return web.json_response({"batches": page, "next_cursor": cursor})


async def get_batch(request: web.Request) -> web.Response:
    batch_id = request.match_info["batch_id"]
    detail = await read(request, lambda reader: reader.batch_detail(batch_id))
    if detail is None:
        raise NotFound(f"no batch {batch_id}")
    return web.json_response(detail)


async def get_summary(request: web.Request) -> web.Response:
    margin = request.app[CONTEXT].margin_days
    as_of = day_asked(request)
    keys = request.app[CONTEXT].registry.certifiers
    summary = as_configured(await read(request, lambda r: r.summary(as_of, margin)), keys)
    notes = request.app[CONTEXT].summary_warnings
    summary["refdata_warnings"] = notes(as_of) if notes is not None else []
    return web.json_response(summary)


async def get_unusable(request: web.Request) -> web.Response:
    limit = params.page_size(request)
    cursor = params.key(request, "cursor")
    before = None if cursor is None else queries.unusable_before(cursor)
    everything = params.flag(request, "all")
    certifier = params.one(request, "certifier") or None
    sender = params.sender(request)
    rows = await read(
        request,
        lambda reader: reader.unusable(
            limit + 1, before, dismissed=everything, certifier=certifier, sender=sender
        ),
    )
    page, more = rows[:limit], len(rows) > limit
    cursor = queries.unusable_cursor(page[-1]["id"]) if more else None
    return web.json_response({"events": page, "next_cursor": cursor})
