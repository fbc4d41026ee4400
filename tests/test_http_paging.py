"""Every listing route pages: `limit` rows at most, and `next_cursor` to read on from.

`GET /records` has its own test (`test_http.py`); here `GET /batches`, `GET /unusable` and
`GET /correction-requests`, walked page by page at several sizes, must give each row once, in
the order of the whole listing, including rows that tie on the first sort key.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from accrochage.app import Core
from tests.test_http import REAL_TODAY, assert_error_shape, core_for, get, post, recent, serving

SIZES = (1, 2, 7, 1000)


@pytest.fixture()
def core(tmp_path: Path) -> Iterator[Core]:
    built = core_for(tmp_path, batching={"max_records": 2})
    yield built
    built.close()


async def walk(
    client: aiohttp.ClientSession, path: str, rows: str, key: str, size: int, **query: str
) -> list[Any]:
    """Every row's `key`, page after page of `size` rows."""
    seen: list[Any] = []
    params = {**query, "limit": str(size)}
    for _ in range(200):
        status, page = await get(client, path, params=params)
        assert status == 200, page
        assert len(page[rows]) <= size
        seen += [row[key] for row in page[rows]]
        if page["next_cursor"] is None:
            return seen
        assert len(page[rows]) == size, "a page with a next one is full"
        params = {**query, "limit": str(size), "cursor": page["next_cursor"]}
    raise AssertionError(f"{path}: more than 200 pages")


async def test_batches_page_through_batches_cut_in_the_same_instant(core: Core) -> None:
    async with serving(core) as client:
        events = [recent(f"B-{i:02d}") for i in range(15)]
        events += [recent(f"S-{i:02d}", certifier="school") for i in range(6)]
        status, _ = await post(client, events)
        assert status == 200
        report = await asyncio.to_thread(core.flusher.flush, force=True)
        assert report.ok and len(report.written) == 11

        status, whole = await get(client, "/batches", params={"limit": "1000"})
        assert status == 200 and whole["next_cursor"] is None
        everything = [b["batch_id"] for b in whole["batches"]]
        assert len(set(everything)) == 11
        created = [b["created_at"] for b in whole["batches"]]
        assert len(set(created)) < len(created), "batches of one cut share their created_at"
        for size in SIZES:
            assert await walk(client, "/batches", "batches", "batch_id", size) == everything

        schools = [b["batch_id"] for b in whole["batches"] if b["certifier"] == "school"]
        for size in (1, 2):
            walked = await walk(client, "/batches", "batches", "batch_id", size, certifier="school")
            assert walked == schools


async def test_unusable_events_page_newest_first(core: Core) -> None:
    async with serving(core) as client:
        for i in range(9):
            status, _ = await post(client, {"type": "certification.delivered", "seq": i})
            assert status == 422
        status, whole = await get(client, "/unusable", params={"limit": "1000"})
        assert status == 200 and whole["next_cursor"] is None
        ids = [e["id"] for e in whole["events"]]
        assert len(ids) == 9 and ids == sorted(ids, reverse=True)
        for size in SIZES:
            assert await walk(client, "/unusable", "events", "id", size) == ids


async def test_correction_requests_page_open_ones_first(core: Core) -> None:
    async with serving(core) as client:
        opened: list[str] = []
        for i in range(12):
            received = (REAL_TODAY - timedelta(days=i % 3)).isoformat()  # deadlines tie
            body = {"record_id": f"C-{i:02d}", "received_on": received}
            async with client.post("/correction-requests", json=body) as response:
                assert response.status == 201
                opened.append((await response.json())["request_id"])
        for request_id in opened[::4]:
            answer = {"unfounded": "the data was right as sent"}
            path = f"/correction-requests/{request_id}/answer"
            async with client.post(path, json=answer) as response:
                assert response.status == 200

        status, whole = await get(client, "/correction-requests", params={"limit": "1000"})
        assert status == 200 and whole["next_cursor"] is None
        listed = whole["correction_requests"]
        everything = [r["request_id"] for r in listed]
        assert sorted(everything) == sorted(opened)
        states = [r["status"] for r in listed]
        assert states == sorted(states, key=lambda s: s != "open") and "open" in states
        for size in SIZES:
            walked = await walk(
                client, "/correction-requests", "correction_requests", "request_id", size
            )
            assert walked == everything
        still_open = [r["request_id"] for r in listed if r["status"] == "open"]
        walked = await walk(
            client, "/correction-requests", "correction_requests", "request_id", 2, open="true"
        )
        assert walked == still_open

        status, first = await get(client, "/correction-requests")
        assert status == 200 and len(first["correction_requests"]) == 12, (
            "the default page holds all twelve"
        )


