"""The worker's topics, created or found: an existing topic keeps its partitions, and one whose
count is not the configured one is said at start (adding partitions to a topic in use moves
each certifier's events to another partition: README, "Adding partitions")."""

from __future__ import annotations

import logging
import uuid

import pytest
from aiokafka.errors import KafkaTimeoutError

from accrochage.runtimes.kafka import admin as admin_module
from accrochage.runtimes.kafka.admin import ensure_topics
from tests.kafka.conftest import KafkaEndpoint


async def test_a_topic_of_another_partition_count_is_said_and_kept(
    kafka_broker: KafkaEndpoint, caplog: pytest.LogCaptureFixture
) -> None:
    topic = f"topics-{uuid.uuid4().hex[:10]}"
    await kafka_broker.create_topic(topic, 2)
    with caplog.at_level(logging.WARNING, logger="accrochage.kafka"):
        await ensure_topics(kafka_broker.bootstrap, {topic: 2})
        assert not caplog.records, "the configured count: nothing to say"
        await ensure_topics(kafka_broker.bootstrap, {topic: 8})
    (said,) = [r.getMessage() for r in caplog.records]
    assert f"topic {topic} has 2 partition(s) where 8 are configured" in said
    assert "configure 2" in said and "Adding partitions" in said


class _Admin:
    """A broker that lists the topic and does not describe it (a metadata request timed out)."""

    def __init__(self, **_: object) -> None:
        pass

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def list_topics(self) -> list[str]:
        return ["events"]

    async def describe_topics(self, _topics: list[str]) -> list[dict[str, object]]:
        raise KafkaTimeoutError()


async def test_a_topic_count_the_broker_does_not_give_is_not_a_stop(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The counts are compared for a warning only: a describe that failed stopped the worker,
    saying it "cannot create the topics", which existed."""
    monkeypatch.setattr(admin_module, "AIOKafkaAdminClient", _Admin)
    with caplog.at_level(logging.WARNING, logger="accrochage.kafka"):
        await ensure_topics("127.0.0.1:9", {"events": 8})
    (said,) = [r.getMessage() for r in caplog.records]
    assert "could not read the partition counts of events (KafkaTimeoutError)" in said
