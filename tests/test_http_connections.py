"""How many connections the service holds: about a thousand idle connections from anyone (no
token needed to connect) exhausted its open files, its log grew by a traceback per accept
retry, and the batch timer failed to open the state. Now one address cannot take more than its
share, the total stays below the open-files limit, and a silent connection is closed soon."""

from __future__ import annotations

import asyncio
import json
import logging
import resource
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import aiohttp
import pytest

from accrochage.api import connections, protocol
from accrochage.api.connections import RESERVED_FILES, ConnectionLimits, fitted
from tests.test_http import assert_error_shape, core_for, get, post, recent, serving
from tests.test_http_hostile import raw_request, served_port

WAIT_STEPS = 200
"""Polls of 50 ms at most (10 s) for the service to notice a connection closed."""


@asynccontextmanager
async def held(port: int, count: int) -> AsyncIterator[list[asyncio.StreamWriter]]:
    """`count` connections that send nothing, open until the block ends."""
    async with AsyncExitStack() as stack:
        writers = []
        for _ in range(count):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            stack.callback(writer.close)
            writers.append(writer)
        yield writers


async def health_once_room(client: aiohttp.ClientSession) -> int:
    """`GET /health`'s status once the service has room for the request's connection."""
    for _ in range(WAIT_STEPS):
        status, _ = await get(client, "/health")
        if status != 503:
            return status
        await asyncio.sleep(0.05)
    raise AssertionError("the service never released a closed connection")


@pytest.mark.parametrize(
    "limits",
    [{"max_connections_per_client": 3}, {"max_connections": 3}],
    ids=["per client", "in all"],
)
async def test_a_connection_over_the_limit_is_503_and_the_others_are_served(
    tmp_path: Path, limits: dict[str, int]
) -> None:
    core = core_for(tmp_path, api=limits)
    try:
        async with serving(core) as client:
            port = served_port(client)
            async with held(port, 3) as idle:
                status, headers, body = await raw_request(port, b"")
                assert status == 503, body
                assert headers["connection"] == "close" and headers["retry-after"] == "1"
                # Like every answer (README): it is written before aiohttp sees the connection.
                assert headers["cache-control"] == "no-store", headers
                assert headers["x-content-type-options"] == "nosniff", headers
                assert headers["server"] == "accrochage", headers
                assert_error_shape(json.loads(body), "too_many_connections")
                status, _ = await get(client, "/health")
                assert status == 503, "the client's own connection is one too many"
                idle[0].write(
                    b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                )
                await idle[0].drain()
            assert await health_once_room(client) == 200
            status, answer = await post(client, recent("AFTER-FLOOD"))
            assert (status, answer["status"]) == (201, "pending")
    finally:
        core.close()


async def test_refused_connections_are_logged_once_not_each(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One line per `REFUSALS_LOGGED_EVERY` (made longer than any run here), not one each."""
    monkeypatch.setattr(connections, "REFUSALS_LOGGED_EVERY", 10**9)
    core = core_for(tmp_path, api={"max_connections_per_client": 1})
    caplog.set_level(logging.INFO, logger="accrochage.api")
    try:
        async with serving(core) as client:
            port = served_port(client)
            async with held(port, 1):
                for _ in range(50):
                    status, _, _ = await raw_request(port, b"")
                    assert status == 503
    finally:
        core.close()
    said = [r.getMessage() for r in caplog.records if "refused (503)" in r.getMessage()]
    assert len(said) == 1, said


async def test_a_silent_connection_is_closed_soon_a_slow_head_is_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection that sends nothing is closed after `FIRST_BYTE_SECONDS`; one whose head
    has begun has `api.body_timeout` (60 s) for the rest.

    Not a race with the 0.3 s: server and client share this event loop, the first bytes are
    written as soon as the connection is made (into the kernel, before the loop's next turn),
    and asyncio runs the callbacks of ready sockets before the timers due in the same turn:
    however late that turn comes, the bytes are seen first."""
    monkeypatch.setattr(protocol, "FIRST_BYTE_SECONDS", 0.3)
    core = core_for(tmp_path)
    try:
        async with serving(core) as client:
            port = served_port(client)
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                assert await asyncio.wait_for(reader.read(), timeout=30) == b"", "closed"
            finally:
                writer.close()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(b"GET /hea")
                await writer.drain()
                await asyncio.sleep(1.0)
                writer.write(b"lth HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                await writer.drain()
                answer = await asyncio.wait_for(reader.read(), timeout=30)
            finally:
                writer.close()
            assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    finally:
        core.close()


def test_the_limits_fit_the_open_files(caplog: pytest.LogCaptureFixture) -> None:
    """The soft open-files limit is raised to the hard one, and a total the process cannot
    hold is lowered to what it can, with a warning."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    caplog.set_level(logging.WARNING, logger="accrochage.api")
    limits = fitted(ConnectionLimits(total=10**6, per_client=10**6))
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY:
        assert soft == hard
    assert limits.total == limits.per_client == soft - RESERVED_FILES
    assert any("ulimit -n" in r.getMessage() for r in caplog.records)
    assert fitted(ConnectionLimits(total=50, per_client=5)) == ConnectionLimits(50, 5)
