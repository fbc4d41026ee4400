"""Senders' turns: what one exam platform sends waits behind its own earlier requests, never
in front of another platform's.

Measured before (`bench/fairness.py`): one platform posting arrays of 1,000 events on 8
connections made another platform's single event wait 470-540 ms for its acknowledgement
(under 3 ms alone), every group the writer process stored holding thousands of the first
platform's events; its arrays of 1,000 to `POST /check` made the other's single check wait
143-151 ms, the reader threads all busy with them. With turns: 58 ms and 18 ms.

Two tools, one rule (senders take turns, one request of each in turn):
- `SenderQueues`: the requests waiting for the writer process, taken into a group in turns,
  a group at most `limit` events (a request is sent whole: split it first);
- `FairSlots`: a bounded number of jobs at a time (arrays in the decode processes, checks,
  jobs of the reader threads), at most `per_sender` of them a sender's, the next slot to the
  sender whose turn it is.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager
from typing import Generic, TypeVar

T = TypeVar("T")


class _Turns:
    """Whose turn it is: the sender served least recently (one never served first, in the
    order they came)."""

    def __init__(self) -> None:
        self._last: dict[str, int] = {}
        self._count = 0

    def served(self, sender: str) -> None:
        self._count += 1
        self._last[sender] = self._count

    def order(self, senders: Iterable[str]) -> list[str]:
        return sorted(senders, key=lambda sender: self._last.get(sender, 0))


class SenderQueues(Generic[T]):
    """Requests waiting, a queue per sender."""

    def __init__(self) -> None:
        self._queues: dict[str, deque[T]] = {}
        self._turns = _Turns()

    def __bool__(self) -> bool:
        return bool(self._queues)

    def __iter__(self) -> Iterator[T]:
        for queue in self._queues.values():
            yield from queue

    def put(self, sender: str, item: T) -> None:
        queue = self._queues.get(sender)
        if queue is None:
            self._queues[sender] = queue = deque()
        queue.append(item)

    def clear(self) -> None:
        self._queues.clear()

    def take(self, size: Callable[[T], int], limit: int) -> list[T]:
        """The next group: each sender's oldest request in turn, round after round, while the
        group stays within `limit` events (its first request whatever its size). A sender
        whose next request does not fit keeps its turn for the next group."""
        group: list[T] = []
        events = 0
        while self._queues:
            took = False
            for sender in self._turns.order(self._queues):
                queue = self._queues[sender]
                count = size(queue[0])
                if group and events + count > limit:
                    continue
                group.append(queue.popleft())
                events += count
                took = True
                self._turns.served(sender)
                if not queue:
                    del self._queues[sender]
            if not took or events >= limit:
                break
        return group


class FairSlots:
    """`capacity` jobs at a time, at most `per_sender` of them one sender's; a slot that frees
    goes to the waiting sender whose turn it is (the one least recently given a slot)."""

    def __init__(self, capacity: int, per_sender: int) -> None:
        self.capacity = max(1, capacity)
        self.per_sender = max(1, min(per_sender, self.capacity))
        self._running: dict[str, int] = {}
        self._waiting: dict[str, deque[asyncio.Future[None]]] = {}
        self._turns = _Turns()

    @property
    def busy(self) -> int:
        return sum(self._running.values())

    @asynccontextmanager
    async def turn(self, sender: str) -> AsyncIterator[None]:
        """Held while the sender's job runs."""
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(sender, deque()).append(ready)
        self._hand_out()
        try:
            await ready
        except asyncio.CancelledError:
            if ready.done() and not ready.cancelled():
                self._release(sender)  # given a slot as it was cancelled: give it back
            else:
                self._forget(sender, ready)
            raise
        try:
            yield
        finally:
            self._release(sender)

    def _may_start(self, sender: str) -> bool:
        return self.busy < self.capacity and self._running.get(sender, 0) < self.per_sender

    def _release(self, sender: str) -> None:
        left = self._running[sender] - 1
        if left:
            self._running[sender] = left
        else:
            del self._running[sender]
        self._hand_out()

    def _forget(self, sender: str, ready: asyncio.Future[None]) -> None:
        queue = self._waiting.get(sender)
        if queue is not None and ready in queue:
            queue.remove(ready)
            if not queue:
                del self._waiting[sender]

    def _hand_out(self) -> None:
        """Give free slots to waiting senders in turn."""
        while self.busy < self.capacity:
            startable = (s for s in self._turns.order(self._waiting) if self._may_start(s))
            sender = next(startable, None)
            if sender is None:
                return
            queue = self._waiting[sender]
            ready = queue.popleft()
            if not queue:
                del self._waiting[sender]
            if ready.done():  # cancelled as it waited: its task forgets it when it resumes
                continue
            self._running[sender] = self._running.get(sender, 0) + 1
            self._turns.served(sender)
            ready.set_result(None)
