"""Requests a web page sends on someone else's behalf (`api/browsers.py`), and bodies that are
not declared as JSON (`api/bodies.py`): refused before anything is stored.

A page of another site may post to the service with the operator's HTTP Basic credentials
its browser keeps for `/ui` (cross-site forgery), and a page whose host name is made to resolve
to 127.0.0.1 reads a tokenless service as its own origin (DNS rebinding)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDict

from accrochage.api import health
from accrochage.api.browsers import forwarded_proto, is_loopback_name, same_origin
from accrochage.api.errors import Handler
from accrochage.api.protocol import ApiRunner
from accrochage.app import Core
from accrochage.errors import StoreBusyError
from accrochage.runtimes.embedded import build_service
from tests.conftest import require
from tests.support.browser import chromium, chromium_path
from tests.test_http import TIMEOUT, core_for, recent

TOKEN = "b" * 40
BEARER = {"Authorization": f"Bearer {TOKEN}"}
BASIC = {"Authorization": "Basic " + base64.b64encode(f"operator:{TOKEN}".encode()).decode()}
JSON = {"Content-Type": "application/json"}
Seen = list[tuple[str, str, str | None, int]]


@asynccontextmanager
async def serving(core: Core, seen: Seen | None = None) -> AsyncIterator[str]:
    """The service on 127.0.0.1:<free port>; `seen` gets each request's method, path, Origin
    and answer's status (what reached the service, whatever the client could read of it)."""
    app = build_service(core, timer=False)
    if seen is not None:

        @web.middleware
        async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
            response = await handler(request)
            seen.append(
                (request.method, request.path, request.headers.get("Origin"), response.status)
            )
            return response

        app.middlewares.insert(0, record)
    async with on_loopback(ApiRunner(app)) as port:
        yield f"http://127.0.0.1:{port}"


@asynccontextmanager
async def on_loopback(runner: web.AppRunner) -> AsyncIterator[int]:
    """`runner`'s app served on 127.0.0.1:<free port>, that port."""
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await asyncio.wait_for(runner.cleanup(), timeout=30)


async def call(
    base: str, method: str, path: str, body: Any = None, **headers: str
) -> tuple[int, Any]:
    data = body if body is None or isinstance(body, bytes | str) else json.dumps(body)
    async with (
        aiohttp.ClientSession(timeout=TIMEOUT) as session,
        session.request(method, base + path, data=data, headers=headers) as response,
    ):
        return response.status, await response.json()


def stored(core: Core, record_id: str) -> bool:
    with core.store.reading() as reader:
        return reader.record_detail(record_id, date(2026, 12, 1)) is not None


def kept(core: Core) -> list[Any]:
    """The unusable log."""
    with core.store.reading() as reader:
        return reader.unusable(limit=10)


HTTP = frozenset({"http"})
BEHIND_TLS = frozenset({"http", "https"})


@pytest.mark.parametrize(
    ("headers", "proto"),
    [
        (["for=192.0.2.60;proto=https;by=203.0.113.43"], "https"),
        (["proto=HTTPS;for=x, proto=http"], "https"),  # the first element: the client's proxy
        (['for="[2001:db8:cafe::17]:4711";proto=https'], "https"),
        (['for="a,b;c";proto=https'], "https"),  # a quoted string holds what separates
        (['for=x;proto="https"'], "https"),
        (["for=x ; proto = https"], "https"),
        (["for=x;proto=https", "proto=http"], "https"),
        (["for=192.0.2.60, proto=https"], None),  # a later proxy's, not the client's
        (["for=x;;proto=https"], None),
        (["garbage"], None),
        ([], None),
    ],
)
def test_the_scheme_a_proxy_names_in_forwarded(headers: list[str], proto: str | None) -> None:
    assert forwarded_proto(headers) == proto


