"""Senders take turns (`api/turns.py`): one exam platform's flood waits behind its own
requests, never in front of another platform's.

Measured before (`bench/fairness.py`): a platform's arrays of 1,000 made another's single
event wait 533 ms for its acknowledgement (2 ms alone), and its checks 128 ms. Each test
below holds the first platform's work at one place (the writer process stopped, a check or a
decoding that does not finish) and asserts what goes next; none depends on the machine's
speed.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from accrochage.api import server
from accrochage.api.link_groups import GROUP_EVENTS
from accrochage.api.writer_link import ProcessLink
from accrochage.app import Core, build_core
from accrochage.app_writers import build_event_writer
from accrochage.errors import StorageFullError, WriterUnavailable
from accrochage.models.deadline import SystemClock
from accrochage.runtimes.embedded import build_service
from accrochage.runtimes.serving import SWITCH_INTERVAL, serve
from accrochage.settings import load_settings
from accrochage.streams.incoming import Incoming
from tests.test_http import recent
from tests.test_http_writer_process import ANSWER_WITHIN, full_disk_writer, rows, serving
from tests.test_ingest_scope import ANY, OP, PIX, SCOPED_API, post
from tests.test_tracker import write_config
from tests.unit.test_link_groups import unread


@pytest.fixture()
def core(tmp_path: Path) -> Iterator[Core]:
    built = build_core(
        load_settings(write_config(tmp_path, api=SCOPED_API, ingest={"decode_processes": 1})),
        SystemClock(),
    )
    yield built
    built.close()


async def until(condition: Callable[[], bool]) -> None:
    """Wait for `condition`, within `ANSWER_WITHIN` seconds."""
    deadline = asyncio.get_running_loop().time() + ANSWER_WITHIN
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "never came"
        await asyncio.sleep(0.01)


async def _started_link(core: Core, build: Any = build_event_writer) -> ProcessLink:
    """A writer process built by `build` on `core`'s state, started."""
    tick = core.settings.batching.tick.total_seconds()
    link = ProcessLink(partial(build, core.settings.paths.state, core.registry, core.clock, tick))
    await link.start()
    return link


def _events(prefix: str, count: int) -> list[Incoming]:
    return [Incoming(json.dumps(recent(f"{prefix}-{i:04d}")).encode()) for i in range(count)]


async def test_a_platform_s_event_is_stored_before_another_s_queued_arrays(core: Core) -> None:
    """The writer process stopped while platform a's arrays wait: b's single event, sent
    after them, is stored in the next group, before a's second array. Before, groups were
    first come, first served, and arrays went whole: b's event came after all of a's."""
    link = await _started_link(core)
    pid = link._process.pid  # the test stops and resumes the writer process
    try:
        os.kill(pid, signal.SIGSTOP)
        first = link.store(_events("A1", 600), "a")
        await asyncio.sleep(0.05)
        second = link.store(_events("A2", 500), "a")
        await asyncio.sleep(0.05)
        single = link.store(_events("B", 1), "b")
        await asyncio.sleep(0.05)
        os.kill(pid, signal.SIGCONT)
        answers = await asyncio.wait_for(asyncio.gather(first, second, single), ANSWER_WITHIN)
    finally:
        os.kill(pid, signal.SIGCONT)
        await link.close()
    # Each request answered with its own events' results, in its order, across its pieces.
    for answer, prefix, count in zip(answers, ("A1", "A2", "B"), (600, 500, 1), strict=True):
        assert [r.record_id for r in answer] == [f"{prefix}-{i:04d}" for i in range(count)]
        assert all(r.accepted for r in answer)
    order = [
        r
        for (r,) in rows(core.settings.paths.state, "SELECT record_id FROM history ORDER BY rowid")
    ]
    assert len(order) == len(set(order)) == 1101  # each stored once
    at = order.index("B-0000")
    assert at < min(i for i, r in enumerate(order) if r.startswith("A2-"))
    assert at <= 2 * GROUP_EVENTS  # behind the two groups already sent, no more


