"""Helper processes (`accrochage/pool.py`): a helper killed at any moment (working, idle,
halfway through its answer) fails the tasks not answered, ends the others, and never leaves
its starter waiting; a task's own failure stays its own."""

from __future__ import annotations

import contextlib
import os
import pickle
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import CancelledError, Future
from pathlib import Path
from typing import Any

import pytest

from accrochage import pool as pool_module
from accrochage.pool import HelperDied, HelperPool, RemoteTraceback

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
    return b"x" * (32 << 20), _KillsItsProcess()


def _refused_here() -> None:
    raise ValueError("this argument cannot be rebuilt in a helper")


class _BuiltOnlyHere:
    """Pickled here, but rebuilding it in the helper raises."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_refused_here, ())


def _wait_for(path: str) -> int:
    deadline = time.monotonic() + WAIT
    while not Path(path).exists():
        assert time.monotonic() < deadline, "the test never released the task"
        time.sleep(0.01)
    return 0


def _running(future: Future[Any]) -> None:
    deadline = time.monotonic() + WAIT
    while not future.running():
        assert time.monotonic() < deadline, "no helper took the task"
        time.sleep(0.01)


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
        with pytest.raises(ValueError, match="wrong") as raised:
            pool.submit(_raise, "wrong").result(WAIT)
        assert isinstance(raised.value.__cause__, RemoteTraceback)
        assert "in _raise" in str(raised.value.__cause__), "the helper's own traceback"
        with pytest.raises(RecursionError):  # this task's arguments cannot cross
            pool.submit(len, _nested(5_000)).result(WAIT)
        with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
            pool.submit(len, [threading.Lock()]).result(WAIT)
        with pytest.raises(ValueError, match="cannot be rebuilt"):
            pool.submit(len, [_BuiltOnlyHere()]).result(WAIT)
        assert pool.submit(_sleep_then, 0, 7).result(WAIT) == 7
        assert not pool.broken
    finally:
        _shut_down_within(pool, WAIT)


def test_a_helper_whose_initializer_fails_fails_each_task_saying_why() -> None:
    pool = HelperPool(1, initializer=_raise, initargs=("no reference data",))
    try:
        why = re.escape("could not start (ValueError: no reference data)")
        with pytest.raises(HelperDied, match=why):
            pool.submit(_pid).result(WAIT)
    finally:
        _shut_down_within(pool, WAIT)


def test_a_helper_killed_while_working_fails_every_task_not_answered() -> None:
    pool = HelperPool(2)
    pool.submit(_pid).result(WAIT)
    helper_pids = pool.pids
    running = [pool.submit(_sleep_then, 30, n) for n in range(6)]
    deadline = time.monotonic() + WAIT
    while sum(f.running() for f in running) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sum(f.running() for f in running) == 2, "both helpers at work, four tasks waiting"
    os.kill(pool.pids[0], signal.SIGKILL)
    for future in running:
        with pytest.raises(HelperDied):
            future.result(WAIT)
    assert pool.broken
    with pytest.raises(HelperDied):
        pool.submit(_pid)
    assert all(_gone(pid) for pid in helper_pids), "the other helper outlived its pool"
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


def test_shutdown_waits_for_tasks_given_and_cancels_the_others_when_asked(
    tmp_path: Path,
) -> None:
    pool = HelperPool(1)
    given = [pool.submit(_sleep_then, 0.2, n) for n in range(3)]
    _shut_down_within(pool, WAIT)
    assert [f.result(0) for f in given] == [0, 1, 2]
    assert all(_gone(pid) for pid in pool.pids)

    pool = HelperPool(1)
    release = tmp_path / "release"
    first = pool.submit(_wait_for, str(release))
    _running(first)
    later: list[Future[int]] = [pool.submit(_sleep_then, 0, n) for n in range(3)]
    stopper = threading.Thread(target=pool.shutdown, kwargs={"cancel_futures": True})
    stopper.start()
    deadline = time.monotonic() + WAIT
    while not all(f.cancelled() for f in later):
        assert time.monotonic() < deadline, "the tasks not started were not cancelled"
        time.sleep(0.01)
    release.touch()
    stopper.join(WAIT)
    assert not stopper.is_alive()
    assert first.result(0) == 0
    for future in later:
        with pytest.raises(CancelledError):
            future.result(0)
    with pytest.raises(RuntimeError, match="shut down"):
        pool.submit(_pid)


def test_a_callback_may_shut_its_pool_down_even_as_a_helper_dies() -> None:
    """A decode group's callback shuts a broken pool down: it runs when its future fails,
    and failing futures under the pool's lock made that callback wait on itself for ever."""
    pool = HelperPool(2)
    working = [pool.submit(_sleep_then, 30, n) for n in range(2)]
    for future in working:
        _running(future)
    queued = pool.submit(_sleep_then, 0, 2)
    queued.add_done_callback(lambda _: pool.shutdown())
    os.kill(pool.pids[0], signal.SIGKILL)
    for future in [*working, queued]:
        with pytest.raises(HelperDied):
            future.result(WAIT)
    assert all(_gone(pid) for pid in pool.pids)
    _shut_down_within(pool, WAIT)


