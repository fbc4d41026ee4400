"""One JSON error shape for the whole API: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Middleware

from accrochage.errors import (
    AccrochageError,
    FieldError,
    StoreBusyError,
    StoreError,
    WriterUnavailable,
)
from accrochage.streams.log_lines import LinesEvery

log = logging.getLogger("accrochage.api")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Check = Callable[[web.Request], web.Response | None]
"""A request's refusal before its handler runs (who sends it, from where), or None."""


SERVER_ERRORS_LOGGED_EVERY = 10.0
"""Seconds between two lines of the log for answers of one 5xx code."""


SERVER_ERROR_LINES = web.AppKey("server_error_lines", LinesEvery)
"""One log line per 5xx code every `SERVER_ERRORS_LOGGED_EVERY` (`streams/log_lines.py`)."""
CLIENT_ERROR_LINES = web.AppKey("client_error_lines", LinesEvery)
"""Unreadable bodies' lines, by kind: once a minute at most (`REFUSED_REQUESTS_LOGGED_EVERY`)."""


class ApiError(AccrochageError):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """`headers`: what the answer carries besides (`Retry-After`)."""
        super().__init__(message)
        self.status = status
        self.code = code
        self.details = details
        self.headers = dict(headers or {})


def refusing(check: Check) -> Middleware:
    """A middleware answering `check`'s refusal in place of the handler."""

    @web.middleware
    async def refuse(request: web.Request, handler: Handler) -> web.StreamResponse:
        refused = check(request)
        return refused if refused is not None else await handler(request)

    return refuse


SHOWN_PATH_CHARS = 200
RETRY_BUSY_SECONDS = 5
"""`Retry-After` of a `503 state_busy`: another process (a command, a flush) holds the state."""


def shown_path(request: web.BaseRequest) -> str:
    """The request's path for a log line: as sent (percent-encoded: a `%0A` stays three
    characters, never a new line forged in the log), any other unprintable character
    escaped, and cut short."""
    raw = request.rel_url.raw_path
    shown = raw
    if not (raw.isascii() and raw.isprintable()):  # the access log's every line: walk rarely
        shown = "".join(c if c.isprintable() and c.isascii() else f"\\x{ord(c):02x}" for c in raw)
    return shown if len(shown) <= SHOWN_PATH_CHARS else shown[:SHOWN_PATH_CHARS] + "…"


EVERY_ANSWER = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Server": "accrochage",
}
"""Every answer's: a record's detail holds personal data, and browsers open the routes too;
and no answer names the Python and aiohttp versions (aiohttp's default `Server`), which only
helps someone looking for a known flaw. An error answered before the request reaches the app
(`protocol.py`) carries them as well."""


def error_response(status: int, code: str, message: str, details: Any = None) -> web.Response:
    return web.json_response(
        {"error": {"code": code, "message": message, "details": details}},
        status=status,
        headers=EVERY_ANSWER,
    )


CLOSING = frozenset({408, 413})
"""Errors answered before the body was read whole: the rest of it is not waited for."""


def unreadable_body(cause: str | None = None) -> ApiError:
    """400 `bad_body`: a body that could not be read or decoded; `cause`, when given, is the
    exception's class (never its message, which may quote the body)."""
    return ApiError(
        400,
        "bad_body",
        "the request body could not be read: check its Content-Encoding (identity, gzip or "
        "deflate, matching the body) and its length",
        None if cause is None else {"error": cause},
    )


NO_ROUTE = 404
NO_ROUTE_MESSAGE = (
    "no route at this path: check its spelling (no trailing slash); every route is in "
    "GET /openapi.json (docs/openapi.json)"
)
"""aiohttp's own 404 (a path no route matches) said only "404: Not Found"; a record or a
batch that does not exist is the handler's `NotFound`, with its own message."""


OPERATOR = web.RequestKey("operator", bool)
"""Set (by the authentication) on a request the operator sent: its token, or any request to
a service without one. A server error's whole message is the operator's only: it names the
state's path, the process holding it, what SQLite said."""


def is_operator(request: web.Request) -> bool:
    return bool(request.get(OPERATOR, False))


def for_others(exc: AccrochageError) -> str:
    """A server error as told to an exam platform or an unauthenticated caller: its code
    and what to do, not the operator's details (the service log has them)."""
    if isinstance(exc, WriterUnavailable):
        return (
            "the service cannot store events until its operator restarts it "
            "(writer_unavailable); send them again once it answers GET /health with 200"
        )
    return (
        f"the service cannot do this now ({exc.code}); send it again later. The operator "
        "finds why in the service log, or in GET /health with the operator's token"
    )


def error_answer(exc: ApiError) -> web.Response:
    """An `ApiError` in the one JSON shape (a 408 or a 413 closes its connection)."""
    response = error_response(exc.status, exc.code, str(exc), exc.details)
    response.headers.update(exc.headers)
    if exc.status in CLOSING:
        response.force_close()
    return response


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error in the one JSON shape, its status from the exception that raised it."""
    try:
        return await handler(request)
    except ApiError as exc:
        return error_answer(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = exc.reason.lower().replace(" ", "_").replace("-", "_")
        allowed = exc.headers.get("Allow")
        if exc.status == NO_ROUTE:
            return error_response(exc.status, code, NO_ROUTE_MESSAGE)
        if allowed is None:
            return error_response(exc.status, code, exc.text or exc.reason)
        # A 405 says which methods the route takes (RFC 9110), in its header and its message.
        said = f"this method is not allowed here: the route takes {allowed}"
        response = error_response(exc.status, code, said)
        response.headers["Allow"] = allowed
        return response
    except HttpProcessingError as exc:
        kind = type(exc).__name__
        count = request.app[CLIENT_ERROR_LINES].due(kind)
        if count is not None:
            many = f" ({count} such since the last line)" if count > 1 else ""
            log.info("HTTP 400: unreadable body (%s)%s", kind, many)
        return error_answer(unreadable_body())
    except AccrochageError as exc:
        if exc.status >= 500:
            # A storage error's message is the operator's (paths, SQLite's words, never a
            # value); the caller who is not may only get its code.
            told = f"{exc.code}: {exc}" if isinstance(exc, StoreError) else exc.code
            count = request.app[SERVER_ERROR_LINES].due(exc.code)
            if count is not None:
                many = f" ({count} such answers since the last line)" if count > 1 else ""
                log.error(
                    "HTTP %d on %s %s%s: %s",
                    exc.status,
                    request.method,
                    shown_path(request),
                    many,
                    told,
                )
        details = exc.details if isinstance(exc, FieldError) else None
        said = str(exc) if exc.status < 500 or is_operator(request) else for_others(exc)
        response = error_response(exc.status, exc.code, said, details)
        if isinstance(exc, StoreBusyError):  # another process holds the state: it lets go
            response.headers["Retry-After"] = str(RETRY_BUSY_SECONDS)
        return response
    except Exception as exc:
        # The traceback without the exception's message, which may quote a value.
        log.error(
            "unexpected error on %s %s (%s):\n%s",
            request.method,
            shown_path(request),
            type(exc).__name__,
            "".join(traceback.format_tb(exc.__traceback__)),
        )
        return error_response(500, "internal_error", "unexpected error; see the service log")
