"""The embedded service over real HTTP: aiohttp on 127.0.0.1, a free port, a real client.

The app is the one `accrochage run` serves (`build_service(core)`), started inside the test's event
loop. The core runs on the system clock (the batch timer needs real time), so events are
delivered a few days before the real today.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from accrochage.api.protocol import ApiRunner
from accrochage.api.server import POOL_MIN_EVENTS
from accrochage.app import Core, build_core
from accrochage.errors import ConfigError, StorageFullError
from accrochage.models.deadline import SystemClock, paris_today
from accrochage.runtimes.embedded import build_service
from accrochage.settings import load_settings
from accrochage.streams.unusable import dismiss_unusable
from tests.test_decoding import decode_processes
from tests.test_tracker import event, write_config, xml_files

REAL_TODAY = paris_today(SystemClock())
RECENT = (REAL_TODAY - timedelta(days=10)).isoformat()
TIMEOUT = aiohttp.ClientTimeout(total=30)


def recent(record_id: str, **overrides: Any) -> dict[str, Any]:
    overrides.setdefault("delivered_on", RECENT)
    return event(record_id, **overrides)


def core_for(directory: Path, **sections: Any) -> Core:
    return build_core(load_settings(write_config(directory, **sections)))


@pytest.fixture()
def core(tmp_path: Path) -> Iterator[Core]:
    built = core_for(tmp_path)
    yield built
    built.close()


@asynccontextmanager
async def serving(core: Core, *, timer: bool = False) -> AsyncIterator[aiohttp.ClientSession]:
    """The service on 127.0.0.1:<free port>, and a client session bound to it."""
    runner = ApiRunner(build_service(core, timer=timer))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        host, port = runner.addresses[0][:2]
        assert host == "127.0.0.1" and port > 0
        async with aiohttp.ClientSession(
            base_url=f"http://127.0.0.1:{port}", timeout=TIMEOUT
        ) as client:
            yield client
    finally:
        await asyncio.wait_for(runner.cleanup(), timeout=30)


async def post(client: aiohttp.ClientSession, body: Any, **kwargs: Any) -> tuple[int, Any]:
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    headers = {"Content-Type": "application/json", **kwargs.pop("headers", {})}
    async with client.post("/events", data=data, headers=headers, **kwargs) as response:
        return response.status, await response.json()


async def get(client: aiohttp.ClientSession, path: str, **kwargs: Any) -> tuple[int, Any]:
    async with client.get(path, **kwargs) as response:
        return response.status, await response.json()


def assert_error_shape(body: Any, code: str | None = None) -> None:
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code


# --- ingestion ------------------------------------------------------------------------------


async def test_post_events(core: Core) -> None:
    async with serving(core) as client:
        one = recent("H-1")
        status, body = await post(client, one)
        assert status == 201
        assert (body["record_id"], body["status"], body["warnings"]) == ("H-1", "pending", [])

        again = dict(one, event_id="another-emission", source="retry")
        status, body = await post(client, again)
        assert (status, body["status"], body["outcome"]) == (200, "pending", "unchanged")

        status, body = await post(client, recent("H-BAD", obtention="PAR_HASARD"))
        assert status == 422
        assert body["record_id"] == "H-BAD"
        assert [e["field"] for e in body["errors"]] == ["obtention"]
        status, detail = await get(client, "/records/H-BAD")
        assert status == 200
        assert detail["status"] == "invalid"
        assert detail["errors"][0]["field"] == "obtention"
        assert [(h["from_status"], h["to_status"]) for h in detail["history"]] == [
            (None, "invalid")
        ]

        status, body = await post(client, b"this is not JSON")
        assert status == 422
        assert body["record_id"] is None and body["errors"][0]["field"] == "event"
        status, summary = await get(client, "/summary")
        assert summary["unusable_events"] == 1

        batch = [recent("H-2"), one, recent("H-3", holder=None), "not an object", recent("H-4")]
        status, results = await post(client, batch)
        assert status == 200
        assert [r["record_id"] for r in results] == ["H-2", "H-1", "H-3", None, "H-4"]
        assert [r["http_status"] for r in results] == [201, 200, 422, 422, 201]
        assert results[2]["errors"][0]["field"] == "holder"

        status, summary = await get(client, "/summary")
        assert status == 200
        assert summary["records"] == 5
        assert summary["by_status"] == {"invalid": 2, "pending": 3}
        assert summary["outstanding"] == 5
        assert summary["unusable_events"] == 2

        status, listed = await get(client, "/unusable")
        oldest = listed["events"][-1]
        assert oldest["dismissed_at"] is None
        (done,) = dismiss_unusable(core.store, core.clock, [str(oldest["id"])], "sent again")
        assert done.done, done.message
        status, summary = await get(client, "/summary")
        assert summary["unusable_events"] == 1, "only what is left to deal with"
        status, listed = await get(client, "/unusable")
        assert [e["id"] for e in listed["events"]] != [] and oldest["id"] not in {
            e["id"] for e in listed["events"]
        }
        status, everything = await get(client, "/unusable", params={"all": "true"})
        (kept,) = [e for e in everything["events"] if e["id"] == oldest["id"]]
        assert kept["dismissed_note"] == "sent again" and kept["raw"] == oldest["raw"]


async def test_response_is_sent_after_commit(core: Core) -> None:
    async with serving(core) as client:
        for i in range(5):
            status, _ = await post(client, recent(f"COMMIT-{i}"))
            assert status == 201
            other = sqlite3.connect(core.settings.paths.state, timeout=5)
            try:
                row = other.execute(
                    "SELECT status FROM records WHERE record_id = ?", (f"COMMIT-{i}",)
                ).fetchone()
            finally:
                other.close()
            assert row == ("pending",)


async def test_concurrent_posts_all_committed(core: Core) -> None:
    async with serving(core) as client:
        answers = await asyncio.gather(*(post(client, recent(f"CC-{i:03d}")) for i in range(60)))
        assert {status for status, _ in answers} == {201}
        status, page = await get(client, "/records", params={"limit": "1000"})
        assert status == 200
        assert {r["record_id"] for r in page["records"]} == {f"CC-{i:03d}" for i in range(60)}


async def test_decode_processes_start_with_the_service_and_a_dead_one_loses_nothing(
    tmp_path: Path,
) -> None:
    """Large arrays are decoded in decode processes: all of them are running before the
    first request; killed, they are replaced, and the request they would have decoded is
    stored all the same (decoded by the writer)."""
    core = core_for(tmp_path, ingest={"decode_processes": 2})
    assert core.decoder is not None and core.decoder.processes == 2
    async with serving(core) as client:
        workers = decode_processes(core.decoder)
        assert len(workers) == 2, "the decode processes start with the service"
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
        await asyncio.sleep(0.5)
        arrays = [[recent(f"DP-{n}-{i}") for i in range(POOL_MIN_EVENTS)] for n in range(3)]
        for array in arrays:
            status, results = await post(client, array)
            assert status == 200
            assert {r["http_status"] for r in results} == {201}
        assert set(decode_processes(core.decoder)).isdisjoint(workers)
        status, page = await get(client, "/records", params={"limit": "1000"})
        stored = {r["record_id"] for r in page["records"]}
        assert stored == {event["record_id"] for array in arrays for event in array}
    core.close()


# --- queries --------------------------------------------------------------------------------


async def test_records_filters_and_paging(core: Core) -> None:
    events = []
    for i in range(23):
        delivered = (REAL_TODAY - timedelta(days=60 + 4 * (i // 2))).isoformat()  # pairs tie
        events.append(recent(f"R-{(i * 5) % 23:02d}", delivered_on=delivered))
    events.append(recent("R-SCHOOL", certifier="school"))
    events.append(recent("R-INV", holder=None))
    events.append(recent("R-NODATE", delivered_on="not a date"))
    async with serving(core) as client:
        status, _ = await post(client, events)
        assert status == 200

        # As of the day the events were made for: a run crossing midnight in Paris must not
        # compare two days (`days_left` below is shifted from these rows).
        today = REAL_TODAY.isoformat()
        status, full = await get(client, "/records", params={"limit": "1000", "as_of": today})
        assert status == 200 and full["next_cursor"] is None
        everything = [r["record_id"] for r in full["records"]]
        assert sorted(everything) == sorted(e["record_id"] for e in events)

        for size in (1, 4, 25, 26):
            seen: list[str] = []
            params: dict[str, str] = {"limit": str(size)}
            for _ in range(40):
                status, page = await get(client, "/records", params=params)
                assert status == 200 and len(page["records"]) <= size
                seen += [r["record_id"] for r in page["records"]]
                if page["next_cursor"] is None:
                    break
                params = {"limit": str(size), "cursor": page["next_cursor"]}
            assert seen == everything, size

        status, page = await get(client, "/records", params={"certifier": "school"})
        assert [r["record_id"] for r in page["records"]] == ["R-SCHOOL"]
        status, page = await get(client, "/records", params={"status": "invalid"})
        assert {r["record_id"] for r in page["records"]} == {"R-INV", "R-NODATE"}
        status, page = await get(client, "/records", params={"deadline_unknown": "true"})
        assert [r["record_id"] for r in page["records"]] == ["R-NODATE"], "R-INV has a date"
        status, page = await get(client, "/records", params={"overdue": "true"})
        overdue = page["records"]
        assert overdue and all(r["days_left"] < 0 for r in overdue)
        status, page = await get(client, "/records", params={"due_within": "5"})
        due = page["records"]
        assert all(r["days_left"] <= 5 for r in due)
        assert {r["record_id"] for r in overdue} <= {r["record_id"] for r in due}
        later = (REAL_TODAY + timedelta(days=7)).isoformat()
        status, page = await get(client, "/records", params={"as_of": later, "limit": "1000"})
        shifted = {r["record_id"]: r["days_left"] for r in page["records"]}
        for row in full["records"]:
            if row["days_left"] is not None:
                assert shifted[row["record_id"]] == row["days_left"] - 7

        for params in ({"limit": "many"}, {"status": "lost"}, {"as_of": "tomorrow"}):
            status, body = await get(client, "/records", params=params)
            assert status == 400
            assert_error_shape(body, "bad_parameter")
        status, body = await get(client, "/records", params={"cursor": "%%%garbage"})
        assert status == 400
        assert_error_shape(body)

        status, body = await get(client, "/records/NOPE-404")
        assert status == 404
        assert_error_shape(body, "not_found")
        status, body = await get(client, "/no/such/route")
        assert status == 404
        assert_error_shape(body, "not_found")
        # It says what is wrong and where the routes are, not aiohttp's bare "404: Not Found".
        assert "no route" in body["error"]["message"]
        assert "/openapi.json" in body["error"]["message"]


async def test_batches_after_a_flush(core: Core) -> None:
    async with serving(core) as client:
        await post(client, [recent("B-1"), recent("B-2"), recent("B-3", certifier="school")])
        status, body = await get(client, "/batches")
        assert (status, body) == (200, {"batches": [], "next_cursor": None})
        report = await asyncio.to_thread(core.flusher.flush, force=True)
        assert report.ok and len(report.written) == 2

        status, body = await get(client, "/batches")
        assert status == 200
        listed = {b["batch_id"]: b for b in body["batches"]}
        assert set(listed) == {w.batch_id for w in report.written}
        assert {b["state"] for b in listed.values()} == {"written"}
        pix = next(w for w in report.written if w.certifier == "pix")
        status, detail = await get(client, f"/batches/{pix.batch_id}")
        assert status == 200
        assert detail["members"] == ["B-1", "B-2"]
        assert detail["file_name"] == pix.path.name
        assert detail["sha256"] == pix.sha256
        status, body = await get(client, "/batches", params={"certifier": "school"})
        assert [b["certifier"] for b in body["batches"]] == ["school"]
        status, body = await get(client, "/batches/not-a-batch")
        assert status == 404
        assert_error_shape(body, "not_found")

        status, record = await get(client, "/records/B-1")
        assert (record["status"], record["batch_id"]) == ("batched", pix.batch_id)
        status, summary = await get(client, "/summary")
        assert summary["batches"] == {"written": 2}
        assert summary["by_status"] == {"batched": 3}


# --- access control -------------------------------------------------------------------------


OPERATOR = "operator-token-0123456789-abcdefghij"
PLATFORM = "platform-token-0123456789-abcdefghij"


def basic(password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"any:{password}".encode()).decode()}


async def test_token_is_required_when_set(tmp_path: Path) -> None:
    core = core_for(tmp_path, api={"token": OPERATOR, "ingest_tokens": [PLATFORM]})
    try:
        async with serving(core) as client:
            status, body = await get(client, "/health")
            assert (status, body) == (200, {"status": "ok"}), "/health is open"
            for headers in (
                {},
                {"Authorization": "Bearer wrong"},
                {"Authorization": OPERATOR},
                {"Authorization": f"Bearer {OPERATOR[:-1]}"},
                {"Authorization": f"Bearer {OPERATOR}x"},
                basic("wrong"),
            ):
                for path in ("/records", "/summary", "/batches", "/openapi.json"):
                    status, body = await get(client, path, headers=headers)
                    assert status == 401, (headers, path)
                    assert_error_shape(body, "unauthorized")
                status, body = await post(client, recent("T-1"), headers=headers)
                assert status == 401
                assert_error_shape(body, "unauthorized")
            platform = {"Authorization": f"Bearer {PLATFORM}"}
            status, body = await post(client, recent("T-1"), headers=platform)
            assert (status, body["status"]) == (201, "pending")
            for path in ("/records", "/records/T-1", "/summary"):
                status, body = await get(client, path, headers=platform)
                assert status == 403, "an ingest token open to every certifier reads no record"
                assert_error_shape(body, "forbidden")
            assert (await get(client, "/openapi.json", headers=platform))[0] == 200
            for n, good in enumerate(({"Authorization": f"Bearer {OPERATOR}"}, basic(OPERATOR))):
                status, body = await post(client, recent(f"T-OP-{n}"), headers=good)
                assert (status, body["status"]) == (201, "pending")
                status, body = await get(client, "/records/T-1", headers=good)
                assert status == 200
        conn = sqlite3.connect(core.settings.paths.state, timeout=5)
        try:
            assert conn.execute("SELECT count(*) FROM records").fetchone() == (3,)
        finally:
            conn.close()
    finally:
        core.close()


def test_tokens_shorter_than_32_characters_are_refused(tmp_path: Path) -> None:
    for api in ({"token": "s3cret-token"}, {"ingest_tokens": ["x" * 31]}):
        with pytest.raises(ConfigError, match="at least 32 characters"):
            load_settings(write_config(tmp_path, api=api))


# --- hostile input --------------------------------------------------------------------------


async def test_malformed_input_never_stops_the_service(core: Core) -> None:
    huge_name = recent("M-HUGE")
    huge_name["holder"]["birth_name"] = "N" * 100_000
    control = recent("M-CTRL")
    control["holder"]["birth_name"] = "Bad\x00Name\x1b"
    bodies: list[tuple[bytes | str | Any, set[int]]] = [
        (b"{", {422}),
        (b"", {400}),
        (b" \r\n", {400}),
        (b"\xff\xfe\x00{", {422}),
        ("null", {422}),
        ("42", {422}),
        ('"a string"', {422}),
        ("[]", {400}),
        ({"record_id": 5}, {422}),
        ({"record_id": ["M-LIST"]}, {422}),
        ({"record_id": "M-RID\x07"}, {422}),
        (recent("M-TYPES", certified="yes", score=12.5, holder=[]), {422}),
        (recent("M-DATE", delivered_on=20261118), {422}),
        (huge_name, {422}),
        (control, {422}),
        ({"record_id": "R" * 100_000}, {422}),
        (json.dumps("x" * 10_000_000), {422}),
        ("[" * 100_000 + "]" * 100_000, {200}),  # an array of one event, too deep: unusable
        ('{"record_id": "M-DEEP", "holder": ' + "[" * 50_000 + "]" * 50_000 + "}", {422}),
        ([[[[]]]], {200}),
    ]
    async with serving(core) as client:
        for body, expected in bodies:
            status, answer = await post(client, body)
            shown = body[:60] if isinstance(body, bytes | str) else str(body)[:60]
            assert status in expected, (shown, status, answer)
            if status >= 400 and "error" in answer:
                assert_error_shape(answer)
            status, health = await get(client, "/health")
            assert (status, health) == (200, {"status": "ok"})

        status, detail = await get(client, "/records/M-HUGE")
        assert detail["status"] == "invalid"
        assert "holder.birth_name" in {e["field"] for e in detail["errors"]}
        status, detail = await get(client, "/records/M-CTRL")
        assert "holder.birth_name" in {e["field"] for e in detail["errors"]}
        status, unusable = await get(client, "/unusable", params={"limit": "1000"})
        assert all(len(e["raw"]) <= 4096 for e in unusable["events"])

        status, body = await post(client, recent("M-FINE"))
        assert (status, body["status"]) == (201, "pending")


# --- the batch timer ------------------------------------------------------------------------


async def test_batch_timer_flushes_an_idle_certifier(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    core = core_for(tmp_path, batching={"max_delay": "1s", "tick": "1s"})
    outbox = core.settings.paths.outbox
    cuts: list[object] = []
    flush = core.flusher.flush

    def counted(*args: Any, **kwargs: Any) -> Any:
        report = flush(*args, **kwargs)
        cuts.append(report)
        return report

    monkeypatch.setattr(core.flusher, "flush", counted)
    try:
        async with serving(core, timer=True) as client:
            status, _ = await post(client, recent("TIMER-1"))
            assert status == 201
            deadline = time.monotonic() + 60  # a loaded machine: the bound, not the expected wait
            while not xml_files(outbox) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            files = xml_files(outbox)
            assert len(files) == 1, "the timer did not write the idle certifier's batch"
            assert "TIMER-1" in files[0].read_text(encoding="utf-8")
            deadline = time.monotonic() + 60  # the state follows once the file is released
            while time.monotonic() < deadline:
                status, record = await get(client, "/records/TIMER-1")
                if record["batch_id"] is not None:
                    break
                await asyncio.sleep(0.1)
            assert record["status"] == "batched"
            assert record["batch_id"] in files[0].name
            seen = len(cuts)
            deadline = time.monotonic() + 60
            while len(cuts) < seen + 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            assert len(cuts) >= seen + 2, "the timer stopped cutting"
            assert xml_files(outbox) == files, "a later tick wrote the batch again"
    finally:
        core.close()


async def test_a_nan_event_is_the_same_content_alone_or_in_an_array(tmp_path: Path) -> None:
    """NaN is not JSON: its marker in the stored content is spelled as it was written,
    whether the event came alone or in an array, so sending it again changes nothing."""
    core = core_for(tmp_path)
    one = json.dumps(recent("NAN-1")).replace('"score": "324"', '"score": NaN')
    assert "NaN" in one
    try:
        async with serving(core) as client:
            status, body = await post(client, "[" + one + "]")
            assert status == 200 and body[0]["outcome"] == "created", body
            status, body = await post(client, one)
            assert (status, body["outcome"]) == (422, "unchanged"), body
            status, shown = await get(client, "/records/NAN-1")
            assert shown["content"]["score"] == {"not_json": "NaN"}
    finally:
        core.close()


async def test_a_limit_of_zero_is_refused_not_read_as_a_hundred(core: Core) -> None:
    """`?limit=0` was accepted and answered with 100 rows."""
    async with serving(core) as client:
        for path in ("/records", "/batches", "/unusable"):
            status, answer = await get(client, f"{path}?limit=0")
            assert status == 400, (path, answer)
            assert_error_shape(answer, "bad_parameter")
            assert "within 1–1000" in answer["error"]["message"]
            status, _ = await get(client, f"{path}?limit=1")
            assert status == 200


async def test_no_answer_is_kept_in_a_cache(core: Core) -> None:
    """A record's detail holds the holder's name and birth; the routes are opened in browsers
    too (HTTP Basic): none of them may be kept in a cache or sniffed."""
    async with serving(core) as client:
        async with client.post("/events", json=event("NC-1")) as response:
            assert response.status == 201
        for path in ("/records/NC-1", "/records", "/unusable", "/summary", "/records/NOPE"):
            async with client.get(path) as response:
                assert response.headers.get("Cache-Control") == "no-store", path
                assert response.headers.get("X-Content-Type-Options") == "nosniff", path


async def test_no_answer_names_the_versions_serving_it(core: Core) -> None:
    """aiohttp's default `Server: Python/3.11 aiohttp/3.x` told anyone which known flaws to
    try (the security review); every answer now names the product only."""
    async with serving(core) as client:
        for path in ("/health", "/records", "/metrics", "/openapi.json", "/nope", "/ui"):
            async with client.get(path) as response:
                assert response.headers.get("Server") == "accrochage", (path, response.headers)
        async with client.post("/events", data=b"[]", headers={"Expect": "teapot"}) as response:
            assert response.status == 417
            assert response.headers.get("Server") == "accrochage"


async def test_health_is_degraded_while_the_batch_timer_cannot_store(core: Core) -> None:
    """A full disk found by the timer's cut, with no event arriving to fail: /health said ok
    while nothing was cut towards the deadlines (the crash review)."""
    async with serving(core) as client:
        status, _ = await post(client, [recent(f"HB-{n}") for n in range(300)])
        assert status == 200
        conn = core.store._conn  # type: ignore[attr-defined]
        (pages,) = conn.execute("PRAGMA page_count").fetchone()
        conn.execute(f"PRAGMA max_page_count = {pages}")
        with pytest.raises(StorageFullError):
            await asyncio.to_thread(core.flusher.flush, force=True)
        status, body = await get(client, "/health")
        assert (status, body["status"], body["reason"]) == (503, "degraded", "storage_full")
        conn.execute("PRAGMA max_page_count = 1073741823")
        assert (await asyncio.to_thread(core.flusher.flush, force=True)).written
        assert await get(client, "/health") == (200, {"status": "ok"})


async def test_a_state_found_damaged_when_a_reader_opens_is_said_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening a reader on a damaged file fails before any query (its schema is read at
    once): the answer was a 503, but /health stayed ok."""
    from accrochage.errors import StorageCorruptError

    core = core_for(tmp_path)

    def damaged() -> Any:
        raise StorageCorruptError("the state database is damaged: restore the last backup")

    monkeypatch.setattr(core.store, "reader", damaged)
    try:
        async with serving(core) as client:
            status, body = await get(client, "/records")
            assert (status, body["error"]["code"]) == (503, "storage_corrupt")
            status, health = await get(client, "/health")
            assert (status, health["reason"]) == (503, "storage_corrupt")
    finally:
        core.close()