def test_a_callback_may_shut_a_healthy_pool_down_and_tasks_given_still_answer() -> None:
    pool = HelperPool(1)
    first = pool.submit(_sleep_then, 0.1, 1)
    second = pool.submit(_sleep_then, 0, 2)
    first.add_done_callback(lambda _: pool.shutdown())
    assert (first.result(WAIT), second.result(WAIT)) == (1, 2)
    assert not pool.broken
    assert all(_gone(pid) for pid in pool.pids)


STARTER = """
import os, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
from accrochage.pool import HelperDied, HelperPool
pool = HelperPool(2)
seconds = 5 if sys.argv[1] == "kill-the-starter" else 30
working = [pool.submit(time.sleep, seconds) for _ in range(2)]
while not all(f.running() for f in working):
    time.sleep(0.01)
time.sleep(0.3)
if sys.argv[1] == "exit-without-shutdown":
    sys.exit(0)  # multiprocessing ends daemon helpers at exit: SIGTERM, then a join
if sys.argv[1] == "kill-a-helper":
    os.kill(pool.pids[0], signal.SIGKILL)
    for f in working:
        try:
            f.result(60)
        except HelperDied:
            print("failed", flush=True)
    pool.shutdown()
    print("ended", flush=True)
else:
    os.kill(os.getpid(), signal.SIGKILL)
"""


def _starter(mode: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", STARTER, mode],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=Path(__file__).resolve().parents[1],
    )


def test_helpers_of_a_starter_that_ignores_sigterm_still_end_with_their_pool() -> None:
    """A writer process ignores SIGTERM, and its helpers inherit that: a broken pool must
    still end the helper that lived on, in less than its 30-second task."""
    done = _starter("kill-a-helper")
    assert done.stdout.split() == ["failed", "failed", "ended"], done.stderr


def test_helpers_of_a_starter_killed_while_they_work_end_quietly() -> None:
    """No one is left to answer: no traceback in the log the helpers share with it."""
    done = _starter("kill-the-starter")
    assert done.returncode == -signal.SIGKILL
    assert "Traceback" not in done.stderr, done.stderr


def test_a_starter_that_ignores_sigterm_exits_without_shutting_its_pool_down() -> None:
    """Its helpers inherited SIGTERM ignored, and multiprocessing's exit ends daemon helpers
    with SIGTERM and then waits: the starter's exit waited for their 30-second tasks."""
    done = _starter("exit-without-shutdown")
    assert done.returncode == 0, done.stderr


def test_a_helper_that_hangs_is_ended_at_shutdown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pool_module, "STOP_SECONDS", 1.0)
    pool = HelperPool(1)
    hanging = pool.submit(_sleep_then, 0.5, 1)
    _running(hanging)
    (pid,) = pool.pids
    os.kill(pid, signal.SIGSTOP)
    try:
        _shut_down_within(pool, WAIT)
        with pytest.raises(HelperDied):
            hanging.result(0)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_a_helper_stopped_while_working_is_ended_and_its_task_fails_saying_so() -> None:
    """A helper stopped (SIGSTOP) or hung holds no flush for ever: past `task_seconds` it is
    killed, its task fails as hung, and the pool is broken like after a death."""
    pool = HelperPool(1, task_seconds=2.0)
    (pid,) = pool.pids
    stopped = pool.submit(_sleep_then, 30, 1)
    _running(stopped)
    os.kill(pid, signal.SIGSTOP)
    try:
        with pytest.raises(HelperDied, match="no answer within 2 s"):
            stopped.result(WAIT)
        assert _gone(pid) and pool.broken
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _shut_down_within(pool, WAIT)


def test_tasks_answered_in_time_are_never_taken_for_hung() -> None:
    pool = HelperPool(1, task_seconds=WAIT)
    try:
        assert [pool.submit(_sleep_then, 0.2, n).result(WAIT) for n in range(3)] == [0, 1, 2]
        assert not pool.broken
    finally:
        _shut_down_within(pool, WAIT)


CTRL_C_AT_START = """
import os, signal, sys
from accrochage.pool import HelperPool
from accrochage.processes import helper_context

if __name__ == "__main__":
    heard = []
    signal.signal(signal.SIGINT, lambda signum, frame: heard.append(signum))
    helper_context()  # the fork server imports the project now, for half a second or more
    os.killpg(os.getpgrp(), signal.SIGINT)
    pool = HelperPool(1)
    print(pool.submit(os.getpid).result(60) in pool.pids, heard == [signal.SIGINT], flush=True)
    pool.shutdown()
"""


def test_a_ctrl_c_while_the_fork_server_starts_is_its_starter_s() -> None:
    """Ctrl-C reaches the whole process group, the fork server too: it ignores SIGINT only
    once it has imported the project, and until then died of a KeyboardInterrupt (its
    traceback in the service's log), so that the helper being started failed (EOFError) and
    `run` or `worker`, interrupted in their first second, said "Aborted!" (exit 1) instead
    of stopping."""
    done = subprocess.run(
        [sys.executable, "-c", CTRL_C_AT_START],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=Path(__file__).resolve().parents[1],
        start_new_session=True,
    )
    assert (done.returncode, done.stdout.split()) == (0, ["True", "True"]), done.stderr
    assert "KeyboardInterrupt" not in done.stderr and "Fatal" not in done.stderr, done.stderr
