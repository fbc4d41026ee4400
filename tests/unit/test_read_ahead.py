"""`read_ahead`: groups read in a thread of their own, their results taken in read order."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future

import pytest

from accrochage.streams.read_ahead import read_ahead

WAIT = 30.0
"""Seconds any step may wait: far beyond what it takes, so only a real hang fails."""


def done(value: int) -> Future[int]:
    future: Future[int] = Future()
    future.set_result(value)
    return future


def test_results_come_in_the_order_read_whatever_order_they_finish_in() -> None:
    futures: list[Future[int]] = [Future() for _ in range(5)]
    submitted = iter(futures)

    def finish_backwards() -> None:
        for index in reversed(range(5)):
            futures[index].set_result(index)

    taken = read_ahead(iter(range(5)), lambda _: next(submitted), limit=10)
    threading.Timer(0.05, finish_backwards).start()
    assert list(taken) == [0, 1, 2, 3, 4]


def test_a_group_read_before_the_input_stalls_is_given_while_it_stalls() -> None:
    """The input gives one group then blocks (a pipe kept open): that group's result is
    taken without waiting for the input to go on."""
    release = threading.Event()

    def stalling() -> Iterator[int]:
        yield 1
        assert release.wait(WAIT)
        yield 2

    taken = read_ahead(stalling(), done, limit=4)
    first = next(taken)
    assert not release.is_set()
    release.set()
    assert (first, list(taken)) == (1, [2])


def test_what_stops_the_reading_is_raised_after_every_group_read_before_it() -> None:
    def breaking() -> Iterator[int]:
        yield 1
        yield 2
        raise OSError("the input went away")

    taken = read_ahead(breaking(), done, limit=4)
    assert next(taken) == 1
    assert next(taken) == 2
    with pytest.raises(OSError, match="went away"):
        next(taken)


def test_a_failed_submit_is_raised_in_the_taking_thread_after_the_groups_before_it() -> None:
    def submit(group: int) -> Future[int]:
        if group == 3:
            raise RuntimeError("no process left to decode")
        return done(group)

    taken = read_ahead(iter(range(1, 6)), submit, limit=4)
    assert [next(taken), next(taken)] == [1, 2]
    with pytest.raises(RuntimeError, match="no process left"):
        next(taken)


def test_no_more_than_limit_groups_wait_to_be_taken() -> None:
    """The reader reads ahead no further than `limit` untaken results (and the one it holds
    while the queue is full): a large input is not read whole into memory."""
    read: list[int] = []
    enough = threading.Event()

    def counted() -> Iterator[int]:
        for group in range(1000):
            read.append(group)
            if len(read) >= 5:
                enough.set()
            yield group

    taken = read_ahead(counted(), done, limit=3)
    assert next(taken) == 0
    assert enough.wait(WAIT)
    # Reading stops once 3 wait in the queue and the reader holds a fourth.
    time.sleep(0.2)
    assert len(read) <= 1 + 3 + 1
    taken.close()


def test_stopping_early_cancels_what_waits_and_ends_the_reader() -> None:
    futures: list[Future[int]] = []

    def pending(_: int) -> Future[int]:
        future: Future[int] = Future()
        futures.append(future)
        if len(futures) == 1:
            future.set_result(0)
        return future

    readers_before = {t for t in threading.enumerate() if t.name == "ingest-reader"}
    taken = read_ahead(iter(range(1000)), pending, limit=3)
    assert next(taken) == 0
    taken.close()
    reader = next(
        t for t in threading.enumerate() if t.name == "ingest-reader" and t not in readers_before
    )
    reader.join(WAIT)
    assert not reader.is_alive()
    assert len(futures) <= 1 + 3 + 1
    assert all(f.cancelled() for f in futures[1:-1])
