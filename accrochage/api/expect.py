"""`Expect: 100-continue`: the body is invited only once the request would be read.

aiohttp answers `Expect` before any middleware runs, and its own handler invites every
body: a caller without a token, a page of another site, a body declared too large or as
something else than JSON were all told to send it, and a 413 told its limit to anyone. The
handler here runs the admission checks first, in the middlewares' order (`ADMISSION`), then
the body's type and declared length; any refusal closes the connection (the client may be
sending the body it was not invited to).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.web_urldispatcher import _default_expect_handler as invite

from accrochage.api.bodies import TooLarge, declared_within, refuse_other_media
from accrochage.api.errors import ApiError, Check, error_answer

ADMISSION = web.AppKey("admission", tuple[Check, ...])
"""The checks a request passes before its handler runs, in order (the middlewares'): from
where it comes, then who sends it."""
ExpectHandler = Callable[[web.Request], Awaitable[web.StreamResponse | None]]


def expecting(
    limit_of: Callable[[web.Request], int], too_large: Callable[[str, int], ApiError]
) -> ExpectHandler:
    """An expect handler for a route whose body may hold `limit_of(request)` bytes;
    `too_large(what, limit)` is its 413."""

    async def expect(request: web.Request) -> web.StreamResponse | None:
        refused = refusal(request, limit_of(request), too_large)
        if refused is not None:
            refused.force_close()
            return refused
        await invite(request)
        return None

    return expect


def refusal(
    request: web.Request, limit: int, too_large: Callable[[str, int], ApiError]
) -> web.Response | None:
    for admits in request.app[ADMISSION]:
        refused = admits(request)
        if refused is not None:
            return refused
    try:
        refuse_other_media(request)
        declared_within(request, limit)
    except TooLarge as exc:
        return error_answer(too_large(str(exc), limit))
    except ApiError as exc:
        return error_answer(exc)
    return None
