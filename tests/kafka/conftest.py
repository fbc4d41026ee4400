"""A real Apache Kafka broker for the tests in tests/kafka (all marked ``kafka``).

``kafka_broker`` (session): the broker named by ``ACCROCHAGE_TEST_KAFKA`` (host:port) when set,
else a single-node KRaft broker started here on free loopback ports (jars fetched by
tools/kafka/fetch-jars.sh when missing) and stopped at the end of the session.
``fresh_broker`` (function): a dedicated broker of its own, for tests that restart or kill it.
When no broker can be had, ``require`` fails the test in CI and skips it elsewhere.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import require
from tests.kafka.workers import Worker, kill_all, seed_from_env
from tests.support.kafka_broker import KafkaBroker, available, create_topic, ensure_jars

HERE = Path(__file__).resolve().parent
EXTERNAL_ENV = "ACCROCHAGE_TEST_KAFKA"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test under tests/kafka with ``kafka`` (this hook sees all collected items)."""
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.kafka)


@dataclass(frozen=True)
class KafkaEndpoint:
    """Where the tests find Kafka; ``broker`` is None when the broker is external."""

    bootstrap: str
    broker: KafkaBroker | None = None

    async def create_topic(self, name: str, partitions: int) -> None:
        await create_topic(self.bootstrap, name, partitions)


def _reachable(hostport: str, timeout: float = 3.0) -> bool:
    host, _, port = hostport.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def _start_broker(workdir: Path) -> KafkaBroker:
    try:
        ensure_jars()
    except RuntimeError as exc:
        require(False, f"cannot fetch the Kafka jars: {exc}")
    ok, why = available()
    require(ok, why)
    broker = KafkaBroker(workdir)
    try:
        broker.start(timeout=90)
    except RuntimeError as exc:
        broker.kill()
        require(False, f"cannot start a Kafka broker: {exc}")
    return broker


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaEndpoint]:
    external = os.environ.get(EXTERNAL_ENV, "").strip()
    if external:
        require(_reachable(external), f"{EXTERNAL_ENV}={external} does not accept connections")
        yield KafkaEndpoint(external)
        return
    broker = _start_broker(tmp_path_factory.mktemp("kafka"))
    try:
        yield KafkaEndpoint(broker.bootstrap, broker)
    finally:
        broker.stop()


@pytest.fixture
def fresh_broker(tmp_path: Path) -> Iterator[KafkaBroker]:
    """A dedicated broker (a few seconds to start), free to restart or kill."""
    broker = _start_broker(tmp_path / "kafka")
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture()
def kafka_seed() -> int:
    """The random seed of a test, printed by it; ACCROCHAGE_KAFKA_SEED replays one."""
    return seed_from_env()


@pytest.fixture()
def workers() -> Iterator[list[Worker]]:
    """Worker processes a test starts: killed at its end, whatever happened."""
    started: list[Worker] = []
    try:
        yield started
    finally:
        kill_all(started)
