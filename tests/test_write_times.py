"""Each write transaction tells the store's observer how long it waited for the state and how
long it held it (`Store.observe_writes`): what `/metrics` serves as
`accrochage_write_lock_wait_seconds` and `accrochage_write_lock_held_seconds`."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from accrochage.errors import StoreBusyError
from accrochage.state.base import WriteTime
from accrochage.state.sqlite import SqliteStore
from tests.test_write_lock import held

HELD_FOR = 0.4
"""How long another process keeps the state in these tests (a lower bound to check, never an
upper one: the machine's speed moves the rest)."""


def observed(store: SqliteStore) -> list[WriteTime]:
    told: list[WriteTime] = []
    store.observe_writes(told.append)
    return told


def test_a_write_is_told_the_wait_another_process_caused_and_how_long_it_held_the_state(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state.db"
    store = SqliteStore(state)
    told = observed(store)
    try:
        with store.transaction():
            pass
        with held(state) as holder:
            assert holder.stdin is not None
            let_go_at = time.monotonic() + HELD_FOR
            # The holder lets go once its standard input closes: closed from a timer, while
            # this thread waits in `transaction()`.
            threading.Timer(HELD_FOR, holder.stdin.close).start()
            with store.transaction():
                assert time.monotonic() >= let_go_at - 0.05
                time.sleep(0.1)
        assert len(told) == 2
        alone, behind = told
        assert alone.held is not None and alone.waited < HELD_FOR
        assert behind.waited >= HELD_FOR - 0.05
        assert behind.held is not None and behind.held >= 0.1
    finally:
        store.close()


def test_a_write_that_gives_up_waiting_is_told_it_never_held_the_state(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    SqliteStore(state).close()
    store = SqliteStore(state, lock_wait_seconds=HELD_FOR)
    told = observed(store)
    try:
        with held(state), pytest.raises(StoreBusyError), store.transaction():
            pytest.fail("the state was held by another process")
        assert len(told) == 1
        assert told[0].held is None and told[0].waited >= HELD_FOR - 0.05
    finally:
        store.close()


def test_a_write_that_fails_is_told_too_and_no_observer_means_nothing_is_told(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "state.db")
    told = observed(store)
    try:
        with pytest.raises(RuntimeError), store.transaction():
            raise RuntimeError("a write that fails half way")
        assert len(told) == 1 and told[0].held is not None
        store.observe_writes(None)
        with store.transaction():
            pass
        assert len(told) == 1
    finally:
        store.close()
