"""A Kafka worker waiting as a standby stops on the signals it stops on when it runs.

Before, Ctrl-C printed "Aborted!" (exit 1), and SIGTERM or SIGHUP ended it with nothing
said: its signal handlers came only once it held the state. It waits before it reaches
the broker, so no broker is needed here: this process holds the state's service lock.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from accrochage.app import store_location
from tests.kafka.workers import Worker, write_worker_config
from tests.support.crash import disposition

START_TIMEOUT = 120.0


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_standby_worker_stops_gracefully_on_a_stop_signal(
    tmp_path: Path, signum: signal.Signals
) -> None:
    config = write_worker_config(tmp_path / "worker", "127.0.0.1:9")
    held = store_location(config.settings()).service_guard()
    assert held.try_acquire()
    worker = Worker(config, tmp_path / "standby.log")
    try:
        worker.wait_for_log("waiting as a standby", START_TIMEOUT)
        assert worker.stop(signum=signum) == 0, worker.tail()
    finally:
        held.release()
        if worker.alive():
            worker.kill()
    said = worker.text()
    assert f"stopping ({signum.name}) while waiting as a standby" in said, said
    assert "Aborted" not in said and "Traceback" not in said, said
    assert "taking over" not in said
    assert worker.remnants(grace=10) == ()


def test_a_standby_worker_started_under_nohup_keeps_waiting_when_its_terminal_closes(
    tmp_path: Path,
) -> None:
    config = write_worker_config(tmp_path / "worker", "127.0.0.1:9")
    held = store_location(config.settings()).service_guard()
    assert held.try_acquire()
    worker = Worker(config, tmp_path / "standby.log", launcher=("nohup",))
    try:
        worker.wait_for_log("waiting as a standby", START_TIMEOUT)
        assert disposition(worker.pid, signal.SIGHUP) == "ignored"
        assert disposition(worker.pid, signal.SIGTERM) == "caught"
        assert worker.stop(signum=signal.SIGTERM) == 0, worker.tail()
    finally:
        held.release()
        if worker.alive():
            worker.kill()
    said = worker.text()
    assert "stopping (SIGTERM) while waiting as a standby" in said, said