async def test_an_array_in_pieces_fails_whole_when_its_pieces_fail(core: Core) -> None:
    """The disk full: every piece of a 600-event array fails; the request is answered with
    the storage's own error (507), and no piece's failure is left unread."""
    told = unread(asyncio.get_running_loop())
    link = await _started_link(core, full_disk_writer)
    try:
        with pytest.raises(StorageFullError):
            await asyncio.wait_for(link.store(_events("F", 600), "a"), ANSWER_WITHIN)
    finally:
        await link.close()
    assert rows(core.settings.paths.state, "SELECT count(*) FROM records") == [(0,)]
    gc.collect()
    assert told == []


async def test_an_array_in_pieces_fails_whole_when_the_writer_process_is_killed(
    core: Core,
) -> None:
    """The writer process killed (stopped first, so that nothing is stored) while a
    1,000-event array (four pieces) and another platform's event wait: both are answered
    503 (never a hang), and no piece's failure is left unread. Before, three were."""
    told = unread(asyncio.get_running_loop())
    link = await _started_link(core)
    pid = link._process.pid  # the test stops and kills the writer process
    try:
        os.kill(pid, signal.SIGSTOP)
        waiting = [link.store(_events("K", 1000), "a"), link.store(_events("L", 1), "b")]
        os.kill(pid, signal.SIGKILL)
        for done in waiting:
            with pytest.raises(WriterUnavailable):
                await asyncio.wait_for(done, ANSWER_WITHIN)
    finally:
        await link.close()
    del waiting, done
    gc.collect()
    assert told == []


