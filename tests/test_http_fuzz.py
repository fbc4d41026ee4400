"""A property-based fuzz of the HTTP API (hypothesis): thousands of generated requests.

Whatever the method, path, query, headers and body: never a 5xx, every error in the one JSON
shape, the service healthy afterwards, and every event it acknowledged stored. The service is
the real one (`build_service`), on loopback, in a thread of its own; requests go through
plain sockets (http.client), each on a new connection.
"""

from __future__ import annotations

import asyncio
import faulthandler
import http.client
import json
import sqlite3
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accrochage.api.protocol import ApiRunner
from accrochage.app import Core
from accrochage.runtimes.embedded import build_service
from tests.test_http import core_for, recent

EXAMPLES = 120
REQUESTS_PER_EXAMPLE = 25
ROUTES = ["/events", "/records", "/records/FZ-1", "/batches", "/summary", "/unusable", "/health"]
PAGES = ("/", "/ui", "/metrics")
"""Routes that answer in HTML or text, not JSON (their errors are JSON all the same)."""
REQUEST_TIMEOUT = 60
STACKS_AFTER = 30
PARAMS = ["limit", "due_within", "as_of", "cursor", "status", "certifier", "overdue", "state"]


class Service:
    """The embedded service's app served from a thread with its own event loop."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.port = 0
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)
        self.acknowledged: set[str] = set()
        self.requests = 0

    def __enter__(self) -> Service:
        self._thread.start()
        assert self._ready.wait(60), "the service did not start"
        return self

    def __exit__(self, *_: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        from aiohttp import web

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        runner = ApiRunner(build_service(self.core, timer=False))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = runner.addresses[0][1]
        self._ready.set()
        await self._stop.wait()
        await runner.cleanup()

    def request(
        self, method: str, target: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        self.requests += 1
        # A request still unanswered after STACKS_AFTER seconds: every thread's stack goes
        # to stderr (shown with the failure), to tell where the service waited.
        faulthandler.dump_traceback_later(STACKS_AFTER, exit=False)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT)
        try:
            conn.request(method, target, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, data
        except TimeoutError:
            raise AssertionError(
                f"no answer in {REQUEST_TIMEOUT} s to {method} {target} {headers} "
                f"body={body!r:.400}"
            ) from None
        finally:
            faulthandler.cancel_dump_traceback_later()
            conn.close()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    core = core_for(tmp_path_factory.mktemp("fuzz"), api={"max_events_per_request": 20})
    try:
        with Service(core) as running:
            yield running
    finally:
        core.close()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=12,
)
EVENT_FIELDS = list(recent("FZ").keys())


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    """The contract's example with a few fields replaced by anything, under a drawn id."""
    event = recent(f"FZ-{draw(st.integers(0, 400))}")
    for name in draw(st.lists(st.sampled_from(EVENT_FIELDS), max_size=3, unique=True)):
        if name != "record_id":
            event[name] = draw(json_values)
    if isinstance(event.get("holder"), dict) and draw(st.booleans()):
        event["holder"]["birth_name"] = draw(st.text(min_size=1, max_size=80))
    return event


bodies = st.one_of(
    st.none(),
    events().map(lambda e: json.dumps(e).encode()),
    st.lists(events(), min_size=1, max_size=25).map(lambda es: json.dumps(es).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=300),
    st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
)
queries = st.dictionaries(
    st.sampled_from(PARAMS) | st.text(min_size=1, max_size=8),
    st.text(max_size=30) | st.dates().map(str) | st.integers(-5, 10**12).map(str),
    max_size=4,
)
paths = st.sampled_from(ROUTES) | st.text(max_size=30).map(
    lambda t: "/" + urllib.parse.quote(t, safe="")
)
headers = st.fixed_dictionaries(
    {},
    optional={
        "Content-Type": st.sampled_from(["application/json", "text/plain", "x/y; charset=latin-1"]),
        "Content-Encoding": st.sampled_from(["identity", "gzip", "deflate", "x-unknown"]),
        "Accept": st.sampled_from(["*/*", "text/html", "application/json"]),
    },
)
anything = st.tuples(
    st.sampled_from(["GET", "POST", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]),
    paths,
    queries,
    bodies,
    headers,
)
postings = st.tuples(
    st.just("POST"),
    st.just("/events"),
    st.just({}),
    events().map(lambda e: json.dumps(e).encode())
    | st.lists(events(), min_size=1, max_size=25).map(lambda es: json.dumps(es).encode()),
    st.just({"Content-Type": "application/json"}),
)
requests = anything | postings


def check(
    service: Service, method: str, path: str, query: dict[str, str], body: Any, head: dict[str, str]
) -> None:
    target = path + ("?" + urllib.parse.urlencode(query) if query else "")
    status, answer_headers, data = service.request(method, target, body, head)
    assert status < 500, (method, target, status, data[:300])
    if method == "HEAD":
        return
    if status < 400 and path in PAGES:
        return
    assert answer_headers.get("content-type", "").startswith("application/json"), (status, data)
    document = json.loads(data)
    is_events = method == "POST" and path == "/events"
    if is_events and status == 422:  # one event refused: the event's answer (CONTRACT §4)
        assert {"record_id", "status", "errors", "warnings"} <= set(document), document
        if document["status"] is not None:
            service.acknowledged.add(document["record_id"])
        return
    if status >= 400:
        assert set(document) == {"error"}, document
        assert set(document["error"]) == {"code", "message", "details"}
        assert isinstance(document["error"]["code"], str)
        return
    if is_events:
        results = document if isinstance(document, list) else [document]
        for result in results:
            if result.get("status") is not None and result.get("http_status", 200) < 500:
                service.acknowledged.add(result["record_id"])


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(requests, min_size=REQUESTS_PER_EXAMPLE // 2, max_size=REQUESTS_PER_EXAMPLE))
def test_no_request_gets_a_5xx_or_an_error_out_of_shape(
    service: Service, batch: list[tuple[str, str, dict[str, str], Any, dict[str, str]]]
) -> None:
    for method, path, query, body, head in batch:
        check(service, method, path, query, body, head)


def test_after_the_fuzz_the_service_is_healthy_and_kept_every_acknowledged_event(
    service: Service,
) -> None:
    status, _, data = service.request("GET", "/health", None, {})
    assert (status, json.loads(data)) == (200, {"status": "ok"})
    conn = sqlite3.connect(service.core.settings.paths.state, timeout=10)
    try:
        stored = {r[0] for r in conn.execute("SELECT record_id FROM records")}
    finally:
        conn.close()
    print(f"fuzz: {service.requests} requests, {len(service.acknowledged)} events acknowledged")
    assert service.requests >= 1000, "the fuzz sent too few requests to mean anything"
    assert service.acknowledged, "the fuzz acknowledged no event: it tested nothing"
    assert service.acknowledged <= stored
    assert Path(service.core.settings.paths.state).exists()
