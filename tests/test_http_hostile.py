"""The HTTP API under hostile and broken input: one bad request never costs anyone else.

Each test reproduces a failure seen on an earlier main (issue 8): a lone surrogate that failed
a whole group commit, unbounded bodies, 500s on crafted query parameters, aiohttp's own errors
as plain text echoing a header, a full disk answered 500 while /health said ok.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import re
import sqlite3
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from accrochage.app import Core
from accrochage.models.field_errors import FRIENDLY
from accrochage.models.problems import MAX_PROBLEMS
from accrochage.models.record import INVALID_CONTENT_KEPT, TRUNCATED
from accrochage.streams.incoming import Incoming
from tests.test_http import (
    OPERATOR,
    PLATFORM,
    assert_error_shape,
    core_for,
    get,
    post,
    recent,
    serving,
)

SURROGATE_FIELDS = (
    ("holder", "birth_name"),
    ("holder", "usage_name"),
    ("exam", "center_postal_code"),
    ("verbatim",),
    ("event_id",),
    ("source",),
)


@pytest.fixture()
def core(tmp_path: Path) -> Iterator[Core]:
    built = core_for(tmp_path, api={"max_body_bytes": 200_000, "max_events_per_request": 50})
    yield built
    built.close()


def stored(core: Core) -> set[str]:
    conn = sqlite3.connect(core.settings.paths.state, timeout=5)
    try:
        return {r[0] for r in conn.execute("SELECT record_id FROM records")}
    finally:
        conn.close()


def stored_content(core: Core, record_id: str) -> Any:
    """The content stored for a record (its only version), as JSON."""
    conn = sqlite3.connect(core.settings.paths.state, timeout=5)
    try:
        (payload,) = conn.execute(
            "SELECT payload FROM contents WHERE record_id = ?", (record_id,)
        ).fetchone()
    finally:
        conn.close()
    return json.loads(payload)


def with_surrogate(record_id: str, path: tuple[str, ...]) -> str:
    """The event's JSON with a lone surrogate (`\\ud800`) in the field at `path`."""
    event = recent(record_id)
    target = event
    for name in path[:-1]:
        target = target[name]
    target[path[-1]] = "MARK"
    return json.dumps(event).replace('"MARK"', '"X\\ud800Y"')


async def test_a_lone_surrogate_fails_only_its_own_event(core: Core) -> None:
    """600 valid events and 6 poisoned ones, concurrently: every valid one is acknowledged and
    stored (539 of 600 got 500 when one surrogate failed the shared transaction)."""
    async with serving(core) as client:
        valid = [recent(f"OK-{i:04d}") for i in range(600)]
        bad = [with_surrogate(f"BAD-{i}", path) for i, path in enumerate(SURROGATE_FIELDS)]
        sends = [post(client, e) for e in valid] + [post(client, b) for b in bad]
        answers = await asyncio.gather(*sends)
    for status, body in answers[: len(valid)]:
        assert (status, body["status"]) == (201, "pending")
    for (status, body), path in zip(answers[len(valid) :], SURROGATE_FIELDS, strict=True):
        assert status == 422
        assert any(
            e["field"] == ".".join(path) and "surrogate" in e["message"] for e in body["errors"]
        ), body
    assert stored(core) >= {e["record_id"] for e in valid}


async def test_a_lone_surrogate_in_an_array_fails_only_that_event(core: Core) -> None:
    body = (
        "["
        + ", ".join(
            [json.dumps(recent("ARR-1")), with_surrogate("ARR-2", ("holder", "birth_name"))]
        )
        + "]"
    )
    async with serving(core) as client:
        status, answers = await post(client, body)
    assert status == 200
    assert [a["http_status"] for a in answers] == [201, 422]
    assert {"ARR-1", "ARR-2"} <= stored(core), "the invalid one is kept as an invalid record"


async def test_a_body_over_the_limit_is_refused_before_it_is_read(core: Core) -> None:
    async with serving(core) as client:
        status, body = await post(client, b"[" + b"0," * 150_000 + b"0]")
        assert status == 413
        assert_error_shape(body, "payload_too_large")

        async def chunks() -> Any:
            for _ in range(30):
                yield b" " * 10_000

        async with client.post("/events", data=chunks()) as response:
            assert response.status == 413
            assert_error_shape(await response.json())
        status, body = await get(client, "/health")
        assert status == 200
    assert stored(core) == set()


