"""The broker gone while the worker seeks its partitions: it stops, saying why, never runs on
without consuming.

faust waits for a seek (`perform_seek`) for `broker_request_timeout` (90 s), then takes its
own wait for a stop and ends its partition recovery for good. With the broker killed as the
worker sought and kept away 100 s, the worker ran on, logged nothing, and read none of the
2,000 events produced once the broker was back.
"""

from __future__ import annotations

import asyncio

import pytest
from faust import App
from faust.transport.drivers import aiokafka as faust_aiokafka

from accrochage.runtimes.kafka import seeking
from accrochage.runtimes.kafka.seeking import SeekingConsumer, SeekUnanswered


def test_the_seek_is_bounded_below_faust_s_own_wait() -> None:
    waited = App("seek-bound", autodiscover=False).conf.broker_request_timeout
    assert waited > seeking.SEEK_SECONDS, "faust would end its recovery first"


async def test_a_seek_the_broker_never_answers_stops_the_worker_saying_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def unanswered(self: object) -> None:  # aiokafka retries until the broker answers
        await asyncio.Event().wait()

    monkeypatch.setattr(faust_aiokafka.Consumer, "perform_seek", unanswered)
    monkeypatch.setattr(seeking, "SEEK_SECONDS", 0.05)
    consumer = SeekingConsumer.__new__(SeekingConsumer)
    async with asyncio.timeout(30):  # a safety net: the seek waited for ever before
        with pytest.raises(SeekUnanswered) as raised:
            await consumer.perform_seek()
    said = str(raised.value)
    assert "did not answer for 0.05 s" in said
    assert "start the worker again" in said and "resumes from the offsets stored" in said
