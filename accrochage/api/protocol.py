"""aiohttp's HTTP layer made to speak the API's one error shape, and to keep headers out of
the logs.

Errors found before a request reaches the application (a malformed request line, a header
with a control character, a URL or header over aiohttp's limits, a broken body encoding) are
answered by aiohttp's protocol handler as text that may echo the offending header — a token
included — and logged with the parser's message, which quotes it. `JsonErrorHandler`
answers them with the JSON error shape and logs one line without any header or value.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any, cast

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_server import Server

from accrochage.api.bodies import BODY_SECONDS, DEFAULT_BODY_SECONDS
from accrochage.api.connections import (
    CONNECTIONS,
    REFUSAL,
    ConnectionCount,
    ConnectionLimits,
)
from accrochage.api.errors import error_response, shown_path
from accrochage.streams.log_lines import LinesEvery

DEFAULT_HEAD_SECONDS = DEFAULT_BODY_SECONDS
FIRST_BYTE_SECONDS = 10.0
"""How long a new connection may stay silent: one that sends nothing holds a file for
nothing (the head deadline, `api.body_timeout`, runs from its first byte on)."""

log = logging.getLogger("accrochage.api")

REFUSED_REQUESTS_LOGGED_EVERY = 60.0
"""Seconds between two lines of one kind of request refused before the API (malformed, or
its head too slow) or of an unreadable body: the rest counted into the next."""
Handler = Callable[[BaseRequest], Awaitable[web.StreamResponse]]


ACCESS_LOG = web.AppKey("access_log", str)
"""The app's `api.access_log`: "all", "errors" or "off"."""


class AccessLog(AbstractAccessLogger):
    """Address, method and path, status, size, duration: never a header (aiohttp's default
    logs the Referer and User-Agent, which a client fills as it likes), nor the query string
    (a token sent there by mistake, or whatever a client puts in it): its presence only."""

    errors_only = False

    def log(self, request: BaseRequest, response: web.StreamResponse, time: float) -> None:
        if self.errors_only and response.status < HTTPStatus.BAD_REQUEST:
            return
        query = "?…" if request.query_string else ""
        self.logger.info(
            '%s "%s %s%s HTTP/%d.%d" %d %s %.6fs',
            request.remote,
            request.method,
            shown_path(request),
            query,
            request.version.major,
            request.version.minor,
            response.status,
            response.body_length,
            time,
        )


class ErrorsAccessLog(AccessLog):
    """The answers of status 400 and above only (`api.access_log = "errors"`)."""

    errors_only = True