async def test_an_array_over_the_limit_stores_nothing(core: Core) -> None:
    async with serving(core) as client:
        status, body = await post(client, [recent(f"MANY-{i}") for i in range(51)])
        assert status == 413
        assert_error_shape(body, "too_many_events")
        status, _ = await post(client, [recent(f"FEW-{i}") for i in range(50)])
        assert status == 200
    assert stored(core) == {f"FEW-{i}" for i in range(50)}


@pytest.mark.parametrize(
    "query",
    [
        "/records?limit=²",
        "/records?limit=١٢",
        "/records?due_within=²",
        "/records?limit=99999999999999999999",
        "/records?as_of=9999-12-31&due_within=30",
        "/records?as_of=2026-02-30",
        "/records?as_of=20261201",
        "/summary?as_of=9999-12-31",
        "/records?cursor=W3siYSI6IDF9LCAieCJd",  # [{"a": 1}, "x"]
        "/records?cursor=WzEsIDJd",  # [1, 2]
        "/records?cursor=bm90IGpzb24",  # not json
        "/records?cursor=%FF%FE",
        "/records?overdue=maybe",
        "/records?status=nope",
        "/batches?state=nope",
        "/batches?limit=-1",
        "/unusable?limit=1e3",
        # Given twice: which one was meant is unknown (the first alone was answered).
        "/records?certifier=school&certifier=pix",
        "/records?as_of=2026-12-04&as_of=bogus",
        "/records?limit=5&limit=7",
        "/records?overdue=true&overdue=false",
        "/batches?state=written&state=failed",
        # Compares a deadline the records asked for have not: always empty, as if none.
        "/records?deadline_unknown=true&overdue=true",
        "/records?deadline_unknown=true&due_within=14",
    ],
)
async def test_bad_query_parameters_are_400_never_500(core: Core, query: str) -> None:
    async with serving(core) as client:
        status, body = await get(client, query)
    assert status == 400, (query, body)
    assert_error_shape(body, "bad_parameter")


async def test_a_body_whose_encoding_is_not_what_it_says_is_400(core: Core) -> None:
    async with serving(core) as client:
        for encoding in ("gzip", "deflate", "br"):
            status, body = await post(
                client,
                json.dumps(recent("ENC-1")).encode(),
                headers={"Content-Encoding": encoding, "Connection": "close"},
            )
            assert status in (400, 415), (encoding, status)
            assert_error_shape(body)
        status, body = await post(
            client,
            gzip.compress(json.dumps(recent("ENC-2")).encode()),
            headers={"Content-Encoding": "gzip"},
        )
        assert (status, body["status"]) == (201, "pending"), "a real gzip body is read"


def latin_event(record_id: str) -> dict[str, Any]:
    event = recent(record_id)
    event["holder"]["birth_name"] = "Lefèvre"
    event["holder"]["first_names"] = ["Zoé"]
    return event


def as_json(charset: str) -> dict[str, str]:
    return {"Content-Type": f"application/json; charset={charset}"}


async def test_a_body_in_the_charset_it_declares_is_read_in_it(core: Core) -> None:
    """A platform on a Latin-1 or Windows-1252 system that says so has its accented names
    read; one that does not (or says UTF-8) gets the unusable event it got before."""
    async with serving(core) as client:
        for n, charset in enumerate(("ISO-8859-1", "windows-1252", "latin1", "cp1252")):
            body = json.dumps(latin_event(f"CS-{n}"), ensure_ascii=False).encode(charset)
            status, answer = await post(client, body, headers=as_json(charset))
            assert (status, answer["status"]) == (201, "pending"), (charset, answer)
        status, record = await get(client, "/records/CS-0")
        assert "Lefèvre" in json.dumps(record, ensure_ascii=False)
        assert "Zoé" in json.dumps(record, ensure_ascii=False)

        latin = json.dumps(latin_event("CS-X"), ensure_ascii=False).encode("latin-1")
        for headers in ({}, {"Content-Type": "application/json"}, as_json("utf-8")):
            status, answer = await post(client, latin, headers=headers)
            assert status == 422 and answer["outcome"] == "unusable", headers
        zipped = gzip.compress(
            json.dumps(latin_event("CS-Z"), ensure_ascii=False).encode("latin-1")
        )
        status, answer = await post(
            client, zipped, headers={**as_json("latin-1"), "Content-Encoding": "gzip"}
        )
        assert status == 201, "decompressed, then read in its charset"
        async with client.post("/check", data=latin, headers=as_json("latin-1")) as response:
            assert (await response.json())["valid"] is True

        status, answer = await post(client, latin, headers=as_json("x-klingon"))
        assert status == 415
        assert_error_shape(answer, "unsupported_charset")
        assert "klingon" not in json.dumps(answer), "a header is never echoed"
        for not_text in ("base64", "rot13", "undefined"):
            status, answer = await post(client, latin, headers=as_json(not_text))
            assert status == 415, not_text

        # idna refuses a label with UnicodeError, not its child UnicodeDecodeError.
        status, answer = await post(client, b"xn--99999999.\xff", headers=as_json("idna"))
        assert status == 422 and answer["outcome"] == "unusable"

        # Valid UTF-8 declared Latin-1 (a mis-declared client): read as UTF-8, no mojibake.
        utf8 = json.dumps(latin_event("CS-U"), ensure_ascii=False).encode("utf-8")
        status, answer = await post(client, utf8, headers=as_json("ISO-8859-1"))
        assert status == 201
        status, record = await get(client, "/records/CS-U")
        assert "Lefèvre" in json.dumps(record, ensure_ascii=False)
    assert "CS-X" not in stored(core) and {"CS-0", "CS-3", "CS-Z", "CS-U"} <= stored(core)


