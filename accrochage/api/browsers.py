"""Requests a web page sent on someone else's behalf: refused before anything else is read.

An exam platform's server, a script, `curl` send neither `Origin` nor `Sec-Fetch-Site`;
a browser sends them. Two attacks go through a browser:

- *Cross-site forgery*: a page of another site posts to the service (a form, a `no-cors`
  fetch), and the browser adds the operator's HTTP Basic credentials it keeps for `/ui`. A
  request whose `Origin` is not the service's own, or that the browser marks `cross-site` or
  `same-site` (a sibling host), is `403 cross_site`.
- *DNS rebinding*: a page's host name is made to resolve to 127.0.0.1; to the browser the
  service is then that page's own origin, and a service without a token (loopback only) would
  answer it. Without `api.token`, a request addressed (`Host`) to any name but a loopback one is
  `421 misdirected`. With a token the browser holds no credential for that name: nothing to do.

`GET /health` stays open to anything, as it is without a token.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Middleware

from accrochage.api.auth import OPEN_ROUTES
from accrochage.api.errors import Handler, error_response

DEFAULT_PORTS = {"http": 80, "https": 443}
FOREIGN_FETCH_SITES = frozenset({"cross-site", "same-site"})


def _host_and_port(authority: str) -> tuple[str, int | None] | None:
    """`host[:port]` (`[v6]:port` too), lowercased; None: not one."""
    try:
        parts = urlsplit("//" + authority)
        return (parts.hostname or "").rstrip("."), parts.port
    except ValueError:
        return None


def same_origin(origin: str, host: str) -> bool:
    """Whether `Origin` names the authority the request was addressed to (`Host`). A port
    left out on one side is its scheme's default (a reverse proxy passing `Host` unchanged)."""
    try:
        parts = urlsplit(origin)
        origin_port = parts.port
    except ValueError:
        return False
    addressed = _host_and_port(host)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or addressed is None:
        return False
    name, port = addressed
    if parts.hostname.rstrip(".") != name:
        return False
    default = DEFAULT_PORTS[parts.scheme]
    return (origin_port or default) == (port or default)


def is_loopback_name(host: str) -> bool:
    addressed = _host_and_port(host)
    if addressed is None:
        return False
    name = addressed[0]
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def why_foreign(request: web.Request, tokenless: bool) -> web.Response | None:
    """The refusal of a request a web page sent for another site, or None."""
    site = request.headers.get("Sec-Fetch-Site", "").strip().lower()
    origin = request.headers.get("Origin")
    if site in FOREIGN_FETCH_SITES or (
        origin is not None and not same_origin(origin, request.host)
    ):
        return error_response(
            403,
            "cross_site",
            "a request a web page of another site sent is refused: call the service from a "
            "server or a script (they send no Origin header), or open its own pages",
        )
    if tokenless and not is_loopback_name(request.host):
        return error_response(
            421,
            "misdirected",
            "without api.token the service answers requests addressed to localhost or a "
            "loopback address only: use http://127.0.0.1:<port>/, or set api.token",
        )
    return None


def same_site_middleware(tokenless: bool) -> Middleware:
    """`tokenless`: no `api.token` is set (the service binds to a loopback address)."""

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if (request.method, request.path) not in OPEN_ROUTES:
            refused = why_foreign(request, tokenless)
            if refused is not None:
                return refused
        return await handler(request)

    return check
