"""A Kafka worker waiting as a standby stops on the signals it stops on when it runs.

Before, Ctrl-C printed "Aborted!" (exit 1), and SIGTERM or SIGHUP ended it with nothing
said: its signal handlers came only once it held the state. It waits before it reaches
the broker, so no broker is needed here: this process holds the state's service lock.
"""

from __future__ import annotations

import io
import logging
import os
import signal
import time
from pathlib import Path

import pytest

from accrochage.app import store_location
from accrochage.runtimes.kafka.compose import _waited_as_standby
from accrochage.runtimes.serving import STOP_SIGNALS
from accrochage.state.base import ServiceGuard
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


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_worker_waiting_for_its_broker_stops_gracefully_on_a_stop_signal(
    tmp_path: Path, signum: signal.Signals
) -> None:
    """At start the worker waits up to a minute for a broker still starting (compose starts
    both at once): a stop meanwhile printed "Aborted!" (exit 1) for Ctrl-C, and ended it
    with nothing said for SIGTERM and SIGHUP; the wait itself was one line of aiokafka's."""
    config = write_worker_config(tmp_path / "worker", "127.0.0.1:9")
    worker = Worker(config, tmp_path / "no-broker.log")
    try:
        worker.wait_for_log("no Kafka broker at 127.0.0.1:9 yet: waiting up to", START_TIMEOUT)
        assert worker.stop(signum=signum) == 0, worker.tail()
    finally:
        if worker.alive():
            worker.kill()
    said = worker.text()
    assert f"stopping ({signum.name}) while waiting for the Kafka broker" in said, said
    assert "Aborted" not in said and "Traceback" not in said, said
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


class _SignalledLock(ServiceGuard):
    """A state's lock another service holds, while this process is sent `signals` at once:
    blocked meanwhile, so that all of them are pending when the standby's handlers run (as
    when logind, closing a session, sends SIGTERM then SIGHUP to a worker asleep in its poll)."""

    def __init__(self, *signals: signal.Signals) -> None:
        self.signals = signals
        self.released = 0

    def try_acquire(self) -> bool:
        return False

    def acquire_or_refuse(self) -> None:
        raise AssertionError("not asked")

    def wait(self, poll: float = 0.5) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, self.signals)
        try:
            for signum in self.signals:
                os.kill(os.getpid(), signum)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, self.signals)
        for _ in range(1000):  # the handlers run here, the first one raising
            time.sleep(0.001)
        raise AssertionError("no stop signal reached the standby")

    def release(self) -> None:
        self.released += 1


def test_two_stop_signals_at_once_stop_a_standby_once() -> None:
    """The second signal ran the handler again as the first one's exception was handled or
    the handlers restored, and escaped: the worker ended with a traceback, exit 1
    (reproduced with a real worker: SIGTERM then SIGHUP, 3 runs of 3)."""
    before = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    lock = _SignalledLock(signal.SIGTERM, signal.SIGHUP)
    assert _waited_as_standby(lock) is False
    assert lock.released == 1
    assert {s: signal.getsignal(s) for s in STOP_SIGNALS} == before


class _SignalledAsItLogs(io.StringIO):
    """A log stream: the standby is sent SIGTERM as its line is written."""

    def write(self, text: str) -> int:
        os.kill(os.getpid(), signal.SIGTERM)
        return super().write(text)


class _LoggingLock(ServiceGuard):
    """Another service holds the state's lock: the standby says so, then takes it once
    that one stops (`took`)."""

    def __init__(self) -> None:
        self.took = False

    def try_acquire(self) -> bool:
        return False

    def acquire_or_refuse(self) -> None:
        raise AssertionError("not asked")

    def wait(self, poll: float = 0.5) -> None:
        logging.getLogger("tests.standby").info("another service holds it: waiting")
        for _ in range(100):  # the other service runs on
            time.sleep(0.001)
        self.took = True

    def release(self) -> None:
        pass


def test_a_stop_signal_as_the_standby_logs_stops_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """A signal that came as the standby wrote its log line raised in the log handler,
    which caught it ("--- Logging error ---"): the standby waited on, and took the state
    over once the other service stopped, though told to stop long before."""
    logger = logging.getLogger("tests.standby")
    stream = _SignalledAsItLogs()
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    monkeypatch.setattr(logger, "level", logging.INFO)
    try:
        lock = _LoggingLock()
        assert _waited_as_standby(lock) is False
    finally:
        logger.removeHandler(handler)
    assert not lock.took
