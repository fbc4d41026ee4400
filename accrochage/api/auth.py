"""Who may call what: the operator's token opens every route, an exam platform's ingest
token opens only the ingestion routes (for the certifiers it is scoped to, when it is; a
scoped one also reads those certifiers' records, `api/platform_view.py`), `/health` is open.

A token comes as `Authorization: Bearer <token>` or as the password of HTTP Basic (so that a
browser can open the pages); never in a query string. Tokens are compared in constant time.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Sequence

from aiohttp import web
from pydantic import SecretStr

from accrochage.api.errors import OPERATOR, Check, error_response
from accrochage.models.scope import Scope
from accrochage.settings.api import OPERATOR_SENDER, sender_name

IngestToken = tuple[SecretStr, Scope]
"""An ingest token and the certifiers it may send events for (None: any)."""
SCOPE = web.RequestKey("scope", frozenset)
"""Set on a request authenticated by a scoped ingest token: the certifiers it sends for."""
SENDER = web.RequestKey("sender", str)
"""Which ingest token sent the request (its place in `api.ingest_tokens`, never its value):
what one sender's share of the service is counted by."""
OPEN_ROUTES = frozenset({("GET", "/health"), ("HEAD", "/health")})
INGEST_ROUTES = frozenset({("POST", "/events"), ("POST", "/check")})
PLATFORM_READS = frozenset(
    {("GET", "/records"), ("GET", "/records/{record_id}"), ("GET", "/changes")}
)
"""Routes a scoped ingest token may read, for its certifiers (by the route's pattern)."""
DESCRIPTION = ("GET", "/openapi.json")
"""What every ingest token may read: the routes' description, no data."""
REALM = 'Basic realm="accrochage", charset="UTF-8"'


def presented_token(header: str) -> str | None:
    """The token of an Authorization header (Bearer, or Basic's password), or None."""
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except ValueError:  # not base64 (binascii.Error), not ASCII text, not UTF-8
            return None
        return decoded.partition(":")[2] or None
    return None


def matches(presented: str, tokens: Sequence[SecretStr]) -> bool:
    return matching(presented, [(token, None) for token in tokens]) is not None


def matching(presented: str, tokens: Sequence[IngestToken]) -> IngestToken | None:
    """The token `presented` is, compared with every one in constant time; None: none."""
    given = presented.encode("utf-8", "replace")
    found = None
    for token in tokens:
        if hmac.compare_digest(given, token[0].get_secret_value().encode()):
            found = token
    return found


def sender_of(request: web.Request) -> str:
    """The request's sender: an ingest token's place, or "operator" (its token, or none)."""
    sender: str = request.get(SENDER, OPERATOR_SENDER)
    return sender


def scope_of(request: web.Request) -> Scope:
    """The certifiers the request's sender may send events for; None: any."""
    return request.get(SCOPE)


def _method(request: web.Request) -> str:
    """The request's method, a HEAD as the GET it asks the head of (aiohttp answers HEAD on
    every GET route: a platform's HEAD of its own record was 403 while its GET was not)."""
    return "GET" if request.method == "HEAD" else request.method


def _reads(request: web.Request) -> bool:
    resource = getattr(request.match_info.route, "resource", None)
    pattern = resource.canonical if resource is not None else None
    return (_method(request), pattern) in PLATFORM_READS


def _place(token: IngestToken, tokens: Sequence[IngestToken]) -> int:
    return next(i for i, candidate in enumerate(tokens) if candidate is token)


def auth_check(operator: SecretStr, ingest: Sequence[IngestToken]) -> Check:
    """The refusal (401, 403) of a request its token does not open, or None; sets who sent
    it on the request (`OPERATOR`, `SENDER`, `SCOPE`)."""
    operators = [operator] if operator.get_secret_value() else []
    ingesters = [t for t in ingest if t[0].get_secret_value()]

    def refusal(request: web.Request) -> web.Response | None:
        if isinstance(
            request.match_info.http_exception, (web.HTTPMethodNotAllowed, web.HTTPNotFound)
        ):
            # 405 and its Allow, 404 for a path no route matches: the routes are no secret,
            # and a platform posting to `/events/` was told to use the operator's token.
            return None
        route = (request.method, request.path)
        presented = presented_token(request.headers.get("Authorization", ""))
        operating = presented is not None and matches(presented, operators)
        platform = None if operating or presented is None else matching(presented, ingesters)
        if operating or (not operators and platform is None):
            request[OPERATOR] = True
        if route in OPEN_ROUTES:
            return None
        ingesting = route in INGEST_ROUTES
        if not operators and not (ingesting and ingesters):
            return None  # no token for this route (a loopback-only service)
        if operating:
            return None
        scoped_read = platform is not None and platform[1] is not None and _reads(request)
        described = (_method(request), request.path) == DESCRIPTION
        if platform is not None and (ingesting or scoped_read or described):
            request[SENDER] = sender_name(_place(platform, ingest) + 1)
            if platform[1] is not None:
                request[SCOPE] = platform[1]
            return None
        if platform is not None:
            return error_response(
                403,
                "forbidden",
                "an ingest token may only POST /events and /check and GET /openapi.json (one "
                "scoped to certifiers also GET /records, /records/{record_id} and /changes); "
                "use the operator's api.token",
            )
        response = error_response(
            401,
            "unauthorized",
            "send Authorization: Bearer <token> (the operator's api.token; an exam "
            "platform's api.ingest_tokens for POST /events and /check, and, scoped to "
            "certifiers, GET /records); in a browser, log in with any user name and the "
            "operator's api.token as password",
        )
        response.headers["WWW-Authenticate"] = REALM
        return response

    return refusal
