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

A top-level navigation (`GET` or `HEAD` of a document: a link to `/ui` in a mail or another
site's page) is let through: it changes nothing, and the page that linked cannot read it.
Behind a reverse proxy, the proxy must pass the client's `Host` and, when it ends TLS,
`Forwarded: proto=https` or `X-Forwarded-Proto` (README, "Behind a reverse proxy"): `Origin`
is compared with them.
A header a browser sends once (`Origin`, `Sec-Fetch-Site`, `Host`) given twice, or an `Origin`
or `Host` holding what a browser never puts there (a user, a path), is refused as well.

`GET /health` stays open to anything, as it is without a token.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import SplitResult, urlsplit

from aiohttp import web

from accrochage.api.auth import OPEN_ROUTES
from accrochage.api.errors import Check, error_response

DEFAULT_PORTS = {"http": 80, "https": 443}
FOREIGN_FETCH_SITES = frozenset({"cross-site", "same-site"})
NAVIGATION_METHODS = frozenset({"GET", "HEAD"})
NOT_IN_AN_AUTHORITY = frozenset("@/?#\\")
ONCE = ("Origin", "Sec-Fetch-Site", "Sec-Fetch-Mode", "Sec-Fetch-Dest", "Host")


def _host_and_port(authority: str) -> tuple[str, int | None] | None:
    """`host[:port]` (`[v6]:port` too), lowercased; None: not one (a user, a path...)."""
    if NOT_IN_AN_AUTHORITY & set(authority):
        return None
    try:
        parts = urlsplit("//" + authority)
        return (parts.hostname or "").rstrip("."), parts.port
    except ValueError:
        return None


def _origin(origin: str) -> SplitResult | None:
    """An `Origin` as browsers send it (`scheme://host[:port]`, nothing more), or None."""
    try:
        parts = urlsplit(origin)
        _ = parts.port  # a port out of range raises ValueError
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    if _host_and_port(parts.netloc) is None or parts.path or parts.query or parts.fragment:
        return None
    return parts


def same_origin(origin: str, host: str, schemes: frozenset[str]) -> bool:
    """Whether `Origin` names the authority the request was addressed to (`Host`) with a
    scheme it came by (`schemes`). A port left out on one side is its scheme's default (a
    reverse proxy passing `Host` unchanged)."""
    parts = _origin(origin)
    addressed = _host_and_port(host)
    if parts is None or addressed is None or parts.scheme not in schemes:
        return False
    name, port = addressed
    if (parts.hostname or "").rstrip(".") != name:
        return False
    default = DEFAULT_PORTS[parts.scheme]
    return (parts.port or default) == (port or default)


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


def schemes_of(request: web.Request) -> frozenset[str]:
    """The scheme the request came by: the one the reverse proxy the client reached names
    (`Forwarded: proto=`, RFC 7239, else `X-Forwarded-Proto`; the first value of either:
    proxies in a chain append theirs), else its own. Behind a proxy that ends TLS, a page
    served over plain HTTP under the same name (a network in the middle) is not the
    service's. A web page cannot set these headers without the browser asking the service
    first, which it never allows."""
    headers = request.headers
    named = forwarded_proto(headers.getall("Forwarded", []))
    if named is None:
        forwarded = [v for h in headers.getall("X-Forwarded-Proto", []) for v in h.split(",")]
        named = forwarded[0].strip().lower() if forwarded else ""
    return frozenset({named} & DEFAULT_PORTS.keys()) or frozenset({request.scheme})


FORWARDED_PAIR = re.compile(r'\s*([^=;,\s]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;,]*?)\s*([;,]|$)')
"""One `name=value` of a `Forwarded` header (RFC 7239 §4), the value a token or a quoted
string (which may hold `;` and `,`: `for="[2001:db8::1]:4711"`), and what ends it."""


def forwarded_proto(headers: list[str]) -> str | None:
    """The `proto` of the first element of `Forwarded` (the proxy the client reached, in
    lower case), or None when it names none or cannot be read."""
    if not headers:
        return None
    text, position = headers[0], 0
    while position < len(text):
        pair = FORWARDED_PAIR.match(text, position)
        if pair is None or pair.end() == position:
            return None
        name, value, ending = pair.groups()
        if name.lower() == "proto":
            return value.strip('"').lower()
        if ending != ";":
            return None
        position = pair.end()
    return None


def _is_navigation(request: web.Request) -> bool:
    """A top-level navigation to a page: a link followed, an address typed."""
    headers = request.headers
    return (
        request.method in NAVIGATION_METHODS
        and headers.get("Sec-Fetch-Mode", "").strip().lower() == "navigate"
        and headers.get("Sec-Fetch-Dest", "document").strip().lower() == "document"
    )


def _is_forged(request: web.Request) -> bool:
    headers = request.headers
    if any(len(headers.getall(name, [])) > 1 for name in ONCE):
        return True
    site = headers.get("Sec-Fetch-Site", "").strip().lower()
    if (site in FOREIGN_FETCH_SITES or "," in site) and not _is_navigation(request):
        return True
    origin = headers.get("Origin")
    return origin is not None and not same_origin(
        origin, headers.get("Host", ""), schemes_of(request)
    )


def why_foreign(request: web.Request, tokenless: bool) -> web.Response | None:
    """The refusal of a request a web page sent for another site, or None."""
    if (request.method, request.path) in OPEN_ROUTES:
        return None
    if _is_forged(request):
        return error_response(
            403,
            "cross_site",
            "a request a web page of another site sent is refused: call the service from a "
            "server or a script (they send no Origin header), or open its own pages. Behind "
            "a reverse proxy, have it pass the Host header and X-Forwarded-Proto (or Forwarded)",
        )
    host = request.headers.get("Host")
    if tokenless and host is not None and not is_loopback_name(host):
        # No Host at all is HTTP/1.0 from a script: browsers always send one.
        return error_response(
            421,
            "misdirected",
            "without api.token the service answers requests addressed to localhost or a "
            "loopback address only: use http://127.0.0.1:<port>/, or set api.token",
        )
    return None


def same_site_check(tokenless: bool) -> Check:
    """`tokenless`: no `api.token` is set (the service binds to a loopback address)."""

    def refusal(request: web.Request) -> web.Response | None:
        return why_foreign(request, tokenless)

    return refusal
