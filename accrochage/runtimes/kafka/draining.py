"""Fetched records handed over a fetch at a time, not through faust's per-event machinery.

faust delivers each record on its own: a task per message (`wait_first`), the conductor, a
channel queue, a stream, an event, an ack. That cost ~100 µs of the worker's event loop per
event, more than decoding it. The worker needs none of it: SQLite, not faust's acks, decides
what is stored (see `worker.py`). `drain` replaces faust's `Consumer._drain_messages` loop
and keeps what matters of it: records are fetched only while the flow is active (faust
suspends it during a rebalance and the consumer seeks to the stored offsets before it
resumes), from active partitions, in offset order within a partition.

Unlike faust's `getmany`, nothing fetched is dropped (faust drops a fetch that spans a
rebalance, then relies on a seek). Dropping records without a seek back would let a later
group store offsets past them: lost. Handing them over is always safe here: a partition's
records arrive in order from some offset at or below the stored one (a seek only goes back
to it), and those below the stored offset are skipped in the storing transaction. One active
worker per state (`StoreLocation.service_guard`) means no other member stores them meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from faust.transport.consumer import CONSUMER_FETCHING

Receive = Callable[[Sequence[Any]], Awaitable[None]]
"""Takes the records of one fetch (aiokafka `ConsumerRecord`s, each partition's in order);
waits when too much is in flight (back-pressure: no fetch meanwhile)."""

FETCH_TIMEOUT = 1.0


def records_of(fetched: Any) -> list[Any]:
    """A fetch's records, partition by partition, each partition's in offset order."""
    out: list[Any] = []
    for batch in fetched.values():
        out.extend(batch)
    return out


async def drain(consumer: Any, fetcher: Any, receive: Receive) -> None:
    """The fetch loop of `consumer` (a faust aiokafka consumer), one `receive` per fetch."""
    consumer_stopped = consumer._stopped.is_set
    fetcher_stopped = fetcher._stopped.is_set
    diag = consumer.diag
    try:
        while not (consumer_stopped() or fetcher_stopped()):
            diag.set_flag(CONSUMER_FETCHING)
            fetched, _ = await consumer._wait_next_records(FETCH_TIMEOUT)
            await asyncio.sleep(0)
            if fetched:
                await receive(records_of(fetched))
            diag.unset_flag(CONSUMER_FETCHING)
    except consumer.consumer_stopped_errors:
        if consumer.transport.app.should_stop:
            return
        raise
    except asyncio.CancelledError:
        if consumer.transport.app.should_stop:
            return
        raise
    finally:
        diag.unset_flag(CONSUMER_FETCHING)
