"""One JSON error shape for the whole API: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from accrochage.errors import AccrochageError

log = logging.getLogger("accrochage.api")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(AccrochageError):
    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.details = details


def error_response(status: int, code: str, message: str, details: Any = None) -> web.Response:
    return web.json_response(
        {"error": {"code": code, "message": message, "details": details}}, status=status
    )


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.code, str(exc), exc.details)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = exc.reason.lower().replace(" ", "_")
        return error_response(exc.status, code, exc.text or exc.reason)
    except AccrochageError as exc:
        return error_response(400, exc.code, str(exc))
    except Exception:
        log.exception("unexpected error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "unexpected error; see the service log")


def auth_middleware(token: str) -> Middleware:
    expected = f"Bearer {token}"

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if token and request.headers.get("Authorization", "") != expected:
            return error_response(
                401, "unauthorized", "send Authorization: Bearer <api.token> with every request"
            )
        return await handler(request)

    return check