def test_an_origin_is_the_service_own_only_with_its_host_port_and_scheme() -> None:
    assert same_origin("http://127.0.0.1:8787", "127.0.0.1:8787", HTTP)
    assert same_origin("https://accrochage.example", "Accrochage.example", BEHIND_TLS)
    assert same_origin("https://accrochage.example", "accrochage.example:443", BEHIND_TLS)
    assert same_origin("http://[::1]:8787", "[::1]:8787", HTTP)
    assert not same_origin("http://127.0.0.1:9999", "127.0.0.1:8787", HTTP)
    assert not same_origin("http://localhost:8787", "127.0.0.1:8787", HTTP)
    assert not same_origin("https://accrochage.example", "accrochage.example:80", BEHIND_TLS)
    assert not same_origin("null", "127.0.0.1:8787", HTTP)  # a sandboxed frame, a file: page
    assert not same_origin("http://127.0.0.1:notaport", "127.0.0.1:8787", HTTP)
    assert not same_origin("ftp://127.0.0.1:8787", "127.0.0.1:8787", HTTP)
    # A page served over plain HTTP (a network in the middle) is not the TLS service's own.
    assert not same_origin("https://accrochage.example", "accrochage.example", HTTP)
    assert not same_origin(
        "http://accrochage.example:443", "accrochage.example:443", frozenset({"https"})
    )
    # What a browser never puts in an Origin or a Host.
    for odd in (
        "http://user@127.0.0.1:8787",
        "http://127.0.0.1:8787/",
        "http://127.0.0.1:8787?x",
        "http://127.0.0.1:8787#x",
        "http://127.0.0.1:99999",
    ):
        assert not same_origin(odd, "127.0.0.1:8787", HTTP), odd
    for odd_host in ("user@127.0.0.1:8787", "127.0.0.1:8787/x", "127.0.0.1:8787?x"):
        assert not same_origin("http://127.0.0.1:8787", odd_host, HTTP), odd_host
        assert not is_loopback_name(odd_host), odd_host
    for loopback in ("localhost:8787", "127.0.0.1:8787", "127.9.9.9", "[::1]:8787", "LOCALHOST"):
        assert is_loopback_name(loopback), loopback
    for foreign in ("attacker.example:8787", "10.0.0.1:8787", "localhost.attacker.example", ""):
        assert not is_loopback_name(foreign), foreign


async def test_a_tokenless_service_answers_only_requests_addressed_to_a_loopback_name(
    tmp_path: Path,
) -> None:
    """DNS rebinding: a page of attacker.example, its name now resolving to 127.0.0.1, reads
    the records (names, birth dates, NIR) of a service that needs no token."""
    core = core_for(tmp_path)
    try:
        async with serving(core) as base:
            port = base.rsplit(":", 1)[1]
            foreign = {"Host": f"attacker.example:{port}"}
            status, answer = await call(base, "POST", "/events", recent("DR-1"), **JSON, **foreign)
            assert (status, answer["error"]["code"]) == (421, "misdirected")
            assert "api.token" in answer["error"]["message"]
            assert not stored(core, "DR-1")
            for path in ("/records", "/summary", "/ui"):
                status, answer = await call(base, "GET", path, **foreign)
                assert (status, answer["error"]["code"]) == (421, "misdirected"), path
            assert (await call(base, "GET", "/health", **foreign))[0] == 200
            status, _ = await call(base, "POST", "/events", recent("DR-2"), **JSON)
            assert status == 201
            status, _ = await call(base, "GET", "/records/DR-2", Host=f"localhost:{port}")
            assert status == 200
            # HTTP/1.0 without a Host (a probe, an old client): addressed to the loopback
            # address it arrived on; no browser sends such a request.
            reader, writer = await asyncio.open_connection("127.0.0.1", int(port))
            try:
                writer.write(b"GET /records/DR-2 HTTP/1.0\r\n\r\n")
                answer = await asyncio.wait_for(reader.read(), timeout=30)
            finally:
                writer.close()
            assert answer.startswith(b"HTTP/1.0 200") or answer.startswith(b"HTTP/1.1 200"), answer[
                :200
            ]
    finally:
        core.close()


