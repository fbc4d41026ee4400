"""The worker's consumer reads only what producers committed (`read_committed`)."""

from __future__ import annotations

from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka

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