async def post_after_continue(port: int, body: bytes, encoding: str) -> tuple[int, bytes]:
    """POST /events whose body is sent once the service answered `100 Continue`: its handler
    is then already waiting for the body, as with a client that sends headers and body in
    two writes (http.client does)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            f"POST /events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
            f"Content-Encoding: {encoding}\r\nExpect: 100-continue\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        await writer.drain()
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=30)
        assert interim.startswith(b"HTTP/1.1 100"), interim
        writer.write(body)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), timeout=30)
    finally:
        writer.close()
    head, _, content = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), content


async def test_a_body_that_stops_arriving_is_408_and_its_connection_closed(
    tmp_path: Path,
) -> None:
    """Headers, then part of the body, then nothing: without a body timeout the handler
    waited as long as the client kept the connection open (one held connection each)."""
    core = core_for(tmp_path, api={"body_timeout": "1s"})
    try:
        async with serving(core) as client:
            port = served_port(client)
            partial = b'POST /events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{"a"'
            status, _, content = await raw_request(port, partial)  # read to its close
            assert status == 408, content
            assert_error_shape(json.loads(content), "body_timeout")
            status, body = await post(client, recent("AFTER-408"))
            assert (status, body["status"]) == (201, "pending")
    finally:
        core.close()


async def test_a_compressed_body_that_ends_early_is_answered_400_at_once(core: Core) -> None:
    """With aiohttp decompressing (3.14), a deflate body that stops inside its stream, sent
    after the headers, left the request unanswered and its connection held until the client
    gave up (`api/bodies.py`)."""
    event = json.dumps(recent("ENC-3")).encode()
    unfinished = (b"\xc4\xdd", b"\x6b\xe4", zlib.compress(event)[:-4], gzip.compress(event)[:-9])
    async with serving(core) as client:
        port = served_port(client)
        for body in unfinished:
            for encoding in ("deflate", "gzip"):
                status, content = await post_after_continue(port, body, encoding)
                assert status == 400, (body, encoding, content)
                assert_error_shape(json.loads(content), "bad_body")
        status, content = await post_after_continue(port, zlib.compress(event), "deflate")
        assert (status, json.loads(content)["status"]) == (201, "pending"), "deflate is read"
        limit = core.settings.api.max_body_bytes
        status, answer = await post(
            client, gzip.compress(b" " * (limit + 1)), headers={"Content-Encoding": "gzip"}
        )
        assert status == 413
        assert_error_shape(answer, "payload_too_large")


def served_port(client: aiohttp.ClientSession) -> int:
    """The port of the service `serving` bound the client to."""
    assert client._base_url is not None and client._base_url.port is not None
    return client._base_url.port


async def raw_request(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), timeout=30)
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


async def test_http_level_errors_are_json_and_never_echo_a_header(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    core = core_for(tmp_path, api={"token": OPERATOR})
    caplog.set_level(logging.DEBUG)
    try:
        async with serving(core) as client:
            port = served_port(client)
            secret = f"Bearer {OPERATOR}\x01"
            cases = [
                f"GET /records HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {secret}\r\n\r\n",
                f"GET /{'a' * 9000} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
                "GET /records HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Long: " + "b" * 9000 + "\r\n\r\n",
                "BREW /pot HTCPCP/1.0\r\n\r\n",
            ]
            for request in cases:
                status, headers, body = await raw_request(port, request.encode("latin-1"))
                assert 400 <= status < 500, (request[:40], status)
                assert headers["content-type"].startswith("application/json"), headers
                assert_error_shape(json.loads(body))
                assert OPERATOR.encode() not in body
            status, body = await get(client, "/health")
            assert status == 200
    finally:
        core.close()
    assert OPERATOR not in caplog.text, "a token reached the log"


async def test_a_full_disk_is_507_health_degraded_then_recovers(core: Core) -> None:
    """SQLite's own 'database or disk is full' (max_page_count reached): 507, /health 503,
    and both back to normal once there is room again, without a restart."""
    writer = core.store._conn  # type: ignore[attr-defined]
    async with serving(core) as client:
        assert (await post(client, recent("ROOM-1")))[0] == 201
        (pages,) = writer.execute("PRAGMA page_count").fetchone()
        writer.execute(f"PRAGMA max_page_count = {pages}")
        big = [recent(f"FULL-{i}", verbatim="v" * 120) for i in range(40)]
        status, body = await post(client, big)
        assert status == 507, body
        assert_error_shape(body, "storage_full")
        status, body = await get(client, "/health")
        assert (status, body["status"], body["reason"]) == (503, "degraded", "storage_full")
        writer.execute("PRAGMA max_page_count = 1073741823")
        status, body = await post(client, big)
        assert status == 200 and {a["http_status"] for a in body} == {201}
        assert (await get(client, "/health")) == (200, {"status": "ok"})
    assert {f"FULL-{i}" for i in range(40)} <= stored(core)


async def test_a_storage_error_tells_its_details_to_the_operator_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A full disk answered every caller with the operator's message: the state's absolute
    path and SQLite's words, to an exam platform's token and to anyone asking `/health`. They
    now get the code and what to do; the operator's token, and the log, the whole message."""
    built = core_for(tmp_path, api={"token": OPERATOR, "ingest_tokens": [PLATFORM]})
    state = str(built.settings.paths.state)
    operator = {"Authorization": f"Bearer {OPERATOR}"}
    platform = {"Authorization": f"Bearer {PLATFORM}"}
    writer = built.store._conn  # type: ignore[attr-defined]
    try:
        async with serving(built) as client:
            assert (await post(client, recent("ROOM-1"), headers=platform))[0] == 201
            (pages,) = writer.execute("PRAGMA page_count").fetchone()
            writer.execute(f"PRAGMA max_page_count = {pages}")
            big = [recent(f"FULL-{i}", verbatim="v" * 120) for i in range(40)]
            status, body = await post(client, big, headers=platform)
            assert status == 507, body
            assert_error_shape(body, "storage_full")
            assert state not in json.dumps(body)
            assert "send it again later" in body["error"]["message"]
            status, body = await get(client, "/health")
            assert (status, body["reason"]) == (503, "storage_full")
            assert state not in json.dumps(body)
            status, body = await get(client, "/health", headers=platform)
            assert state not in json.dumps(body)
            status, body = await get(client, "/health", headers=operator)
            assert (status, body["reason"]) == (503, "storage_full")
            assert state in body["message"]
            status, body = await post(client, big, headers=operator)
            assert status == 507 and state in body["error"]["message"]
            writer.execute("PRAGMA max_page_count = 1073741823")
    finally:
        built.close()
    assert f"storage_full: the state database {state}" in caplog.text


