"""Who may call what: the operator's token opens every route, an exam platform's ingest
token opens only the ingestion routes, `/health` is open.

A token comes as `Authorization: Bearer <token>` or as the password of HTTP Basic (so that a
browser can open the pages); never in a query string. Tokens are compared in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Sequence

from aiohttp import web
from aiohttp.typedefs import Middleware
from pydantic import SecretStr

from accrochage.api.errors import Handler, error_response

OPEN_ROUTES = frozenset({("GET", "/health"), ("HEAD", "/health")})
INGEST_ROUTES = frozenset({("POST", "/events"), ("POST", "/check")})
REALM = 'Basic realm="accrochage", charset="UTF-8"'


def presented_token(header: str) -> str | None:
    """The token of an Authorization header (Bearer, or Basic's password), or None."""
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2] or None
    return None


def matches(presented: str, tokens: Sequence[SecretStr]) -> bool:
    given = presented.encode("utf-8", "replace")
    found = False
    for token in tokens:
        found |= hmac.compare_digest(given, token.get_secret_value().encode())
    return found


def auth_middleware(operator: SecretStr, ingest: Sequence[SecretStr]) -> Middleware:
    operators = [operator] if operator.get_secret_value() else []
    ingesters = [t for t in ingest if t.get_secret_value()]

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        route = (request.method, request.path)
        if route in OPEN_ROUTES:
            return await handler(request)
        allowed = operators + ingesters if route in INGEST_ROUTES else operators
        if not allowed:  # no token configured for this route (a loopback-only service)
            return await handler(request)
        presented = presented_token(request.headers.get("Authorization", ""))
        if presented is not None and matches(presented, allowed):
            return await handler(request)
        if presented is not None and matches(presented, ingesters):
            return error_response(
                403,
                "forbidden",
                "an ingest token may only POST /events and /check; use the operator's api.token",
            )
        response = error_response(
            401,
            "unauthorized",
            "send Authorization: Bearer <token> (api.token; api.ingest_tokens for "
            "POST /events and /check)",
        )
        response.headers["WWW-Authenticate"] = REALM
        return response

    return check
