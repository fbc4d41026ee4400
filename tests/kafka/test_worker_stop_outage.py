"""A stop during a broker outage ends within the worker's bounds.

A SIGTERM while the broker was down (a rejected-topic letter in flight) hung at faust's
"Flush producer buffer...": aiokafka waits for the broker to come back, however long; 150 s
after the SIGTERM (compose's `stop_grace_period`, systemd's `TimeoutStopSec`) the worker was
still there, to be killed.
"""

from __future__ import annotations

import asyncio
import logging

import faust
import pytest

from accrochage.runtimes.kafka import worker
from accrochage.runtimes.kafka.worker import WorkerApp


async def test_a_stop_gives_up_the_messages_the_broker_does_not_confirm(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def unconfirmed(self: object, logger: object) -> None:  # the broker is gone
        await asyncio.Event().wait()

    sending = asyncio.ensure_future(asyncio.Event().wait())  # aiokafka's sender, retrying

    class Sender:
        sender_task = sending

    class Driver:
        _sender = Sender()

    class Producer:
        _producer = Driver()

    monkeypatch.setattr(faust.App, "_producer_flush", unconfirmed)
    monkeypatch.setattr(worker, "PRODUCER_FLUSH_SECONDS", 0.05)
    app = WorkerApp("stop-outage", autodiscover=False)
    app._producer = Producer()
    try:
        async with asyncio.timeout(30):  # a safety net: the flush waited for ever before
            await app._producer_flush(logging.getLogger("test"))
        await asyncio.wait([sending], timeout=30)
        assert sending.cancelled(), "the producer's own stop would wait for it again"
    finally:
        sending.cancel()
