"""`POST /events` through the writer process (`api/writer_link.py`), as `accrochage run` stores.

Concurrent single-event requests are gathered into groups: each must still be stored exactly
once, answered with its own result (a bad event its own 422, never its neighbours'), only
after its transaction committed (a kill -9 of the service after the answers loses none), and
a writer process that dies fails requests with 503 in the one error shape, never a hang.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from accrochage.api import writer_link
from accrochage.api.protocol import ApiRunner
from accrochage.api.server import build_app
from accrochage.api.writer_link import ProcessLink
from accrochage.app import Core, build_core
from accrochage.app_writers import build_event_writer
from accrochage.errors import WriterUnavailable
from accrochage.models.deadline import Clock
from accrochage.models.registry import Registry
from accrochage.runtimes.embedded import api_context, build_service
from accrochage.settings import load_settings
from accrochage.streams.incoming import Incoming
from accrochage.streams.writer import WriterService
from tests.test_http import TIMEOUT, assert_error_shape, recent
from tests.test_http_hostile import SURROGATE_FIELDS, with_surrogate
from tests.test_metrics import counter, scrape
from tests.test_service_process import free_port, wait_healthy
from tests.test_tracker import write_config

ANSWER_WITHIN = 20.0
"""Seconds a request may take before the test calls it a hang (never reached when it passes)."""


@pytest.fixture()
def core(tmp_path: Path) -> Iterator[Core]:
    built = build_core(load_settings(write_config(tmp_path)))
    yield built
    built.close()


@asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[aiohttp.ClientSession]:
    runner = ApiRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        connector = aiohttp.TCPConnector(limit=16)
        async with aiohttp.ClientSession(
            base_url=f"http://127.0.0.1:{port}", timeout=TIMEOUT, connector=connector
        ) as client:
            yield client
    finally:
        await asyncio.wait_for(runner.cleanup(), timeout=60)


async def post(client: aiohttp.ClientSession, body: Any) -> tuple[int, Any]:
    async with client.post(
        "/events", data=json.dumps(body), headers={"Content-Type": "application/json"}
    ) as response:
        return response.status, await response.json()


def rows(state: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(state)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


async def test_concurrent_single_events_are_each_stored_once_with_their_own_answer(
    core: Core,
) -> None:
    good = [recent(f"C-{i:03d}") for i in range(120)]
    bad = [recent(f"C-BAD-{i}", obtention="PAR_HASARD") for i in range(3)]
    bodies = good[:40] + bad[:1] + good[40:80] + bad[1:] + good[80:]
    before = scrape(core.metrics)
    async with serving(build_service(core, timer=False, separate_writer=True)) as client:
        answers = await asyncio.gather(*(post(client, body) for body in bodies))
        again = await post(client, dict(good[0], event_id="re-sent"))
    by_id = {body["record_id"]: answer for body, answer in zip(bodies, answers, strict=True)}
    for body in good:
        status, answer = by_id[body["record_id"]]
        assert status == 201, answer
        assert (answer["record_id"], answer["status"]) == (body["record_id"], "pending")
    for body in bad:
        status, answer = by_id[body["record_id"]]
        assert status == 422
        assert answer["record_id"] == body["record_id"]
        assert [e["field"] for e in answer["errors"]] == ["obtention"]
    assert again[0] == 200 and again[1]["outcome"] == "unchanged"
    state = core.settings.paths.state
    stored = dict(rows(state, "SELECT record_id, status FROM records"))
    assert len(stored) == len(bodies)
    assert all(stored[b["record_id"]] == "pending" for b in good)
    assert all(stored[b["record_id"]] == "invalid" for b in bad)
    created = rows(state, "SELECT record_id, count(*) FROM history GROUP BY record_id")
    assert {n for _, n in created} == {1}  # one creation each: none stored twice
    # Decoded once, in the serving process: flush copies these instead of validating again.
    prepared = dict(rows(state, "SELECT record_id, schema_version FROM passages"))
    assert prepared == {b["record_id"]: core.settings.schema_.version for b in good}
    after, name = scrape(core.metrics), "accrochage_events_total"  # counted in the serving process
    for outcome, n in (("created", 120), ("invalid", 3), ("unchanged", 1)):
        assert counter(after, name, outcome) - counter(before, name, outcome) == n


async def test_a_lone_surrogate_among_concurrent_events_fails_only_its_own(core: Core) -> None:
    """Gathered into the same groups as valid events, a poisoned one is its own 422."""
    valid = [recent(f"OK-{i:03d}") for i in range(200)]
    bad = [with_surrogate(f"BAD-{i}", path) for i, path in enumerate(SURROGATE_FIELDS)]
    async with serving(build_service(core, timer=False, separate_writer=True)) as client:

        async def send(body: str) -> tuple[int, Any]:
            async with client.post(
                "/events", data=body, headers={"Content-Type": "application/json"}
            ) as response:
                return response.status, await response.json()

        answers = await asyncio.gather(*(send(json.dumps(e)) for e in valid), *map(send, bad))
    assert {status for status, _ in answers[: len(valid)]} == {201}
    for (status, body), path in zip(answers[len(valid) :], SURROGATE_FIELDS, strict=True):
        assert status == 422
        assert any(e["field"] == ".".join(path) for e in body["errors"]), body
    stored = {r for (r,) in rows(core.settings.paths.state, "SELECT record_id FROM records")}
    assert {e["record_id"] for e in valid} <= stored


async def test_a_decimal_score_keeps_its_digits_through_the_writer_process(core: Core) -> None:
    body = [recent("S-1", score=12.50), recent("S-2")]
    async with serving(build_service(core, timer=False, separate_writer=True)) as client:
        async with client.post(
            "/events",
            data=json.dumps(body).replace("12.5", "12.50"),
            headers={"Content-Type": "application/json"},
        ) as response:
            assert response.status == 200
            assert [r["http_status"] for r in await response.json()] == [201, 201]
        async with client.get("/records/S-1") as response:
            detail = await response.json()
    assert detail["content"]["score"] == "12.50"


def _writer_pid(link: ProcessLink) -> int:
    pid = link._process.pid  # the test needs the process to kill
    assert isinstance(pid, int)
    return pid


def _linked_app(core: Core, build: Any) -> tuple[ProcessLink, web.Application]:
    """The API storing through a writer process built by `build` (started with the app)."""
    tick = core.settings.batching.tick.total_seconds()
    link = ProcessLink(partial(build, core.settings.paths.state, core.registry, core.clock, tick))
    app = build_app(api_context(core, link))

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await link.start()
        yield
        await link.close()

    app.cleanup_ctx.append(lifecycle)
    return link, app


async def test_a_dead_writer_process_is_503_not_a_hang(core: Core) -> None:
    link, app = _linked_app(core, build_event_writer)
    async with serving(app) as client:
        status, _ = await post(client, recent("D-1"))
        assert status == 201
        os.kill(_writer_pid(link), signal.SIGKILL)
        answers = await asyncio.wait_for(
            asyncio.gather(*(post(client, recent(f"D-{i}")) for i in range(2, 6))),
            ANSWER_WITHIN,
        )
        for status, body in answers:
            assert status == 503
            assert_error_shape(body, "writer_unavailable")
        async with client.get("/health") as response:
            assert response.status == 503
            health = await response.json()
        assert (health["status"], health["reason"]) == ("degraded", "writer_unavailable")
        told = health["message"]
        assert "restart the service" in told, "the operator's advice"
        assert "send it again" not in told, "a platform's advice"
    assert rows(core.settings.paths.state, "SELECT record_id FROM records") == [("D-1",)]


async def test_a_writer_process_that_stops_answering_is_ended_at_stop(
    core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer still busy (here: stopped) when the service stops is ended once the wait is
    over: left alive, as it ignores SIGTERM, it kept the service from ever exiting."""
    monkeypatch.setattr(writer_link, "STOP_SECONDS", 1.0)
    tick = core.settings.batching.tick.total_seconds()
    link = ProcessLink(
        partial(build_event_writer, core.settings.paths.state, core.registry, core.clock, tick)
    )
    await link.start()
    pid = _writer_pid(link)
    try:
        first = link.store([Incoming(json.dumps(recent("H-1")).encode())])
        assert [r.accepted for r in await asyncio.wait_for(first, ANSWER_WITHIN)] == [True]
        os.kill(pid, signal.SIGSTOP)
        waiting = link.store([Incoming(json.dumps(recent("H-2")).encode())])
        await asyncio.wait_for(link.close(), ANSWER_WITHIN)
        assert link._process.exitcode == -signal.SIGKILL
        with pytest.raises(WriterUnavailable):
            await asyncio.wait_for(waiting, ANSWER_WITHIN)
    finally:
        if link._process.is_alive():
            os.kill(pid, signal.SIGKILL)