async def test_a_tokenless_service_tells_a_page_of_another_name_only_its_faults_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`/health` answers any Host, and a tokenless service took every request for the
    operator's: a page whose name resolves to 127.0.0.1 (DNS rebinding) read a fault's whole
    message, the operator's only (the state's path, the process holding it)."""
    fault = StoreBusyError("the state /srv/private/state.db is held by process 4242")
    monkeypatch.setattr(health, "problem", lambda context: fault)
    core = core_for(tmp_path)
    try:
        async with serving(core) as base:
            port = base.rsplit(":", 1)[1]
            status, answer = await call(base, "GET", "/health", Host=f"attacker.example:{port}")
            assert (status, answer["reason"]) == (503, "state_busy")
            assert "/srv/private" not in answer["message"]
            assert "4242" not in answer["message"]
            status, answer = await call(base, "GET", "/health", Host=f"localhost:{port}")
            assert (status, answer["message"]) == (503, str(fault))
    finally:
        core.close()


async def test_with_a_token_any_host_is_answered(tmp_path: Path) -> None:
    """Behind a reverse proxy the Host is the public name; the token is what guards."""
    core = core_for(tmp_path, api={"token": TOKEN})
    try:
        async with serving(core) as base:
            status, _ = await call(base, "GET", "/summary", Host="accrochage.example", **BEARER)
            assert status == 200
    finally:
        core.close()


async def test_a_request_from_another_site_is_refused_with_the_operator_credentials(
    tmp_path: Path,
) -> None:
    core = core_for(tmp_path, api={"token": TOKEN})
    try:
        async with serving(core) as base:
            revoke = {"type": "certification.revoked", "event_id": "x", "record_id": "CS-1"}
            assert (await call(base, "POST", "/events", recent("CS-1"), **JSON, **BEARER))[0] == 201
            for foreign in (
                {"Origin": "https://evil.example"},
                {"Origin": "null"},
                {"Sec-Fetch-Site": "cross-site"},
                {"Sec-Fetch-Site": "same-site"},
            ):
                status, answer = await call(
                    base, "POST", "/events", revoke, **JSON, **BASIC, **foreign
                )
                assert (status, answer["error"]["code"]) == (403, "cross_site"), foreign
                status, answer = await call(base, "GET", "/records/CS-1", **BASIC, **foreign)
                assert status == 403, foreign
            status, record = await call(base, "GET", "/records/CS-1", **BEARER)
            assert record["status"] == "pending", "not withdrawn"
            host = base.removeprefix("http://")
            for odd in (f"http://user@{host}", f"{base}/", f"https://{host}", f"{base}?x"):
                status, _ = await call(base, "POST", "/events", revoke, **JSON, **BASIC, Origin=odd)
                assert status == 403, f"an Origin no browser sends: {odd}"
            for twice in (
                [("Origin", base), ("Origin", "https://evil.example")],
                [("Sec-Fetch-Site", "same-origin"), ("Sec-Fetch-Site", "cross-site")],
                [("Sec-Fetch-Site", "same-origin, cross-site")],
            ):
                headers = CIMultiDict([*JSON.items(), *BASIC.items(), *twice])
                async with (
                    aiohttp.ClientSession(timeout=TIMEOUT) as session,
                    session.post(base + "/events", json=revoke, headers=headers) as response,
                ):
                    assert response.status == 403, f"a header a browser sends once: {twice}"
            status, record = await call(base, "GET", "/records/CS-1", **BEARER)
            assert record["status"] == "pending", "not withdrawn"
            own = {"Origin": base, "Sec-Fetch-Site": "same-origin"}
            status, _ = await call(base, "GET", "/records/CS-1", **BASIC, **own)
            assert status == 200, "the service's own pages are answered"
            # Behind a proxy that ends TLS, the page's origin is https: the proxy says so.
            for proto in ("https", "https, http"):  # a chain of proxies appends its own
                tls = {"Origin": f"https://{host}", "X-Forwarded-Proto": proto}
                status, _ = await call(base, "GET", "/records/CS-1", **BASIC, **tls)
                assert status == 200, f"the proxy's scheme is the service's own: {proto}"
            tls = {"Origin": f"https://{host}", "Forwarded": "for=192.0.2.60;proto=https"}
            status, _ = await call(base, "GET", "/records/CS-1", **BASIC, **tls)
            assert status == 200, "RFC 7239's Forwarded says it as well"
            for proxy in ({"X-Forwarded-Proto": "https"}, {"Forwarded": "proto=https"}):
                plain = {"Origin": f"http://{host}", **proxy}
                status, _ = await call(base, "GET", "/records/CS-1", **BASIC, **plain)
                assert status == 403, f"a plain HTTP page is not the TLS service's: {proxy}"
    finally:
        core.close()


async def test_a_link_from_another_site_opens_the_pages(tmp_path: Path) -> None:
    """A link to `/ui` in a mail or a chat is a cross-site navigation: a top-level `GET`
    changes nothing and its answer goes to the operator's own window, never to the page."""
    core = core_for(tmp_path, api={"token": TOKEN})
    try:
        async with serving(core) as base:
            followed = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}
            async with (
                aiohttp.ClientSession(timeout=TIMEOUT) as session,
                session.get(
                    base + "/ui", headers={**followed, "Sec-Fetch-Dest": "document", **BASIC}
                ) as response,
            ):
                assert response.status == 200
                assert "text/html" in response.headers["Content-Type"]
            framed = {**followed, "Sec-Fetch-Dest": "iframe"}
            status, _ = await call(base, "GET", "/records", **BASIC, **framed)
            assert status == 403, "a frame of another site's page is no link followed"
            form = {**followed, "Sec-Fetch-Dest": "document", "Origin": "https://evil.example"}
            revoke = {"type": "certification.revoked", "event_id": "x", "record_id": "NV-1"}
            status, _ = await call(base, "POST", "/events", revoke, **JSON, **BASIC, **form)
            assert status == 403, "a form posted from another site is no link followed"
            status, _ = await call(base, "GET", "/records", **BASIC, **followed)
            assert status == 200, "a navigation that names no destination is a document's"
    finally:
        core.close()


