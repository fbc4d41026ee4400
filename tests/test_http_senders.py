"""One sender's large bodies cost other senders nothing: a compressed body may not grow more
than `MAX_RATIO` times, and a body that may be large waits, unread, for its sender's turn
(one at a time per sender), while other senders' bodies go on. Two dozen 16 KiB gzip bodies,
each 16 MiB decoded, took 600 MiB of the service and made another platform's array wait 12.7 s.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from accrochage.api.auth import SENDER
from accrochage.api.bodies import MAX_RATIO
from accrochage.api.intake import OFF_LOOP_BYTES, SENDERS_TURNS, senders_turn
from tests.test_http import OPERATOR, PLATFORM, assert_error_shape, core_for, post, recent, serving

OTHER = "other-platform-token-0123456789-abcdef"
LOOP_TURNS = 20
"""Event-loop iterations given to a task that could go on (none blocks on anything else)."""


async def test_a_body_decompressing_beyond_the_ratio_is_413(tmp_path: Path) -> None:
    core = core_for(tmp_path)
    try:
        async with serving(core) as client:
            bomb = gzip.compress(b"[" + b"0," * 4_000_000 + b"0]")
            assert len(bomb) * MAX_RATIO < 8_000_001
            status, answer = await post(client, bomb, headers={"Content-Encoding": "gzip"})
            assert status == 413, answer
            assert_error_shape(answer, "payload_too_large")
            assert answer["error"]["details"] == {"max_ratio": MAX_RATIO}
            events = [recent(f"GZ-{i}") for i in range(200)]
            packed = gzip.compress(json.dumps(events).encode())
            status, answer = await post(client, packed, headers={"Content-Encoding": "gzip"})
            assert status == 200, answer
            assert {a["status"] for a in answer} == {"pending"}
    finally:
        core.close()


def request_of(sender: str | None, length: int, coding: str = "identity") -> web.Request:
    app = web.Application()
    app[SENDERS_TURNS] = TURNS
    headers = {"Content-Length": str(length), "Content-Encoding": coding}
    request = make_mocked_request("POST", "/events", headers=headers, app=app)
    if sender is not None:
        request[SENDER] = sender
    return request


TURNS: dict[str, asyncio.Semaphore] = {}


async def holding(request: web.Request, release: asyncio.Event, entered: list[str]) -> None:
    async with senders_turn(request):
        entered.append(request.get(SENDER, "operator"))
        await release.wait()


async def test_a_sender_waits_for_its_own_large_bodies_only() -> None:
    TURNS.clear()
    large, small = OFF_LOOP_BYTES, 1000
    first_done, entered = asyncio.Event(), []
    first = asyncio.create_task(holding(request_of("a", large), first_done, entered))
    never = asyncio.Event()
    second = asyncio.create_task(holding(request_of("a", large), never, entered))
    coded = asyncio.create_task(
        holding(request_of("a", OFF_LOOP_BYTES // MAX_RATIO + 1, "gzip"), never, entered)
    )
    other = asyncio.create_task(holding(request_of("b", large), never, entered))
    operator = asyncio.create_task(holding(request_of(None, large), never, entered))
    for _ in range(LOOP_TURNS):
        await asyncio.sleep(0)
    assert entered == ["a", "b", "operator"], "a's second and its compressed one wait"
    async with senders_turn(request_of("a", small)):
        entered.append("a small")
    first_done.set()
    for _ in range(LOOP_TURNS):
        await asyncio.sleep(0)
    assert entered == ["a", "b", "operator", "a small", "a"], "a's next in turn, one at a time"
    for task in (first, second, coded, other, operator):
        task.cancel()
    await asyncio.gather(first, second, coded, other, operator, return_exceptions=True)


async def test_two_platforms_large_arrays_are_all_stored(tmp_path: Path) -> None:
    core = core_for(tmp_path, api={"token": OPERATOR, "ingest_tokens": [PLATFORM, OTHER]})
    try:
        async with serving(core) as client:
            sends = []
            for n, token in enumerate((PLATFORM, OTHER) * 3):
                events = [recent(f"LA-{n}-{i}") for i in range(400)]
                assert len(json.dumps(events)) >= OFF_LOOP_BYTES
                headers = {"Authorization": f"Bearer {token}"}
                sends.append(post(client, events, headers=headers))
            answers = await asyncio.gather(*sends)
            assert [status for status, _ in answers] == [200] * 6
            assert all(a["status"] == "pending" for _, body in answers for a in body)
    finally:
        core.close()