async def test_the_service_answers_after_a_flood_of_bad_requests(core: Core) -> None:
    async with serving(core) as client:
        junk: list[Any] = [b"", b"{", b"[]", b"null", b"[[[[[[[[", b'{"record_id": 1}', b"\xff"]
        answers = await asyncio.gather(*(post(client, j) for j in junk * 20))
        assert all(status < 500 for status, _ in answers)
        async with aiohttp.ClientSession() as other:
            del other
        assert (await post(client, recent("AFTER-1")))[0] == 201


async def test_a_decimal_score_keeps_its_digits_in_an_array_too(core: Core) -> None:
    one = json.dumps(recent("DEC-1")).replace('"score": "324"', '"score": 12.345678901234567890123')
    assert "12.345678901234567890123" in one
    async with serving(core) as client:
        status, answers = await post(client, f"[{one}]")
    assert (status, answers[0]["http_status"]) == (200, 201)
    assert stored_content(core, "DEC-1")["score"] == "12.345678901234567890123"


def test_an_invalid_event_is_kept_truncated_and_its_errors_capped(core: Core) -> None:
    """An invalid event of 2 MB with 180 errors is stored in at most 16 KiB and 51 errors, at
    each correction too (a 60 MiB invalid event was stored whole, again at each correction)."""
    huge = recent("HUGE-1", unknown_field="x" * 2_000_000)
    huge["digital_level"] = {"general_score": 1, "results": [{"level": "?"}] * 60}
    for attempt in range(2):
        huge["verbatim"] = f"attempt {attempt}"
        (result,) = core.ingestor.ingest([Incoming(json.dumps(huge).encode(), "test")])
        assert result.status == "invalid"
        assert len(result.errors) == MAX_PROBLEMS + 1
        assert "more finding(s)" in result.errors[-1].message
    conn = sqlite3.connect(core.settings.paths.state, timeout=5)
    try:
        rows = conn.execute(
            "SELECT length(payload), payload FROM contents WHERE record_id = 'HUGE-1'"
        ).fetchall()
        (errors,) = conn.execute("SELECT errors FROM records WHERE record_id = 'HUGE-1'").fetchone()
    finally:
        conn.close()
    assert len(rows) == 2
    for size, payload in rows:
        kept = json.loads(payload)[TRUNCATED]
        assert kept["characters"] > 2_000_000 and kept["start"].startswith("{")
        assert len(kept["start"]) == INVALID_CONTENT_KEPT
        assert size < 3 * INVALID_CONTENT_KEPT, "stored in the order of the cap, not whole"
    assert len(json.loads(errors)) == MAX_PROBLEMS + 1


