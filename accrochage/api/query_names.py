"""Query parameters a route does not define are refused, not ignored.

A script asking `GET /unusable?certifier=beta` for one certifier's part got every
certifier's entries, raw personal data included, and took them for beta's. Each route's
parameters are those docs/openapi.json gives it (`api/openapi.py`): the document and the
service cannot disagree.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from accrochage.api.errors import ApiError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def documented(document: Mapping[str, Any]) -> dict[tuple[str, str], frozenset[str]]:
    """(METHOD, path template) -> the names of its query parameters."""
    return {
        (method.upper(), path): frozenset(
            p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"
        )
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    }


def known_query_names(known: Mapping[tuple[str, str], frozenset[str]]) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        resource = request.match_info.route.resource
        if request.query and resource is not None:
            method = "GET" if request.method == "HEAD" else request.method
            allowed = known.get((method, resource.canonical))
            if allowed is not None:
                unknown = sorted(set(request.query) - allowed)
                if unknown:
                    raise ApiError(
                        400,
                        "bad_parameter",
                        f"{request.method} {resource.canonical} takes no parameter "
                        f"{', '.join(repr(n[:40]) for n in unknown[:5])}; it takes: "
                        f"{', '.join(sorted(allowed)) or 'none'} (docs/openapi.json)",
                    )
        return await handler(request)

    return middleware