async def test_a_body_declared_as_anything_but_json_is_415_and_nothing_is_kept(
    tmp_path: Path,
) -> None:
    """text/plain and forms are what a page of another site may post without asking."""
    core = core_for(tmp_path)
    try:
        async with serving(core) as base:
            for declared in (
                "text/plain",
                "text/plain; charset=utf-8",
                "application/x-www-form-urlencoded",
                "multipart/form-data; boundary=x",
                "application/xml",
                "application/json garbage",
                "nonsense",
            ):
                body = recent("MT-1")
                for path in ("/events", "/check", "/correction-requests"):
                    status, answer = await call(
                        base, "POST", path, body, **{"Content-Type": declared}
                    )
                    assert (status, answer["error"]["code"]) == (415, "unsupported_media_type")
                    assert "Content-Type: application/json" in answer["error"]["message"]
            assert not stored(core, "MT-1")
            assert kept(core) == [], "nothing kept: nothing was read"
            for n, declared in enumerate(
                (
                    "application/json",
                    "Application/JSON; charset=utf-8",
                    "application/vnd.x+json",
                    "text/json",
                    "application/octet-stream",
                )
            ):
                status, _ = await call(
                    base, "POST", "/events", recent(f"MT-OK{n}"), **{"Content-Type": declared}
                )
                assert status == 201, declared
            async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
                undeclared = json.dumps(recent("MT-BARE")).encode()
                async with session.post(
                    base + "/events", data=undeclared, skip_auto_headers=["Content-Type"]
                ) as response:
                    assert response.status == 201, "a body sent without a type is read as JSON"
    finally:
        core.close()


async def test_an_empty_body_is_400_and_nothing_is_kept(tmp_path: Path) -> None:
    core = core_for(tmp_path)
    try:
        async with serving(core) as base:
            for body in (b"", b" \r\n"):
                status, answer = await call(base, "POST", "/events", body, **JSON)
                assert (status, answer["error"]["code"]) == (400, "empty_body")
            status, answer = await call(base, "POST", "/events", b"[]", **JSON)
            assert (status, answer["error"]["code"]) == (400, "empty_array")
            assert kept(core) == []
    finally:
        core.close()