def full_disk_writer(
    state: Path, registry: Registry, clock: Clock, tick: float
) -> tuple[WriterService, Any]:
    """The writer process's parts, its state unable to grow (a full disk, for the store)."""
    service, close = build_event_writer(state, registry, clock, tick)
    conn = service._ingestor.store._conn  # type: ignore[attr-defined]
    (pages,) = conn.execute("PRAGMA page_count").fetchone()
    conn.execute(f"PRAGMA max_page_count = {pages}")
    return service, close


async def test_a_full_disk_in_the_writer_process_is_507_and_health_degraded(core: Core) -> None:
    _, app = _linked_app(core, full_disk_writer)
    async with serving(app) as client:
        answers = await asyncio.gather(*(post(client, recent(f"F-{i}")) for i in range(30)))
        assert {status for status, _ in answers} == {507}
        for _, body in answers:
            assert_error_shape(body, "storage_full")
        async with client.get("/health") as response:
            assert response.status == 503
            assert (await response.json())["reason"] == "storage_full"


@pytest.mark.parametrize("per_request", [1, 600])
async def test_every_201_survives_a_kill_9_of_the_service(tmp_path: Path, per_request: int) -> None:
    """`accrochage run` (its writer in a process of its own) killed while clients post: the
    state holds every event answered 201, once. Arrays of 600 are stored in pieces (250
    events a group): their answer comes once every piece committed."""
    port = free_port()
    config = write_config(tmp_path, api={"bind": f"127.0.0.1:{port}"})
    base = f"http://127.0.0.1:{port}"
    log = (tmp_path / "service.log").open("wb")
    service = subprocess.Popen(
        [sys.executable, "-m", "accrochage", "--config", str(config), "run"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    answered: list[str] = []
    try:
        await wait_healthy(base, service)

        async def client(session: aiohttp.ClientSession, worker: int) -> None:
            for i in range(10_000):
                ids = [f"K-{worker}-{i}-{n}" for n in range(per_request)]
                body: Any = [recent(r) for r in ids] if per_request > 1 else recent(ids[0])
                try:
                    async with session.post("/events", json=body) as response:
                        if response.status == 201:
                            answered.append(ids[0])
                        elif response.status == 200:
                            answers = await response.json()
                            answered.extend(
                                r
                                for r, a in zip(ids, answers, strict=True)
                                if a["http_status"] == 201
                            )
                except aiohttp.ClientError:
                    return

        async with aiohttp.ClientSession(base_url=base, timeout=TIMEOUT) as session:
            clients = [asyncio.create_task(client(session, w)) for w in range(8)]
            deadline = asyncio.get_running_loop().time() + 120
            while len(answered) < (300 if per_request == 1 else 3 * per_request):
                assert service.poll() is None, "the service ended before it was killed"
                assert asyncio.get_running_loop().time() < deadline, "the answers never came"
                await asyncio.sleep(0.01)
            service.send_signal(signal.SIGKILL)
            service.wait(timeout=30)
            await asyncio.wait_for(asyncio.gather(*clients), ANSWER_WITHIN)
    finally:
        if service.poll() is None:
            service.kill()
            service.wait()
        log.close()
    # The writer process may still commit the group it held when the service died (it ends
    # once it notices): both counts are read in one snapshot, whatever the machine's speed.
    conn = sqlite3.connect(load_settings(config).paths.state, isolation_level=None)
    try:
        conn.execute("BEGIN")
        stored = {r for (r,) in conn.execute("SELECT record_id FROM records")}
        [created] = conn.execute("SELECT count(*), count(DISTINCT record_id) FROM history")
    finally:
        conn.close()
    assert set(answered) <= stored, sorted(set(answered) - stored)[:5]
    assert created[0] == created[1] == len(stored)