async def test_a_platform_s_checks_run_one_at_a_time_and_another_s_check_goes_meanwhile(
    core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pix platform's first check does not finish until the other platform's check
    has been answered: its other two wait their turn, and the other platform's goes."""
    real_check = server.check
    release = threading.Event()
    running: dict[str, int] = {}
    most: dict[str, int] = {}
    lock = threading.Lock()

    def check(items: list[Incoming], *args: Any) -> Any:
        sender = "pix" if "PIX" in str(items[0].raw) else "other"
        with lock:
            running[sender] = running.get(sender, 0) + 1
            most[sender] = max(most.get(sender, 0), running[sender])
        try:
            if sender == "pix":
                assert release.wait(2 * ANSWER_WITHIN)  # longer than the other check is given
            return real_check(items, *args)
        finally:
            with lock:
                running[sender] -= 1

    monkeypatch.setattr(server, "check", check)
    async with serving(build_service(core, timer=False, separate_writer=True)) as client:
        flood = [
            asyncio.create_task(
                post(client, [recent(f"PIX-{n}-{i}") for i in range(50)], PIX, "/check")
            )
            for n in range(3)
        ]
        await until(lambda: running.get("pix") == 1)
        status, answer = await asyncio.wait_for(
            post(client, recent("OTHER-1", certifier="school"), ANY, "/check"), ANSWER_WITHIN
        )
        assert status == 200 and answer["valid"] is True
        release.set()
        answers = await asyncio.wait_for(asyncio.gather(*flood), ANSWER_WITHIN)
    assert [status for status, _ in answers] == [200, 200, 200]
    assert most == {"pix": 1, "other": 1}


@pytest.mark.parametrize("arriving", [0.0, 0.5])
async def test_arrays_go_to_the_decode_processes_in_senders_turns(
    core: Core, monkeypatch: pytest.MonkeyPatch, arriving: float
) -> None:
    """One decode process, two arrays at a time in it: the pix platform's three arrays and
    the other platform's one, sent in that order; the other's goes third, before pix's
    third. The first two stay undecoded until the other's is waiting its turn.

    `arriving`: the other's body takes that long to be read, as on a loaded machine. The
    test used to give it 0.2 s to arrive, then failed (pix's third went first)."""
    real_body = server._body

    async def body(request: Any) -> bytes:
        read = await real_body(request)
        if b"OTHER" in read:
            await asyncio.sleep(arriving)
        return read

    monkeypatch.setattr(server, "_body", body)
    assert core.decoder is not None and core.decoder.processes == 1
    real_submit = core.decoder.submit
    submitted: list[str] = []
    first_done: Future[None] = Future()

    def submit(items: Any) -> Any:
        submitted.append("pix" if "PIX" in str(items[0].raw) else "other")
        decoding = real_submit(items)
        if len(submitted) > 2:
            return decoding
        held: Future[Any] = Future()  # decoded once the test says so
        first_done.add_done_callback(lambda _: held.set_result(decoding.result()))
        return held

    monkeypatch.setattr(core.decoder, "submit", submit)
    size = server.POOL_MIN_EVENTS
    app = build_service(core, timer=False, separate_writer=True)
    turns = app[server.DECODE_TURNS]

    def waiting() -> int:
        return sum(1 for queue in turns._waiting.values() for ready in queue if not ready.done())

    async with serving(app) as client:
        pix = [
            asyncio.create_task(post(client, [recent(f"PIX-{n}-{i}") for i in range(size)], PIX))
            for n in range(3)
        ]
        await until(lambda: len(submitted) == 2 and waiting() == 1)  # pix's third waits
        other = asyncio.create_task(
            post(client, [recent(f"OTHER-{i}", certifier="school") for i in range(size)], ANY)
        )
        await until(lambda: waiting() == 2)  # the other's too: its turn before pix's third
        first_done.set_result(None)
        answers = await asyncio.wait_for(asyncio.gather(*pix, other), ANSWER_WITHIN)
    assert [status for status, _ in answers] == [200] * 4
    assert all(r["http_status"] == 201 for _, body in answers for r in body)
    assert submitted == ["pix", "pix", "other", "pix"]


async def test_a_platform_polling_its_records_leaves_a_reader_thread_for_the_operator(
    core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Five reads of the pix platform that do not finish: three hold reader threads, two
    wait their turn, and the operator's summary is answered meanwhile. Before, the pix
    platform's reads took all four threads and the operator's waited for them."""
    opened = core.store.reader()
    reader_class = type(opened)
    opened.close()
    real_outstanding = reader_class.outstanding
    release = threading.Event()
    running = 0
    most = 0
    lock = threading.Lock()

    def outstanding(self: Any, query: Any) -> Any:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        try:
            assert release.wait(2 * ANSWER_WITHIN)  # longer than the summary is given
            return real_outstanding(self, query)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(reader_class, "outstanding", outstanding)
    async with serving(build_service(core, timer=False, separate_writer=True)) as client:

        async def records() -> int:
            async with client.get("/records", headers=PIX) as response:
                return response.status

        polling = [asyncio.create_task(records()) for _ in range(5)]
        await until(lambda: running == 3)  # pix's share of the reader threads

        async def summary() -> int:
            async with client.get("/summary", headers=OP) as response:
                return response.status

        assert await asyncio.wait_for(summary(), ANSWER_WITHIN) == 200
        release.set()
        assert await asyncio.wait_for(asyncio.gather(*polling), ANSWER_WITHIN) == [200] * 5
    assert most == 3


async def test_the_service_switches_threads_often_while_it_serves(core: Core) -> None:
    """The event loop shares the interpreter lock with the reader threads: while the service
    serves, a thread holding it gives it up after `SWITCH_INTERVAL` (1 ms, not CPython's
    5 ms: another platform's event waited 23.5 ms under one platform's checks, 8.1 ms with
    it, `bench.fairness`); the interval is given back when the service stops."""
    before = sys.getswitchinterval()
    assert before > SWITCH_INTERVAL
    seen: list[float] = []
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen()

    def started() -> None:
        seen.append(sys.getswitchinterval())
        os.kill(os.getpid(), signal.SIGTERM)  # the service's own handler: it stops

    await asyncio.wait_for(
        serve(build_service(core, timer=False), listening, started), ANSWER_WITHIN
    )
    listening.close()
    assert seen == [SWITCH_INTERVAL]
    assert sys.getswitchinterval() == before
