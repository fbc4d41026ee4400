"""The Kafka lag as the state sees it, and the stored offsets committed back to Kafka.

Lag is the partition's end offset minus the next offset stored in the state (what was
received but not yet stored counts as lag). Each tick, the stored offsets that moved since the
last tick are committed to the consumer group (through `SeekingConsumer._commit`, which always
commits stored offsets), so `kafka-consumer-groups --describe` and lag exporters agree.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from accrochage.state.base import Store
from accrochage.streams.metrics import Metrics
from accrochage.streams.scheduler import Job

log = logging.getLogger("accrochage.kafka")
END_OFFSETS_WAIT = 5.0
"""Seconds the end offsets are waited for before the lag is shown as unknown. With the broker
gone aiokafka retries for faust's `broker_request_timeout` (90 s) before it raises: the last
figure stood as long, an outage looking like a worker caught up (or a backlog long read)."""


def lag_job(
    app: Any,
    store: Store,
    topic: str,
    metrics: Metrics,
    every: float = 1.0,
    wait: float = END_OFFSETS_WAIT,
) -> Job:
    committed: dict[int, int] = {}

    async def run() -> None:
        consumer = app.consumer
        assigned = sorted(
            (tp for tp in consumer.assignment() if tp.topic == topic), key=lambda tp: tp.partition
        )
        if not assigned:
            # None of the topic's partitions (a rebalance gave them to another member, or
            # none yet): no figure, not the last one for ever (AccrochageKafkaUnreachable).
            metrics.publish_lag({})
            return
        stored = await asyncio.to_thread(store.offsets, topic)
        asked = asyncio.ensure_future(consumer.highwaters(*assigned))
        try:
            if not (await asyncio.wait({asked}, timeout=wait))[0]:
                metrics.publish_lag({})  # no answer yet: no figure while it lasts
            ends = await asked
        except Exception:
            # The broker cannot say its end offsets (it is down): the last lag, 0 say, would
            # show an outage as a healthy, caught-up worker. No figure until it answers.
            metrics.publish_lag({})
            raise
        finally:
            asked.cancel()  # the job stopped while it waited (done already: nothing)
        metrics.publish_lag(
            {
                (topic, tp.partition): max(0, int(ends.get(tp) or 0) - stored.get(tp.partition, 0))
                for tp in assigned
            }
        )
        moved = {
            tp: stored[tp.partition]
            for tp in assigned
            if tp.partition in stored and committed.get(tp.partition) != stored[tp.partition]
        }
        if moved and await consumer._commit(moved):
            committed.update({tp.partition: offset for tp, offset in moved.items()})

    return Job("kafka-lag", every, run)


class AlertProducer:
    """Produces alerts to `alerts.topic` from the delivery job's thread, on faust's loop."""

    TIMEOUT = 10.0

    def __init__(self, app: Any) -> None:
        self.app = app
        self.loop: asyncio.AbstractEventLoop | None = None

    def bind(self) -> None:
        self.loop = asyncio.get_running_loop()

    def __call__(self, topic: str, key: bytes, value: bytes) -> None:
        if self.loop is None:
            raise RuntimeError("the Kafka producer is not started yet")
        send = self.app.producer.send_and_wait(topic, key, value, None, None, None)
        asyncio.run_coroutine_threadsafe(send, self.loop).result(self.TIMEOUT)
