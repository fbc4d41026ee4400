"""Helper processes (`accrochage/pool.py`): a helper killed at any moment (working, idle,
halfway through its answer) fails the tasks not answered, ends the others, and never leaves
its starter waiting; a task's own failure stays its own."""

from __future__ import annotations

import os
import pickle
import signal
import threading
import time
from concurrent.futures import CancelledError, Future
from pathlib import Path
from typing import Any

import pytest

from accrochage.pool import HelperDied, HelperPool

WAIT = 60.0
"""Bound of every wait: far above what a loaded machine needs, far below a CI's patience."""


def _pid() -> int:
    return os.getpid()


def _sleep_then(seconds: float, value: int) -> int:
    time.sleep(seconds)
    return value


def _raise(text: str) -> None:
    raise ValueError(text)


class _KillsItsProcess:
    """Pickled last of an answer: the helper kills itself while that answer is being sent."""

    def __reduce__(self) -> tuple[Any, ...]:
        def kill() -> None:
            time.sleep(0.002)
            os.kill(os.getpid(), signal.SIGKILL)

        threading.Thread(target=kill, daemon=True).start()
        return (int, (0,))


def _dies_while_answering() -> tuple[bytes, Any]:
    return b"x" * (256 << 20), _KillsItsProcess()


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def _shut_down_within(pool: HelperPool, seconds: float) -> None:
    stopper = threading.Thread(target=pool.shutdown, daemon=True)
    stopper.start()
    stopper.join(seconds)
    assert not stopper.is_alive(), "shutting the pool down hung"


def _gone(pid: int) -> bool:
    deadline = time.monotonic() + WAIT
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        status = Path(f"/proc/{pid}/status")
        try:
            if "State:\tZ" in status.read_text():
                return True
        except OSError:
            return True
        time.sleep(0.05)
    return not Path(f"/proc/{pid}").exists()


def test_tasks_run_in_the_helpers_and_their_own_errors_stay_theirs() -> None:
    pool = HelperPool(2)
    try:
        pids = {pool.submit(_pid).result(WAIT) for _ in range(20)}
        assert pids <= set(pool.pids) and os.getpid() not in pids
        with pytest.raises(ValueError, match="wrong"):
            pool.submit(_raise, "wrong").result(WAIT)
        with pytest.raises(RecursionError):  # this task's arguments cannot cross
            pool.submit(len, _nested(5_000)).result(WAIT)
        with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
            pool.submit(len, [threading.Lock()]).result(WAIT)
        assert pool.submit(_sleep_then, 0, 7).result(WAIT) == 7
        assert not pool.broken
    finally:
        _shut_down_within(pool, WAIT)


def test_a_helper_killed_while_working_fails_every_task_not_answered() -> None:
    pool = HelperPool(2)
    pool.submit(_pid).result(WAIT)
    survivor_pids = pool.pids
    running = [pool.submit(_sleep_then, 30, n) for n in range(6)]
    time.sleep(0.5)  # both helpers at work, four tasks waiting
    os.kill(pool.pids[0], signal.SIGKILL)
    for future in running:
        with pytest.raises(HelperDied):
            future.result(WAIT)
    assert pool.broken
    with pytest.raises(HelperDied):
        pool.submit(_pid)
    assert all(_gone(pid) for pid in survivor_pids), "the other helper outlived its pool"
    _shut_down_within(pool, WAIT)


def test_a_helper_killed_halfway_through_its_answer_never_hangs_the_pool() -> None:
    """What hung `ProcessPoolExecutor`: an answer cut in the middle of a frame."""
    pool = HelperPool(2)
    other = pool.submit(_sleep_then, 30, 1)
    dying = pool.submit(_dies_while_answering)
    with pytest.raises(HelperDied):
        dying.result(WAIT)
    with pytest.raises(HelperDied):
        other.result(WAIT)
    _shut_down_within(pool, WAIT)
    fresh = HelperPool(1)
    try:
        assert fresh.submit(_sleep_then, 0, 3).result(WAIT) == 3
    finally:
        _shut_down_within(fresh, WAIT)


def test_a_helper_killed_while_idle_fails_the_next_task() -> None:
    pool = HelperPool(1)
    pool.submit(_pid).result(WAIT)
    (pid,) = pool.pids
    os.kill(pid, signal.SIGKILL)
    assert _gone(pid)
    with pytest.raises(HelperDied):
        pool.submit(_pid).result(WAIT)
    _shut_down_within(pool, WAIT)


def test_shutdown_waits_for_tasks_given_and_cancels_the_others_when_asked() -> None:
    pool = HelperPool(1)
    given = [pool.submit(_sleep_then, 0.2, n) for n in range(3)]
    _shut_down_within(pool, WAIT)
    assert [f.result(0) for f in given] == [0, 1, 2]
    assert all(_gone(pid) for pid in pool.pids)

    pool = HelperPool(1)
    first = pool.submit(_sleep_then, 0.5, 0)
    time.sleep(0.2)
    later: list[Future[int]] = [pool.submit(_sleep_then, 0, n) for n in range(3)]
    pool.shutdown(cancel_futures=True)
    assert first.result(0) == 0
    for future in later:
        with pytest.raises(CancelledError):
            future.result(0)
    with pytest.raises(RuntimeError, match="shut down"):
        pool.submit(_pid)


def test_a_helper_ends_when_its_starter_closes_its_pipe() -> None:
    pool = HelperPool(1)
    pool.submit(_pid).result(WAIT)
    (pid,) = pool.pids
    pool._helpers[0].conn.close()  # as a starter killed -9 would
    assert _gone(pid)
    _shut_down_within(pool, WAIT)
