"""Senders' turns (`api/turns.py`): a sender's flood waits behind its own requests."""

from __future__ import annotations

import asyncio

import pytest

from accrochage.api.turns import FairSlots, SenderQueues


def _queues(*puts: tuple[str, int]) -> SenderQueues[tuple[str, int]]:
    """Requests named (sender, number); each `size` is its number of events."""
    queues: SenderQueues[tuple[str, int]] = SenderQueues()
    for sender, size in puts:
        queues.put(sender, (sender, size))
    return queues


def _size(request: tuple[str, int]) -> int:
    return request[1]


def test_a_group_takes_each_sender_s_oldest_request_in_turn() -> None:
    queues = _queues(("a", 1), ("a", 2), ("a", 3), ("b", 4), ("c", 5), ("b", 6))
    assert queues.take(_size, 100) == [("a", 1), ("b", 4), ("c", 5), ("a", 2), ("b", 6), ("a", 3)]
    assert not queues


def test_a_group_stays_within_its_events_and_the_sender_left_out_goes_first_next() -> None:
    queues = _queues(("a", 200), ("a", 200), ("b", 1), ("c", 300))
    assert queues.take(_size, 250) == [("a", 200), ("b", 1)]
    # c's request did not fit: it keeps its turn, ahead of a, served just now.
    assert queues.take(_size, 250) == [("c", 300)]
    assert queues.take(_size, 250) == [("a", 200)]
    assert queues.take(_size, 250) == []


def test_a_request_larger_than_a_group_is_a_group_of_its_own() -> None:
    queues = _queues(("a", 900), ("b", 1))
    assert queues.take(_size, 250) == [("a", 900)]
    assert queues.take(_size, 250) == [("b", 1)]


def test_a_flood_does_not_hold_back_a_later_sender_s_request() -> None:
    """Before: one list, first come first served: b's one event waited for a's 50 arrays."""
    queues = _queues(*([("a", 250)] * 50))
    queues.put("b", ("b", 1))
    groups = []
    while queues:
        groups.append(queues.take(_size, 250))
    at = next(i for i, group in enumerate(groups) if ("b", 1) in group)
    assert at <= 1


def test_iterating_and_clearing_see_every_request() -> None:
    queues = _queues(("a", 1), ("b", 2), ("a", 3))
    assert sorted(queues) == [("a", 1), ("a", 3), ("b", 2)]
    queues.clear()
    assert not queues and list(queues) == []


async def _hold(slots: FairSlots, sender: str, log: list[str], release: asyncio.Event) -> None:
    async with slots.turn(sender):
        log.append(sender)
        await release.wait()


async def test_slots_go_to_senders_in_turn_within_capacity_and_each_sender_s_share() -> None:
    slots = FairSlots(2, per_sender=2)
    started: list[str] = []
    releases = [asyncio.Event() for _ in range(5)]
    senders = ["a", "a", "a", "a", "b"]
    tasks = [
        asyncio.create_task(_hold(slots, s, started, r))
        for s, r in zip(senders, releases, strict=True)
    ]
    await asyncio.sleep(0.01)
    assert started == ["a", "a"] and slots.busy == 2
    releases[0].set()
    await asyncio.sleep(0.01)
    assert started == ["a", "a", "b"]  # b's turn before a's third, though it came later
    releases[1].set()
    await asyncio.sleep(0.01)
    assert started == ["a", "a", "b", "a"]
    for release in releases:
        release.set()
    await asyncio.gather(*tasks)
    assert started == ["a", "a", "b", "a", "a"] and slots.busy == 0


async def test_one_sender_holds_at_most_its_share_and_others_take_the_free_slots() -> None:
    slots = FairSlots(3, per_sender=1)
    started: list[str] = []
    release = asyncio.Event()
    tasks = [asyncio.create_task(_hold(slots, s, started, release)) for s in "aaab"]
    await asyncio.sleep(0.01)
    assert started == ["a", "b"] and slots.busy == 2
    release.set()
    await asyncio.gather(*tasks)
    assert started == ["a", "b", "a", "a"]


async def test_a_cancelled_wait_gives_no_slot_away_and_a_cancelled_job_frees_its_own() -> None:
    slots = FairSlots(1, per_sender=1)
    started: list[str] = []
    release = asyncio.Event()
    first = asyncio.create_task(_hold(slots, "a", started, release))
    waiting = asyncio.create_task(_hold(slots, "b", started, release))
    await asyncio.sleep(0.01)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert slots.busy == 0
    later = asyncio.create_task(_hold(slots, "c", started, release))
    await asyncio.sleep(0.01)
    assert started == ["a", "c"]
    release.set()
    await later
    assert slots.busy == 0
