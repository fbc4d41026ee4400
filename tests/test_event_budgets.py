"""Each exam platform's events a minute (`api.events_per_minute`, or its token's own): beyond,
`429 rate_limited` with `Retry-After`, nothing of the request decoded or stored; the others'
budgets untouched, the operator never limited. Without it, one platform in a loop of retries
took the writer, the decode processes and the disk from every other."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accrochage.api.budgets import BUDGETS, EventBudgets
from accrochage.api.errors import ApiError
from accrochage.app import build_core
from accrochage.errors import ConfigError
from accrochage.models.deadline import SystemClock
from accrochage.runtimes.embedded import build_service
from accrochage.settings import load_settings
from tests.test_http import recent
from tests.test_http_writer_process import serving
from tests.test_ingest_scope import ANY, ANY_PLATFORM, OP, OPERATOR, PIX, PIX_PLATFORM
from tests.test_metrics import parse
from tests.test_tracker import write_config

PIX_SENDER, ANY_SENDER = "api.ingest_tokens #1", "api.ingest_tokens #2"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def refusal(budgets: EventBudgets, sender: str, events: int) -> ApiError:
    with pytest.raises(ApiError) as caught:
        budgets.spend(sender, events)
    assert (caught.value.status, caught.value.code) == (429, "rate_limited")
    return caught.value


def test_a_budget_refills_a_minutes_worth_at_most() -> None:
    clock = Clock()
    budgets = EventBudgets({"a": 60, "b": 0}, clock)
    budgets.spend("a", 60)
    refused = refusal(budgets, "a", 1)
    assert refused.headers == {"Retry-After": "1"}
    assert refused.details == {"events_per_minute": 60, "retry_after": 1}
    clock.now += 0.5
    refusal(budgets, "a", 1)  # half an event back: not yet
    clock.now += 0.5
    budgets.spend("a", 1)
    clock.now += 3600  # an hour idle: a minute's worth, not an hour's
    budgets.spend("a", 60)
    assert refusal(budgets, "a", 30).headers == {"Retry-After": "30"}
    clock.now += 20
    budgets.spend("a", 20)  # the refused request took nothing
    for sender in ("b", "someone else"):
        budgets.spend(sender, 1_000_000)  # no budget: never limited


def test_a_request_larger_than_a_minutes_worth_is_told_it_never_fits() -> None:
    budgets = EventBudgets({"a": 100}, Clock())
    refused = refusal(budgets, "a", 101)
    assert "never fits" in str(refused) and "fewer events per request" in str(refused)
    assert refused.headers == {}
    budgets.spend("a", 100)


API = {
    "token": OPERATOR,
    "events_per_minute": 5,
    "max_events_per_request": 3,
    "ingest_tokens": [
        {"token": PIX_PLATFORM, "certifiers": ["pix"], "events_per_minute": 3},
        ANY_PLATFORM,
    ],
}


def test_each_token_has_the_apis_budget_or_its_own(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path, api=API))
    assert settings.api.sender_budgets == {PIX_SENDER: 3, ANY_SENDER: 5}
    unlimited = load_settings(write_config(tmp_path, api={**API, "events_per_minute": 0}))
    assert unlimited.api.sender_budgets == {PIX_SENDER: 3, ANY_SENDER: 0}


def test_a_budget_smaller_than_an_array_is_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write_config(tmp_path, api={**API, "max_events_per_request": 4}))
    said = str(caught.value)
    assert f"{PIX_SENDER} may send 3 events a minute, fewer than" in said
    assert "api.max_events_per_request (4)" in said


@asynccontextmanager
async def service(tmp_path: Path, separate: bool) -> AsyncIterator[aiohttp.ClientSession]:
    """The service with `API`'s budgets on a clock that stands still: nothing refills during
    the test, however slow the machine."""
    core = build_core(load_settings(write_config(tmp_path, api=API)), SystemClock())
    try:
        app = build_service(core, timer=False, separate_writer=separate)
        app[BUDGETS] = EventBudgets(
            core.settings.api.sender_budgets, Clock(), core.metrics.rate_limited
        )
        async with serving(app) as client:
            yield client
    finally:
        core.close()


async def send(
    client: aiohttp.ClientSession, body: Any, headers: dict[str, str], path: str = "/events"
) -> tuple[int, Any, aiohttp.typedefs.LooseHeaders]:
    sent = {"Content-Type": "application/json", **headers}
    async with client.post(path, data=json.dumps(body), headers=sent) as response:
        return response.status, await response.json(), response.headers


async def get(client: aiohttp.ClientSession, path: str) -> Any:
    async with client.get(path, headers=OP) as response:
        assert response.status == 200
        return await response.json()


@pytest.mark.parametrize("separate", [False, True], ids=["thread", "process"])
async def test_a_platform_over_its_budget_is_429_and_costs_the_others_nothing(
    tmp_path: Path, separate: bool, caplog: pytest.LogCaptureFixture
) -> None:
    async with service(tmp_path, separate) as client:
        status, _, _ = await send(client, [recent(f"P-{n}") for n in range(3)], PIX)
        assert status == 200
        status, answer, headers = await send(client, recent("P-3"), PIX)
        assert (status, answer["error"]["code"]) == (429, "rate_limited"), answer
        assert headers["Retry-After"] == "20"
        assert answer["error"]["details"] == {"events_per_minute": 3, "retry_after": 20}
        assert PIX_SENDER in answer["error"]["message"]
        status, answer, _ = await send(client, recent("P-4"), PIX, "/check")
        assert status == 429, "a check costs the service as much as an event"
        # The other platform's budget, and the operator (none), are its own.
        for first in (0, 3):
            status, _, _ = await send(client, [recent(f"A-{first + n}") for n in range(3)], ANY)
            assert status == (200 if first == 0 else 429)
        status, _, _ = await send(client, [recent(f"A-{n}") for n in range(3, 5)], ANY)
        assert status == 200
        for first in range(0, 12, 3):
            status, _, _ = await send(client, [recent(f"O-{first + n}") for n in range(3)], OP)
            assert status == 200
        stored = {r["record_id"] for r in (await get(client, "/records?limit=100"))["records"]}
        async with client.get("/metrics", headers=OP) as response:
            samples = parse(await response.text())
    assert {f"P-{n}" for n in range(3)} <= stored and not {"P-3", "P-4"} & stored
    assert len(stored) == 3 + 5 + 12
    refusals = {labels["sender"]: n for labels, n in samples["accrochage_rate_limited_total"]}
    assert refusals == {PIX_SENDER: 2, ANY_SENDER: 1}
    said = [r.getMessage() for r in caplog.records if "refused (429)" in r.getMessage()]
    assert said == [
        f"{sender}: 1 request(s) refused (429) since the last such line: over its {n} events "
        "a minute"
        for sender, n in ((PIX_SENDER, 3), (ANY_SENDER, 5))
    ], "one line per sender every 10 s, not one per request"


async def test_the_service_as_built_counts_each_refusal_in_its_metrics(tmp_path: Path) -> None:
    """The budgets as `build_app` makes them (the real clock: one event a minute, so the
    second request is refused unless a minute passed between two requests on loopback)."""
    api = {
        **API,
        "events_per_minute": 1,
        "max_events_per_request": 1,
        "ingest_tokens": [{"token": PIX_PLATFORM, "certifiers": ["pix"]}, ANY_PLATFORM],
    }
    core = build_core(load_settings(write_config(tmp_path, api=api)), SystemClock())
    try:
        async with serving(build_service(core, timer=False)) as client:
            async with client.get("/metrics", headers=OP) as response:
                before = parse(await response.text())["accrochage_rate_limited_total"]
            assert sorted((labels["sender"], n) for labels, n in before) == [
                (PIX_SENDER, 0),
                (ANY_SENDER, 0),
            ]
            assert (await send(client, recent("M-1"), PIX))[0] == 201
            assert (await send(client, recent("M-2"), PIX))[0] == 429
            async with client.get("/metrics", headers=OP) as response:
                after = parse(await response.text())["accrochage_rate_limited_total"]
        assert {labels["sender"]: n for labels, n in after} == {PIX_SENDER: 1, ANY_SENDER: 0}
    finally:
        core.close()


@given(
    per_minute=st.integers(1, 5000),
    steps=st.lists(
        st.tuples(st.floats(0, 120, allow_nan=False), st.integers(1, 5000)), max_size=60
    ),
)
@settings(max_examples=300, deadline=None)
def test_no_sequence_of_requests_gets_more_than_its_budget(
    per_minute: int, steps: list[tuple[float, int]]
) -> None:
    """In any stretch of a run, what was taken is at most a minute's worth plus what that
    stretch refilled (an hour idle saves no more than a minute); and a refusal's
    `Retry-After`, waited, lets the same request through."""
    clock = Clock()
    budgets = EventBudgets({"a": per_minute}, clock)
    taken: list[tuple[float, int]] = []
    for pause, events in steps:
        clock.now += pause
        try:
            budgets.spend("a", events)
        except ApiError as refused:
            if events > per_minute:
                assert "never fits" in str(refused)
                continue
            clock.now += int(refused.headers["Retry-After"])
            budgets.spend("a", events)
        taken.append((clock.now, events))
    for first, (since, _) in enumerate(taken):
        for until, _ in taken[first:]:
            within = sum(n for at, n in taken if since <= at <= until)
            assert within <= per_minute + (until - since) * per_minute / 60 + 1e-6


@pytest.mark.parametrize(
    ("per_minute", "at", "events"), [(1, 1001.2490055527138346, 1), (84, 1000.0, 63)]
)
def test_a_refused_request_sent_again_after_its_retry_after_goes_through(
    per_minute: int, at: float, events: int
) -> None:
    """`ceil` of the exact wait was a hair short for some clocks: the refill over
    `(now + s) - now` rounded below `s` (the property test above found it about once in 100
    runs)."""
    clock = Clock()
    clock.now = at
    budgets = EventBudgets({"a": per_minute}, clock)
    budgets.spend("a", per_minute)
    clock.now += int(refusal(budgets, "a", events).headers["Retry-After"])
    budgets.spend("a", events)