async def test_a_latin1_label_reads_windows_1252_text(tmp_path: Path) -> None:
    """A Latin-1 system writes Windows-1252: read as Latin-1, `œ` was a control character and
    the event invalid. The five bytes Windows-1252 leaves undefined stay control characters."""
    core = core_for(tmp_path)
    try:
        async with serving(core) as base:
            event = recent("WL-1")
            event["holder"]["birth_name"] = "Cœur"
            body = json.dumps(event, ensure_ascii=False).encode("cp1252")
            for label in ("ISO-8859-1", "latin1", "us-ascii"):
                declared = {"Content-Type": f"application/json; charset={label}"}
                status, answer = await call(base, "POST", "/events", body, **declared)
                assert status in (200, 201), (label, answer)
            status, record = await call(base, "GET", "/records/WL-1")
            assert record["content"]["holder"]["birth_name"] == "Cœur", record
            undefined = body.replace("Cœur".encode("cp1252"), b"C\x81ur").replace(b"WL-1", b"WL-2")
            declared = {"Content-Type": "application/json; charset=ISO-8859-1"}
            status, answer = await call(base, "POST", "/events", undefined, **declared)
            assert status == 422
            assert [e["field"] for e in answer["errors"]] == ["holder.birth_name"]
            assert "U+0081" in answer["errors"][0]["message"]
    finally:
        core.close()


OWN_POST = """fetch('/events', {method: 'POST', headers: {'Content-Type': 'application/json'},
                      body: JSON.stringify(EVENT)}).then(r => r.status)"""
FORGERY = """<!doctype html><title>waiting</title><script>
const event = %s;
fetch("%s/events", {method: "POST", mode: "no-cors",
                    headers: {"Content-Type": "text/plain"}, body: JSON.stringify(event)})
  .then(() => fetch("%s/events", {method: "POST", mode: "no-cors",
                                  body: new Blob([JSON.stringify(event)])}))
  .then(() => { document.title = "sent"; }, () => { document.title = "failed"; });
</script>"""


async def test_a_page_of_another_site_cannot_post_through_a_real_browser(tmp_path: Path) -> None:
    """Headless Chromium holding the operator's credentials opens a page of another origin
    (http://localhost:<port>, the service being http://127.0.0.1:<port>) that posts an event
    to the service: the requests reach it and are refused; the same browser on the service's
    own origin posts and is answered."""
    require(chromium_path() is not None, "chromium is not installed (scripts/test.sh installs it)")
    (tmp_path / "svc").mkdir()
    core = core_for(tmp_path / "svc", api={"token": TOKEN})
    seen: Seen = []
    try:
        async with (
            serving(core, seen) as base,
            attacking(base) as evil,
            chromium(tmp_path / "profile") as browser,
        ):
            await browser.open(f"{evil}/", BASIC)
            async with asyncio.timeout(30):
                while await browser.evaluate("document.title") == "waiting":
                    await asyncio.sleep(0.1)
            assert await browser.evaluate("document.title") == "sent"
            await browser.open(f"{base}/health", BASIC)  # /ui forbids fetch (its CSP)
            posted = await browser.send(
                "Runtime.evaluate",
                expression=OWN_POST.replace("EVENT", json.dumps(recent("FG-OWN"))),
                awaitPromise=True,
                returnByValue=True,
            )
            own = posted["result"].get("value", posted)
        forged = [(origin, status) for method, _, origin, status in seen if method == "POST"]
        assert forged[:2] == [(evil, 403), (evil, 403)], seen
        assert own == 201, posted
        assert not stored(core, "FG-1")
        assert stored(core, "FG-OWN")
    finally:
        core.close()


@asynccontextmanager
async def attacking(base: str) -> AsyncIterator[str]:
    """A page of another origin (localhost, the service being 127.0.0.1) posting to `base`."""

    async def page(_: web.Request) -> web.Response:
        text = FORGERY % (json.dumps(recent("FG-1")), base, base)
        return web.Response(text=text, content_type="text/html")

    attacker = web.Application()
    attacker.router.add_get("/", page)
    async with on_loopback(web.AppRunner(attacker)) as port:
        yield f"http://localhost:{port}"
