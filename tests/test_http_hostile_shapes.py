"""Events shaped to break the machinery rather than the rules: nested deeper than pickling
goes, integers longer than Python converts, bodies large enough to hold the event loop, heads
that never end. Each costs its own request at most, never another client's answer."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import yarl
from aiohttp import web
from aiohttp.http_exceptions import TransferEncodingError
from aiohttp.test_utils import make_mocked_request

from accrochage.api import intake
from accrochage.api.errors import CLIENT_ERROR_LINES, error_middleware
from accrochage.api.link_groups import NOT_STORABLE, framed
from accrochage.api.protocol import REFUSED_REQUESTS_LOGGED_EVERY
from accrochage.api.writing import NotStorable
from accrochage.app import Core, build_core
from accrochage.models.decode import Decoded, Kind
from accrochage.runtimes.embedded import build_service
from accrochage.settings import load_settings
from accrochage.streams.incoming import Incoming
from accrochage.streams.log_lines import LinesEvery
from tests.factories import revoked_event
from tests.test_http import recent
from tests.test_http_writer_process import rows, serving
from tests.test_tracker import ingest, record, write_config

DEEP = 600
"""Levels of nesting: past what pickle takes (about 500), within what json parses (~960)."""
WAIT = 20.0
"""Seconds the tests wait for what must happen (never reached when they pass)."""


def nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


def deep_event(record_id: str) -> dict[str, Any]:
    built = recent(record_id)
    built["verbatim"] = nested(DEEP)  # after the factory: its deep copy would not go so deep
    return built


@pytest.fixture()
def core(tmp_path: Path) -> Iterator[Core]:
    built = build_core(load_settings(write_config(tmp_path)))
    yield built
    built.close()


async def test_an_event_nested_past_pickling_answers_for_itself_alone(core: Core) -> None:
    """Its array is answered, its valid event stored, and every later request gets its own
    answer: the group that could not cross to the writer process once shifted every answer
    after it by one request (another certifier's)."""
    deep = deep_event("WD-DEEP")
    async with serving(build_service(core, timer=False, separate_writer=True)) as client:
        async with client.post("/events", json=[recent("WD-OK"), deep]) as response:
            assert response.status == 200
            answers = await response.json()
        assert [(a["record_id"], a["http_status"]) for a in answers] == [
            ("WD-OK", 201),
            ("WD-DEEP", 422),
        ]
        assert any(e["field"] == "verbatim" for e in answers[1]["errors"])
        for record_id, certifier in (("WD-A", "pix"), ("WD-B", "school"), ("WD-C", "school")):
            body = recent(record_id, certifier=certifier)
            if certifier == "school":
                body["certification"] = {"type": "RNCP", "code": "RNCP35726"}
            async with client.post("/events", json=body) as response:
                assert (response.status, (await response.json())["record_id"]) == (201, record_id)
    stored = dict(rows(core.settings.paths.state, "SELECT record_id, status FROM records"))
    assert stored == {
        "WD-OK": "pending",
        "WD-DEEP": "invalid",
        "WD-A": "pending",
        "WD-B": "pending",
        "WD-C": "pending",
    }


TOO_DEEP = 3000
"""Levels of nesting past what the json module parses (a `RecursionError`)."""


@pytest.mark.parametrize("route", ["/events", "/check"])
async def test_an_event_too_deep_to_parse_fails_alone_in_its_array(core: Core, route: str) -> None:
    """Its array could not be parsed at all: the whole body was answered as one unusable
    event (422), the valid events beside it never stored; `POST /check`, parsing again in a
    thread, said `expected a JSON object, got a JSON list`."""
    deep = json.dumps(recent("WT-DEEP"))[:-1] + ', "verbatim": ' + "[" * TOO_DEEP + "]" * TOO_DEEP
    deep += ', "note": "] } [ { \\" ]"}'  # brackets and an escaped quote in a string
    body = f"[{json.dumps(recent('WT-1'))}, {deep}, {json.dumps(recent('WT-2'))}]"
    headers = {"Content-Type": "application/json"}
    app = build_service(core, timer=False, separate_writer=True)
    async with serving(app) as client, client.post(route, data=body, headers=headers) as response:
        assert response.status == 200, await response.text()
        answers = await response.json()
    assert [a["record_id"] for a in answers] == ["WT-1", None, "WT-2"]
    valid = [a.get("valid", a.get("http_status") == 201) for a in answers]
    assert valid == [True, False, True]
    assert "nested too deeply" in answers[1]["errors"][0]["message"]
    stored = dict(rows(core.settings.paths.state, "SELECT record_id, status FROM records"))
    assert stored == ({"WT-1": "pending", "WT-2": "pending"} if route == "/events" else {})


def test_a_request_that_cannot_be_framed_fails_alone_and_keeps_the_order() -> None:
    """The framing of a group, unit by unit: the request whose events cannot be pickled is
    answered `NotStorable`; the others go, in their order."""

    async def run() -> None:
        loop = asyncio.get_running_loop()
        undecoded = Incoming({"record_id": "X", "verbatim": nested(DEEP)}, "test")
        fine = [Incoming(b'{"record_id": "A"}', "test")], loop.create_future()
        bad = [undecoded], loop.create_future()
        after = [Incoming(b'{"record_id": "B"}', "test")], loop.create_future()
        data, kept = framed([fine, bad, after])
        assert kept == [fine, after]
        assert data and b'"record_id": "A"' in data and b'"record_id": "B"' in data
        with pytest.raises(NotStorable, match="nested too deeply"):
            bad[1].result()
        assert NOT_STORABLE.startswith("an event of this request")

    asyncio.run(run())


def test_a_request_that_cannot_be_framed_after_its_client_left_fails_nothing_else() -> None:
    """Its handler cancelled (at the service's stop, aiohttp cancels handlers still running):
    the group is framed without it, and answering it does not raise."""

    async def run() -> None:
        loop = asyncio.get_running_loop()
        undecoded = Incoming({"record_id": "X", "verbatim": nested(DEEP)}, "test")
        bad = [undecoded], loop.create_future()
        after = [Incoming(b'{"record_id": "B"}', "test")], loop.create_future()
        bad[1].cancel()
        data, kept = framed([bad, after])
        assert kept == [after] and b'"record_id": "B"' in data

    asyncio.run(run())


def test_a_decoded_event_travels_as_its_text() -> None:
    """What crosses to the writer process of a decoded event from an array: its text (what
    an unusable or refused event keeps), never the parsed object, which could be nested
    deeper than pickling goes."""
    from accrochage.api.link_groups import wire
    from accrochage.streams.rejected import TOO_DEEP_TO_KEEP

    decoded = Decoded(Kind.DELIVERED, record_id="A", content="{}", content_hash="h")
    raw, *_ = wire(Incoming({"record_id": "A", "x": [1]}, "s", decoded=(decoded, None)))
    assert json.loads(raw) == {"record_id": "A", "x": [1]}
    raw, *_ = wire(Incoming({"x": nested(2000)}, "s", decoded=(decoded, None)))
    assert raw == TOO_DEEP_TO_KEEP


async def test_a_refused_event_of_an_array_keeps_its_text_through_the_writer(core: Core) -> None:
    revoking = revoked_event(record_id="WT-NONE")
    async with (
        serving(build_service(core, timer=False, separate_writer=True)) as client,
        client.post("/events", json=[recent("WT-1"), revoking]) as response,
    ):
        assert [a["http_status"] for a in await response.json()] == [201, 422]
    ((kept,),) = rows(core.settings.paths.state, "SELECT raw FROM unusable")
    assert json.loads(kept) == revoking


async def test_an_array_for_the_decode_processes_with_a_deep_event(core: Core) -> None:
    """An array large enough for the decode processes: the piece that cannot be pickled to
    them is decoded here, and its events stored, the deep one invalid."""
    assert core.decoder is not None, "the test needs the decode processes"
    body = [recent(f"WP-{i:02d}") for i in range(20)]
    body[7] = deep_event("WP-DEEP")
    app = build_service(core, timer=False, separate_writer=True)
    async with serving(app) as client, client.post("/events", json=body) as response:
        assert response.status == 200
        answers = await response.json()
    statuses = {a["record_id"]: a["http_status"] for a in answers}
    assert statuses.pop("WP-DEEP") == 422
    assert set(statuses.values()) == {201} and len(statuses) == 19


@pytest.mark.parametrize("array", [False, True])
async def test_an_integer_longer_than_python_converts_is_a_field_error(
    core: Core, array: bool
) -> None:
    long_score = "7" * 5000
    bad = json.dumps(recent("WL-BIG", score="TOO-LONG")).replace('"TOO-LONG"', long_score)
    assert long_score in bad
    body = f"[{json.dumps(recent('WL-1'))}, {bad}]" if array else bad
    async with serving(build_service(core, timer=False)) as client:
        async with client.post(
            "/events", data=body, headers={"Content-Type": "application/json"}
        ) as response:
            answer = await response.json()
            status = response.status
        async with client.get("/records/WL-BIG") as response:
            detail = await response.json()
    mine = answer[1] if array else answer
    if array:
        assert status == 200 and answer[0]["http_status"] == 201
    else:
        assert status == 422
    assert (mine["record_id"], mine["outcome"]) == ("WL-BIG", "created")
    assert [e["field"] for e in mine["errors"]] == ["score"]
    assert detail["content"]["score"] == {"number_too_long": 5000}, "valid JSON, bounded"


def test_a_revocation_must_name_whose_record_it_withdraws(core: Core) -> None:
    """With two certifiers configured, a revocation naming neither a certifier nor a
    certification could withdraw any certifier's record: it is refused."""
    school = recent("WR-1", certifier="school")
    school["certification"] = {"type": "RNCP", "code": "RNCP35726"}
    ingest(core, school)
    unnamed = revoked_event(record_id="WR-1")
    del unnamed["certifier"], unnamed["certification"]
    (result,) = ingest(core, unnamed)
    assert [e.field for e in result.errors] == ["certifier"]
    assert "more than one certifier is configured" in result.errors[0].message
    assert record(core, "WR-1")["status"] == "pending"
    (other,) = ingest(core, revoked_event(record_id="WR-1", event_id="e2"))
    assert other.outcome == "refused", "pix's revocation of school's record"
    by_code = revoked_event(record_id="WR-1", event_id="e3", certification=school["certification"])
    del by_code["certifier"]
    (withdrawn,) = ingest(core, by_code)
    assert withdrawn.outcome == "withdrawn", "its certification names school"


async def test_a_large_body_is_read_off_the_event_loop(
    core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a large body is parsed, other clients are answered: the parse is held on an
    event here, and `GET /health` must answer meanwhile."""
    release, entered = threading.Event(), threading.Event()
    real = intake.loads_json

    def held(raw: bytes | str) -> Any:
        entered.set()
        assert release.wait(WAIT), "the test never released the parse"
        return real(raw)

    monkeypatch.setattr(intake, "loads_json", held)
    events = [recent(f"WB-{i:03d}") for i in range(400)]
    body = json.dumps(events).encode()
    assert len(body) >= intake.OFF_LOOP_BYTES
    async with serving(build_service(core, timer=False)) as client:

        async def post() -> int:
            async with client.post(
                "/events", data=body, headers={"Content-Type": "application/json"}
            ) as response:
                return response.status

        posting = asyncio.create_task(post())
        assert await asyncio.to_thread(entered.wait, WAIT)
        async with client.get("/health") as response:
            assert response.status == 200, "answered while the large body is parsed"
        assert not posting.done()
        release.set()
        assert await posting == 200


@asynccontextmanager
async def short_body_timeout(tmp_path: Path) -> AsyncIterator[int]:
    """A service whose `api.body_timeout` is 1 s, and its port."""
    built = build_core(load_settings(write_config(tmp_path, api={"body_timeout": "1s"})))
    try:
        async with serving(build_service(built, timer=False)) as client:
            yield int(str(client._base_url).rsplit(":", 1)[1].rstrip("/"))
            async with client.get("/health") as response:
                assert response.status == 200  # the service answers others all along
    finally:
        built.close()


def closed_after(sock: socket.socket, head: bytes) -> float:
    """Seconds until the server closes the connection once `head` (unfinished) is sent."""
    sock.sendall(head)
    started = time.monotonic()
    assert sock.recv(1) == b"", "the server closes the connection"
    return time.monotonic() - started


async def test_a_head_that_never_ends_is_closed_by_the_body_timeout(tmp_path: Path) -> None:
    async with short_body_timeout(tmp_path) as port:

        def trickle() -> float:
            with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
                return closed_after(sock, b"POST /events HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")

        assert await asyncio.to_thread(trickle) < WAIT


def _read_response(sock: socket.socket) -> bytes:
    """One whole HTTP response (its head, then `Content-Length` bytes of body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(4096)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += sock.recv(4096)
    return head


async def test_a_next_head_trickled_on_a_kept_alive_connection_is_closed_too(
    tmp_path: Path,
) -> None:
    """Only a connection's first head had a deadline: after one whole request, a client could
    trickle the next head a byte at a time and hold the connection for ever (aiohttp's
    keep-alive timer only closes a connection that sends nothing)."""
    async with short_body_timeout(tmp_path) as port:

        def trickle() -> float:
            with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
                for _ in range(2):  # whole requests keep the connection, as they should
                    sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                    assert _read_response(sock).startswith(b"HTTP/1.1 200")
                    time.sleep(1.5)  # longer than the head deadline, between requests
                return closed_after(sock, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")

        assert await asyncio.to_thread(trickle) < WAIT


async def test_the_access_log_holds_no_query_string_nor_header(
    core: Core, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    secret = "QUERY-SECRET-0123456789abcdefghijklmnopqrstuv"
    async with (
        serving(build_service(core, timer=False)) as client,
        client.get(
            f"/records?certifier={secret}", headers={"User-Agent": "agent-Haba"}
        ) as response,
    ):
        assert response.status == 200
    (line,) = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert '"GET /records?… HTTP/1.1" 200' in line
    assert secret not in line and "Haba" not in line


async def test_a_path_cannot_forge_a_line_in_the_log(
    core: Core, caplog: pytest.LogCaptureFixture
) -> None:
    """The access log wrote the decoded path: `%0A` started a new line, a forged ERROR one,
    from anyone who reaches the port (a 401 or a 404 is logged too)."""
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    forged = "/x%0A2026-12-02T16:30:00.000+01:00%20ERROR%20accrochage.service%20forged%0D%1B[31m"
    async with (
        serving(build_service(core, timer=False)) as client,
        client.get(yarl.URL(forged, encoded=True)) as response,
    ):
        assert response.status == 404
    (line,) = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert "\n" not in line and "\r" not in line and "\x1b" not in line
    assert "/x%0A2026-12-02T16:30:00.000+01:00%20ERROR" in line


async def test_an_error_before_the_app_is_not_cached_either(tmp_path: Path) -> None:
    """Answers built by the HTTP layer (a control character in a header) lacked the
    no-store and nosniff every other answer carries."""
    async with short_body_timeout(tmp_path) as port:

        def malformed() -> bytes:
            with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
                sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Bad: a\x01b\r\n\r\n")
                return _read_response(sock)

        head = (await asyncio.to_thread(malformed)).lower()
    assert head.startswith((b"http/1.0 400", b"http/1.1 400"))
    assert b"cache-control: no-store" in head and b"x-content-type-options: nosniff" in head
    assert b"server: accrochage\r\n" in head and b"aiohttp" not in head


@pytest.mark.parametrize(("logged", "lines"), [("all", 2), ("errors", 1), ("off", 0)])
async def test_the_access_log_keeps_the_requests_api_access_log_says(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, logged: str, lines: int
) -> None:
    """A platform sending one event a request, Prometheus and a health probe made a line each:
    `api.access_log = "errors"` keeps the answers of 400 and above, "off" none."""
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    core = build_core(load_settings(write_config(tmp_path, api={"access_log": logged})))
    try:
        async with serving(build_service(core, timer=False)) as client:
            for path, status in (("/health", 200), ("/nowhere", 404)):
                async with client.get(path) as response:
                    assert response.status == status
    finally:
        core.close()
    said = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert len(said) == lines, said
    if lines == 1:
        assert '"GET /nowhere HTTP/1.1" 404' in said[0]


def _refused(port: int, request: bytes) -> bytes:
    """The status line the service answers `request` with."""
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
        sock.sendall(request)
        answer = b""
        while b"\r\n" not in answer:
            got = sock.recv(4096)
            if not got:
                break
            answer += got
    return answer.split(b"\r\n", 1)[0]


@pytest.mark.parametrize(
    ("request_bytes", "said"),
    [
        (b"NOT HTTP AT ALL\r\n\r\n", "malformed request refused"),
        (
            b"POST /events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\nZZZ\r\n{}\r\n0\r\n\r\n",
            "malformed request refused (BadHttpMessage)",
        ),
    ],
)
async def test_refused_requests_in_a_loop_make_one_line_a_minute(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, request_bytes: bytes, said: str
) -> None:
    """A client sending malformed requests in a loop made an INFO line each: the log at the
    pace of whoever reaches the port. One line a kind a minute, the next saying how many."""
    caplog.set_level(logging.INFO, logger="accrochage.api")
    async with short_body_timeout(tmp_path) as port:
        for _ in range(5):
            status = await asyncio.to_thread(_refused, port, request_bytes)
            assert status.endswith(b" 400 Bad Request"), status
    lines = [r.getMessage() for r in caplog.records if said in r.getMessage()]
    assert len(lines) == 1, lines


async def test_unreadable_bodies_make_one_line_a_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A body the handler cannot read (its framing broken once it began reading it) is
    answered 400 by the error middleware, one line a kind a minute as the malformed ones."""
    caplog.set_level(logging.INFO, logger="accrochage.api")
    app = web.Application()
    app[CLIENT_ERROR_LINES] = LinesEvery(REFUSED_REQUESTS_LOGGED_EVERY)

    async def broken(request: web.Request) -> web.StreamResponse:
        raise TransferEncodingError("Not enough data for satisfy transfer length header.")

    for _ in range(3):
        answer = await error_middleware(make_mocked_request("POST", "/events", app=app), broken)
        assert answer.status == 400
    lines = [r.getMessage() for r in caplog.records if "unreadable body" in r.getMessage()]
    assert lines == ["HTTP 400: unreadable body (TransferEncodingError)"]
