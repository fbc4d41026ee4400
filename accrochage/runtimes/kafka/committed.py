"""The worker's consumer reads only what producers committed (`read_committed`)."""

from __future__ import annotations

import logging
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka

log = logging.getLogger("accrochage.kafka")
READ_COMMITTED = "read_committed"


class CommittedReadingThread(faust_aiokafka.AIOKafkaConsumerThread):
    """faust reads `read_uncommitted` unless the app is `exactly_once`: the records of a
    transaction its producer aborted, or has not committed yet, were stored and sent to the
    CDC (an aborted correction superseded a file and was cut in its place). The worker's
    consumer reads `read_committed`: only what producers committed, in order, the records
    of an open transaction once it commits (a producer that dies in one holds its partition
    until the broker aborts it: `transaction.timeout.ms`)."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # Read by aiokafka when the consumer starts (its fetcher), not before: the one
        # setting faust does not pass through, short of copying its 60-line constructor.
        consumer._isolation_level = READ_COMMITTED
        return consumer


def say_resume(topic: str, partition: int, offset: int, committed: int | None) -> None:
    """Log where a partition resumes: the state's offset, whatever the group committed. A group
    offset ahead of it (a state restored from a backup, or another state that read this group)
    was not said: the events between were read again with no word of why."""
    if committed is None or committed <= offset:
        log.info("resume %s[%d] at stored offset %d", topic, partition, offset)
        return
    log.warning(
        "resume %s[%d] at stored offset %d, below the offset %d the consumer group committed: "
        "the state decides, offsets %d to %d are read again (this state was restored from a "
        "backup, or another state read this group before it)",
        topic,
        partition,
        offset,
        committed,
        offset,
        committed - 1,
    )
