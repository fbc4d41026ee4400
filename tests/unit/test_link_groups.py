"""A writer link's pieces (`api/link_groups.py`): a split request's pieces all read."""

from __future__ import annotations

import asyncio
import gc
import json
from typing import Any

import pytest

from accrochage.api.link_groups import GROUP_EVENTS, fail, pieces
from accrochage.streams.incoming import Incoming


def _events(count: int) -> list[Incoming]:
    return [Incoming(json.dumps({"n": i}).encode()) for i in range(count)]


def unread(loop: asyncio.AbstractEventLoop) -> list[dict[str, Any]]:
    """What the loop is told of futures whose exception nobody read, once they are gone."""
    told: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: told.append(context))
    return told


async def test_every_piece_failed_at_once_is_read() -> None:
    """The writer process gone: every piece of a 750-event request fails together. The
    request fails with it, and no piece's failure is left for asyncio to log."""
    loop = asyncio.get_running_loop()
    told = unread(loop)
    done: asyncio.Future[Any] = loop.create_future()
    split = pieces(_events(3 * GROUP_EVENTS), done)
    assert len(split) == 3
    fail(split, RuntimeError("the writer process ended"))
    with pytest.raises(RuntimeError):
        await done
    del split
    await asyncio.sleep(0)
    gc.collect()
    assert told == []


async def test_a_piece_failing_after_the_request_was_cancelled_is_read() -> None:
    """The client gone (its request's future cancelled), then the disk full."""
    loop = asyncio.get_running_loop()
    told = unread(loop)
    done: asyncio.Future[Any] = loop.create_future()
    split = pieces(_events(2 * GROUP_EVENTS), done)
    done.cancel()
    fail(split, RuntimeError("disk full"))
    del split
    await asyncio.sleep(0)
    gc.collect()
    assert told == []
