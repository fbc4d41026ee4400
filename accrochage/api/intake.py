"""The events of a `POST /events` or `POST /check` body, and where reading them runs.

A small body is parsed (and decoded, for a writer process) on the event loop: a thread hop
costs more than the work. A large one is read in a thread, one such request at a time: parsing
a 16 MiB body of a million and a half keys and building its errors held the loop for 4.5 s,
every other client and `GET /health` waiting, and three at once took 1.6 GB.

A body that may be large (by its length on the wire, times what it may decompress to) waits
for its sender's turn before it is even read: one such body per sender at a time. Two dozen
concurrent gzip bodies of 16 KiB from one platform, each 16 MiB decoded, took 600 MiB and
made another platform's array wait 12.7 s; now they wait in their own sender's queue, unread.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web

from accrochage.api.auth import sender_of
from accrochage.api.bodies import MAX_RATIO
from accrochage.api.errors import ApiError
from accrochage.models.json_input import ELEMENT_DECODER, loads_json
from accrochage.models.scope import Scope
from accrochage.streams.incoming import Incoming

T = TypeVar("T")
OFF_LOOP_BYTES = 256 * 1024
"""A body this large or larger is read off the event loop (about 400 events)."""
LARGE_BODIES = web.AppKey("large_bodies", asyncio.Semaphore)
SENDERS_TURNS = web.AppKey("senders_turns", dict)
"""Each sender's `asyncio.Semaphore(1)` for the bodies that may be large."""
_ONE_OBJECT = re.compile(rb"[ \t\r\n]*\{")
"""A body that starts as an object: one event, whatever follows (an array starts with `[`
in every encoding JSON detects)."""


def may_be_large(request: web.Request) -> bool:
    """Whether the request's body may be `OFF_LOOP_BYTES` or more once decoded (a chunked body
    says no length: it may)."""
    length = request.content_length
    if length is None:
        return True
    coding = (request.headers.get("Content-Encoding") or "identity").strip().lower()
    return length * (1 if coding == "identity" else MAX_RATIO) >= OFF_LOOP_BYTES


@asynccontextmanager
async def senders_turn(request: web.Request) -> AsyncIterator[None]:
    """Held while a body that may be large is read and parsed: one per sender at a time."""
    if not may_be_large(request):
        yield
        return
    turns: dict[str, asyncio.Semaphore] = request.app[SENDERS_TURNS]
    async with turns.setdefault(sender_of(request), asyncio.Semaphore(1)):
        yield


@dataclass(frozen=True, slots=True)
class _TooDeep:
    """An element of an array nested too deeply to parse: its text, decoded (and answered
    unusable) alone."""

    text: str


def events_in(
    body: bytes, limit: int, source: str, scope: Scope = None
) -> tuple[list[Incoming], bool]:
    """The events of a body (one, or an array of at most `limit`), and whether it was an
    array; each carries its sender's `scope`. A body that is not JSON is one event, decoded
    again (and answered unusable) like any other; so is an element of an array nested too
    deeply to parse, the others read. An empty body is no event: `400 empty_body`."""
    if not body.strip():
        raise ApiError(
            400,
            "empty_body",
            "the request has no body: send one event (a JSON object) or an array of events",
        )
    if _ONE_OBJECT.match(body) is not None:
        # Decoding parses it. Parsing it here too, only to learn that it is no array, read
        # every single-event request's JSON twice in the serving process.
        return [Incoming(body, source, scope=scope)], False
    try:
        parsed = loads_json(body)
    except RecursionError:
        parsed = _array_elements(body)
    except (ValueError, UnicodeDecodeError):
        parsed = None
    if not isinstance(parsed, list):
        return [Incoming(body, source, scope=scope)], False
    if len(parsed) > limit:
        raise ApiError(
            413,
            "too_many_events",
            f"the array holds {len(parsed)} events; api.max_events_per_request is {limit}: "
            "split it",
            {"max_events_per_request": limit},
        )
    if not parsed:
        raise ApiError(400, "empty_array", "the array holds no event: send at least one")
    return [_incoming(element, source, scope) for element in parsed], True


def _incoming(element: Any, source: str, scope: Scope) -> Incoming:
    if isinstance(element, _TooDeep):
        return Incoming(element.text, source, scope=scope)
    raw = element if isinstance(element, dict) else json.dumps(element)
    return Incoming(raw, source, scope=scope)


def _array_elements(body: bytes) -> list[Any] | None:
    """An array's elements parsed one by one, an element too deep to parse kept as its text;
    None when the body is not an array whose elements can be told apart."""
    try:
        text = body.decode(json.detect_encoding(body), "surrogatepass")
    except UnicodeDecodeError:
        return None
    at = _skip_space(text, 0)
    if not text.startswith("[", at):
        return None
    elements: list[Any] = []
    at = _skip_space(text, at + 1)
    if text.startswith("]", at):
        return elements
    while True:
        try:
            element, end = ELEMENT_DECODER.raw_decode(text, at)
        except RecursionError:
            skipped = _value_end(text, at)
            if skipped is None:
                return None
            element, end = _TooDeep(text[at:skipped]), skipped
        except ValueError:
            return None
        elements.append(element)
        at = _skip_space(text, end)
        if text.startswith("]", at):
            return elements if not text[at + 1 :].strip() else None
        if not text.startswith(",", at):
            return None
        at = _skip_space(text, at + 1)


def _skip_space(text: str, at: int) -> int:
    while at < len(text) and text[at] in " \t\r\n":
        at += 1
    return at


def _value_end(text: str, start: int) -> int | None:
    """Where the array or object at `start` ends (strings and escapes skipped), without
    parsing it: its depth is what parsing could not take."""
    depth, in_string, escaped = 0, False, False
    for at in range(start, len(text)):
        char = text[at]
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
            if depth == 0:
                return at + 1
        elif depth == 0:
            return None
    return None


async def off_loop_if_large(app: web.Application, body: bytes, work: Callable[[], T]) -> T:
    """`work()` here for a small body; in a thread for a large one, one at a time."""
    if len(body) < OFF_LOOP_BYTES:
        return work()
    async with app[LARGE_BODIES]:
        return await asyncio.to_thread(work)