@pytest.mark.timeout(300)
def test_an_event_with_200000_unknown_keys_costs_in_proportion_to_them(core: Core) -> None:
    """Each unknown key set aside for the rules across fields copied the event and compared
    its path with every key set aside before: 2.6 MB of keys held a core for more than 15
    minutes (and the one thread of large bodies, every other platform's arrays). Linear now,
    a few seconds: the bound above is the suite's guard against a hang, not a measurement."""
    event = recent("KEYS-1") | {f"k{i}": 1 for i in range(200_000)}
    (result,) = core.ingestor.ingest([Incoming(json.dumps(event).encode(), "test")])
    assert result.status == "invalid" and len(result.errors) == MAX_PROBLEMS + 1
    assert (result.errors[0].field, result.errors[0].message) == ("k0", FRIENDLY["extra_forbidden"])
    assert "199950 more finding(s)" in result.errors[-1].message


def test_a_certifier_longer_than_any_key_is_not_kept_as_the_record_s(core: Core) -> None:
    """An invalid event's certifier was stored whole as its record's (one CSV row stored one
    of 14.7 MB, outside the truncated content); a certifier key has at most 64 characters."""
    events = [recent("LONG-CERT", certifier="p" * 100_000), recent("KEY-64", certifier="p" * 64)]
    results = core.ingestor.ingest([Incoming(json.dumps(e).encode(), "test") for e in events])
    assert [r.status for r in results] == ["invalid", "invalid"]
    conn = sqlite3.connect(core.settings.paths.state, timeout=5)
    try:
        kept = dict(conn.execute("SELECT record_id, certifier FROM records").fetchall())
    finally:
        conn.close()
    assert kept == {"LONG-CERT": None, "KEY-64": "p" * 64}


def test_an_invalid_event_as_large_as_a_valid_one_is_kept_whole(core: Core) -> None:
    """The cap keeps padding out of the shared state, never an event with one bad field: the
    largest event the fields allow is kept whole."""
    large = recent("LARGE-1", verbatim="v" * 255, proof_url="https://x.fr/" + "p" * 240)
    large["digital_level"]["results"] = [{"level": 4, "area": "2", "competence": "1"}] * 64
    large["holder"]["first_names"] = ["F" * 60] * 3
    large["holder"]["birth_name"] = "B" * 60
    large["exam"]["end"] = "2026-13-45"
    raw = json.dumps(large)
    (result,) = core.ingestor.ingest([Incoming(raw.encode(), "test")])
    assert result.status == "invalid"
    kept = stored_content(core, "LARGE-1")
    assert TRUNCATED not in kept
    assert kept["digital_level"]["results"] == large["digital_level"]["results"]