def forged(*key: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode()


@pytest.mark.parametrize(
    ("path", "cursor"),
    [
        ("/batches", "not-a-cursor"),
        ("/batches", forged("unusable", 3)),
        ("/batches", forged("batches", 1, 2)),
        ("/batches", forged("batches", "2026-01-01T00:00:00Z")),
        ("/unusable", forged("unusable", "3")),
        ("/unusable", forged("unusable", True)),
        ("/unusable", forged("batches", "a", "b")),
        ("/correction-requests", forged("correction-requests", 0, "2026-01-01", "CR-1")),
        ("/correction-requests", forged("correction-requests", False, "", "CR-1")),
        ("/records", forged("batches", "a", "b")),
        # Shapes of the right route whose values the store would compare as they are: a page
        # empty or skipping rows, answered as if it were the next one.
        ("/batches", forged("batches", "not-a-time", "y")),
        ("/batches", forged("batches", "20261201T000000", "y")),
        ("/unusable", forged("unusable", -1)),
        ("/unusable", forged("unusable", 0)),
        ("/correction-requests", forged("correction-requests", True, "not-a-date", "y")),
        ("/correction-requests", forged("correction-requests", False, "20261215", "y")),
        ("/records", forged("20261215", "X")),
        ("/records", forged("records", "20261215", "X")),
        ("/records", forged("records", "2026-12-15", "")),
        ("/records", base64.urlsafe_b64encode(b'{"2026-01-01": 1, "PIX-0": 2}').decode()),
    ],
)
async def test_a_cursor_of_another_route_or_shape_is_a_bad_parameter(
    core: Core, path: str, cursor: str
) -> None:
    async with serving(core) as client:
        status, body = await get(client, path, params={"cursor": cursor})
        assert status == 400, body
        assert_error_shape(body, "bad_parameter")
        assert "cursor" in body["error"]["message"]


async def walk_changing(
    client: aiohttp.ClientSession, order: str, change: Any, size: int = 2
) -> list[str]:
    """Every record id of `GET /records` in `order`, page after page, `change(page_number)`
    run between two pages."""
    seen: list[str] = []
    params = {"order": order, "limit": str(size)}
    for number in range(100):
        status, page = await get(client, "/records", params=params)
        assert status == 200, page
        seen += [row["record_id"] for row in page["records"]]
        if page["next_cursor"] is None:
            return seen
        await change(number)
        params = {**params, "cursor": page["next_cursor"]}
    raise AssertionError("more than 100 pages")


async def test_records_by_id_are_each_walked_once_while_their_deadlines_move(core: Core) -> None:
    """A platform synchronising its records walks them by id: a record whose deadline moves
    between two pages (a new delivery date, a correction request opened on it) is neither
    missed nor repeated, as it may be in deadline order."""
    async with serving(core) as client:
        days = [REAL_TODAY - timedelta(days=d) for d in (60, 50, 40, 30, 20, 10)]
        ids = [f"W-{i}" for i in range(len(days))]
        status, _ = await post(
            client, [recent(i, delivered_on=d.isoformat()) for i, d in zip(ids, days, strict=True)]
        )
        assert status == 200

        async def change(page_number: int) -> None:
            if page_number == 0:
                # W-5, not read yet, moves before the page read; W-0, read, moves last.
                status, _ = await post(client, recent("W-5", delivered_on=days[0].isoformat()))
                assert status == 201
                status, _ = await post(client, recent("W-0", delivered_on=days[-1].isoformat()))
                assert status == 201
            if page_number == 1:
                # W-4 becomes due with a request received long ago: its deadline comes first.
                body = {"record_id": "W-4", "received_on": days[0].isoformat()}
                async with client.post("/correction-requests", json=body) as response:
                    assert response.status == 201

        walked = await walk_changing(client, "record_id", change)
        assert walked == sorted(ids)
        status, whole = await get(client, "/records", params={"limit": "1000"})
        shown = {row["record_id"]: row["deadline"] for row in whole["records"]}
        assert shown["W-4"] < shown["W-1"] < shown["W-0"], "the deadlines did move"


async def test_a_cursor_of_one_order_is_refused_in_the_other(core: Core) -> None:
    async with serving(core) as client:
        status, _ = await post(client, [recent(f"O-{i}") for i in range(3)])
        assert status == 200
        for order, other in (("deadline", "record_id"), ("record_id", "deadline")):
            params = {"order": order, "limit": "1"}
            status, page = await get(client, "/records", params=params)
            assert status == 200 and page["next_cursor"] is not None
            asked = {"order": other, "cursor": page["next_cursor"]}
            status, body = await get(client, "/records", params=asked)
            assert status == 400, body
            assert_error_shape(body, "bad_parameter")
            assert f"order={order}" in body["error"]["message"]
        status, body = await get(client, "/records", params={"order": "newest"})
        assert status == 400 and body["error"]["details"] == {"allowed": ["deadline", "record_id"]}