def code_for(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "http_error"


class JsonErrorHandler(RequestHandler):
    """aiohttp's handler, with the JSON error shape and a deadline for each request's head:
    aiohttp waits for a head for ever once its first bytes came (its keep-alive timer only
    closes a connection that sends nothing), so a client that opens connections, or keeps
    them alive, and trickles their headers would hold them all."""

    __slots__ = ("_client", "_counted", "_head_deadline", "_head_seconds", "_silent")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Counted, or answered 503 and closed when the service holds as many connections as
        it may (`ConnectionCount`); a connection that sends nothing is closed after
        `FIRST_BYTE_SECONDS`."""
        self._silent = False
        self._head_deadline: asyncio.TimerHandle | None = None
        self._counted: ConnectionCount | None = None
        self._client = _client_of(transport)
        count: ConnectionCount | None = getattr(self._manager, "count", None)
        if count is not None and not count.admit(self._client):
            self._manager = None  # aiohttp's connection_lost then has nothing to undo
            cast(asyncio.WriteTransport, transport).write(REFUSAL)
            transport.close()
            return
        self._counted = count
        super().connection_made(transport)
        self._head_seconds: float = getattr(self._manager, "head_seconds", DEFAULT_HEAD_SECONDS)
        self._silent = True
        self._arm_head_deadline(min(FIRST_BYTE_SECONDS, self._head_seconds))

    def data_received(self, data: bytes) -> None:
        if data and self._silent:
            self._silent = False
            if self._head_deadline is not None:  # its head now has api.body_timeout to come
                self._head_deadline.cancel()
                self._head_deadline = None
        super().data_received(data)
        if self._head_arrived():
            if self._head_deadline is not None:
                self._head_deadline.cancel()
                self._head_deadline = None
        elif data and self._head_deadline is None:
            self._arm_head_deadline()  # the first bytes of the next request's head

    def _arm_head_deadline(self, seconds: float | None = None) -> None:
        seconds = self._head_seconds if seconds is None else seconds
        self._head_deadline = self._loop.call_later(seconds, self._head_late, seconds)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None
        if self._counted is not None:
            self._counted.release(self._client)
            self._counted = None
        super().connection_lost(exc)

    def _head_arrived(self) -> bool:
        return bool(self._messages) or self._request_in_progress

    def _head_late(self, seconds: float) -> None:
        self._head_deadline = None
        if not self._head_arrived():
            if self._silent:
                log.debug("HTTP: a connection sent nothing within %g s: closed", seconds)
            else:
                self._say(
                    "late head",
                    "HTTP: no whole request head within %g s (api.body_timeout): closed",
                    seconds,
                )
            self.force_close()

    def _say(self, key: str, line: str, *args: object) -> None:
        """`line` at INFO, once a minute at most for its `key` (a client sending malformed
        requests, or trickling heads, in a loop makes no line each), saying how many since."""
        lines: LinesEvery | None = getattr(self._manager, "lines", None)
        count = 1 if lines is None else lines.due(key)
        if count is None:
            return
        many = f" ({count} such since the last line)" if count > 1 else ""
        log.info(line + "%s", *args, many)

    def log_exception(self, *args: Any, **kwargs: Any) -> None:
        """aiohttp's own exception logs, without the message nor the traceback's values."""
        error = kwargs.get("exc_info")
        kind = _kind(error if isinstance(error, BaseException) else None)
        self.logger.error(*(args or ("aiohttp error",)))
        self.logger.error("aiohttp: the error above was a %s", kind)

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status >= 500:
            log.error("HTTP %d before the request reached the API (%s)", status, _kind(exc))
        else:
            kind = _kind(exc)
            self._say(f"{status} {kind}", "HTTP %d: malformed request refused (%s)", status, kind)
        if request.writer is not None and request.writer.output_size > 0:
            raise ConnectionError("the response has started: cannot send an error response")
        reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else ""
        response = error_response(
            status,
            code_for(status),
            f"{reason or 'error'}: the request could not be read as HTTP; check its request "
            "line, headers (no control characters) and body encoding",
        )
        response.force_close()
        return response


def _client_of(transport: asyncio.BaseTransport) -> str | None:
    """The peer's address (its host, not its port): what one client's share is counted by."""
    peer = transport.get_extra_info("peername")
    return str(peer[0]) if isinstance(peer, tuple) and peer else None


def _kind(exc: BaseException | None) -> str:
    """The error's class only: its message may quote a header or a value."""
    return type(exc).__name__ if exc is not None else "no detail"


class JsonErrorServer(Server):
    head_seconds: float = DEFAULT_HEAD_SECONDS
    """How long a connection may take to send its first request's head."""
    count: ConnectionCount | None = None
    """The open connections, bounded (`api.max_connections`)."""
    lines: LinesEvery | None = None
    """The lines of refused requests, each kind once a minute at most."""

    def __call__(self) -> RequestHandler:
        return JsonErrorHandler(self, loop=self._loop, **self._kwargs)


class ApiRunner(web.AppRunner):
    """An AppRunner whose connections answer HTTP-level errors in the JSON error shape, and
    close when their first request's head is not whole within the app's body timeout."""

    __slots__ = ("_head_seconds", "_limits")

    def __init__(self, app: web.Application, **kwargs: Any) -> None:
        logged = app.get(ACCESS_LOG, "all")
        if logged == "off":
            kwargs["access_log"] = None
        kwargs.setdefault("access_log_class", ErrorsAccessLog if logged == "errors" else AccessLog)
        kwargs["auto_decompress"] = False  # the handlers decode bodies (`api/bodies.py`)
        super().__init__(app, **kwargs)
        self._head_seconds = app.get(BODY_SECONDS, DEFAULT_HEAD_SECONDS)
        """The app's `api.body_timeout`: a request's head, like its body, arrives by then."""
        self._limits = app.get(CONNECTIONS, ConnectionLimits())

    async def _make_server(self) -> Server:
        server = await super()._make_server()
        server.__class__ = JsonErrorServer
        assert isinstance(server, JsonErrorServer)
        server.head_seconds = self._head_seconds
        server.count = ConnectionCount(self._limits)
        server.lines = LinesEvery(REFUSED_REQUESTS_LOGGED_EVERY)
        server.request_handler = _shaped(server.request_handler)
        return server


EXPECTATION_FAILED = 417
EXPECT_MESSAGE = (
    "Expect: this service understands 100-continue only: leave the header out, or send "
    "Expect: 100-continue"
)


def _shaped(handler: Handler) -> Handler:
    """The app's handler, an HTTP error raised outside its middlewares answered in the JSON
    error shape: aiohttp answers `Expect` before any middleware runs, and an expectation
    other than 100-continue was `417` as text ("Unknown Expect: ..."), on every route."""

    async def handle(request: BaseRequest) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400 or exc.content_type == "application/json":
                raise
            said = EXPECT_MESSAGE if exc.status == EXPECTATION_FAILED else exc.reason
            response = error_response(exc.status, code_for(exc.status), said)
            response.force_close()  # a body the client may be sending was not invited
            return response

    return handle