async def expect_answer(port: int, headers: bytes, path: str = "/events") -> tuple[bytes, bytes]:
    """The head and content of the first answer to a request that asks
    `Expect: 100-continue` and sends no body (a client closes once it has its answer; the
    service lingers, reading what may still come, before it closes its side)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\n".encode()
            + headers
            + b"\r\n"
        )
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=30)
        length = re.search(rb"(?im)^content-length: *(\d+)", head)
        content = b"" if length is None else await reader.readexactly(int(length.group(1)))
    finally:
        writer.close()
    return head.removesuffix(b"\r\n\r\n"), content


async def test_a_body_declared_too_large_is_413_before_it_is_invited(tmp_path: Path) -> None:
    """`Expect: 100-continue` with a Content-Length over `api.max_body_bytes`: the service
    answered `100 Continue` (send it), then `413` once the body came. The 413 closes the
    connection: the client may send the body anyway."""
    core = core_for(tmp_path, api={"max_body_bytes": 4096})
    try:
        async with serving(core) as client:
            port = served_port(client)
            head, content = await expect_answer(
                port, b"Content-Length: 17826066\r\nContent-Type: application/json\r\n"
            )
            assert head.startswith(b"HTTP/1.1 413"), head
            assert b"\r\nconnection: close" in head.lower(), head
            assert_error_shape(json.loads(content), "payload_too_large")
            head, content = await expect_answer(
                port, b"Content-Length: 10\r\nContent-Type: text/plain\r\n"
            )
            assert head.startswith(b"HTTP/1.1 415"), "the type is refused before the body"
            assert b"\r\nconnection: close" in head.lower(), head
            small = json.dumps(recent("EX-1")).encode()
            status, _ = await post_after_continue(port, small, "identity")
            assert status == 201, "a body within the limit is still invited"
    finally:
        core.close()


async def test_an_expected_body_is_refused_first_for_who_sends_it(tmp_path: Path) -> None:
    """The `Expect` answer came before the middlewares: a caller without a token, or a page
    of another site, learnt `api.max_body_bytes` from a 413's details."""
    core = core_for(tmp_path, api={"max_body_bytes": 4096, "token": "t" * 40})
    try:
        async with serving(core) as client:
            port = served_port(client)
            too_large = b"Content-Length: 17826066\r\nContent-Type: application/json\r\n"
            head, content = await expect_answer(port, too_large)
            assert head.startswith(b"HTTP/1.1 401"), head
            assert b"\r\nconnection: close" in head.lower(), head
            assert b"4096" not in content
            forged = too_large + b"Authorization: Bearer " + b"t" * 40 + b"\r\n"
            head, _ = await expect_answer(port, forged + b"Origin: https://evil.example\r\n")
            assert head.startswith(b"HTTP/1.1 403"), head
            head, _ = await expect_answer(port, forged)
            assert head.startswith(b"HTTP/1.1 413"), "the operator learns the limit"
            for path in ("/check", "/correction-requests", "/correction-requests/x/answer"):
                head, _ = await expect_answer(port, too_large, path)
                assert head.startswith(b"HTTP/1.1 401"), (path, head)
                head, content = await expect_answer(port, forged, path)
                assert head.startswith(b"HTTP/1.1 413"), (path, head)
                assert b"\r\nconnection: close" in head.lower(), head
    finally:
        core.close()


async def test_an_expectation_the_service_does_not_know_is_a_json_417(tmp_path: Path) -> None:
    """aiohttp answers `Expect` before the middlewares: `Expect: 200-ok` was `417` as text
    ("Unknown Expect: 200-ok") on every route, the one answer outside the error shape."""
    core = core_for(tmp_path, api={"token": OPERATOR})
    try:
        async with serving(core) as client:
            port = served_port(client)
            for method, path in (("POST", "/events"), ("GET", "/summary"), ("GET", "/nowhere")):
                status, headers, body = await raw_request(
                    port,
                    f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 200-ok\r\n"
                    f"Authorization: Bearer {OPERATOR}\r\nContent-Length: 0\r\n\r\n".encode(),
                )
                assert status == 417, (path, status)
                assert headers["content-type"].startswith("application/json"), (path, headers)
                assert headers["connection"] == "close", (path, headers)
                answer = json.loads(body)
                assert_error_shape(answer, "expectation_failed")
                assert "100-continue" in answer["error"]["message"], answer
    finally:
        core.close()
