"""What is wrong with the service now, if anything: `GET /health`'s answer, and the banner
of the operator's dashboard (`/ui`)."""

from __future__ import annotations

from aiohttp import web

from accrochage.api.browsers import is_loopback_name
from accrochage.api.context import CONTEXT, ApiContext
from accrochage.api.errors import for_others, is_operator
from accrochage.errors import AccrochageError, StorageLowError, StoreBusyError
from accrochage.streams.room import events_refused


def problem(context: ApiContext) -> AccrochageError | None:
    """The storage's fault of the last write (an event's, or the batch timer's cut), a writer
    process that ended, or a damaged state a read came upon; None when all is well.

    A write that gave up on another writer (`state_busy`) counts only while the state's write
    lock is still held: once that writer let go, the next write goes through, and a liveness
    probe must not restart a service that has nothing wrong (a full disk counts until a write
    succeeds: nothing but a write can tell it is over). Events refused for want of room
    (`storage_low`) are told by the disk itself, while it lacks it: from the start, before a
    platform's event is refused."""
    found: AccrochageError | None = context.writer.storage_error
    if isinstance(found, StoreBusyError) and context.store.write_holder() is None:
        found = None
    if found is None or isinstance(found, StorageLowError):
        found = events_refused(context.store.location, context.keep_free_bytes)
    if found is None:
        found = context.writer.unavailable
    if found is None and context.batch_cut_error is not None:
        found = context.batch_cut_error()
    if found is None:
        found = context.damage.found
    return found


async def health(request: web.Request) -> web.Response:
    """`ok`, or `degraded` (503) with the reason (`problem`): the whole message for the
    operator, its code and what to do for anyone else."""
    found = problem(request.app[CONTEXT])
    if found is None:
        return web.json_response({"status": "ok"})
    said = str(found) if _told_whole(request) else for_others(found)
    return web.json_response(
        {"status": "degraded", "reason": found.code, "message": said}, status=503
    )


def _told_whole(request: web.Request) -> bool:
    """Whether the fault's whole message (the state's path, the process holding it) is the
    caller's: the operator's request, and on a service without a token, where every request
    is, one addressed to a loopback name. `/health` answers any `Host`: a page whose name is
    made to resolve to 127.0.0.1 (DNS rebinding) read that message."""
    if not is_operator(request):
        return False
    host = request.headers.get("Host")
    tokenless = not request.app[CONTEXT].token.get_secret_value()
    return not tokenless or host is None or is_loopback_name(host)
