"""The Prometheus metrics of CONTRACT.md §10, in one registry of their own.

The state's gauges come from the last `Observation` (`streams/state_metrics.py`), computed
by the watch job (`streams/watch.py`): a scrape renders numbers already known and never
queries the state.
Counters are incremented where events are stored and files written.

Counting across processes: the process that serves `/metrics` holds the only registry that
counts. The Kafka writer process ships the tally of each stored group back with its result
(`streams/writer_process.py`), and render processes hand each file's outcome back to the
flusher, which counts it. We chose this over prometheus-client's multiprocess mode, which
needs `PROMETHEUS_MULTIPROC_DIR` set before the library is imported in every process, a
directory to create and wipe at each start, and files left behind by a killed process;
here a count is never lost nor doubled by a restarted child, and tests read a plain registry.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from accrochage.models.vocabulary import BatchState, Outcome, RecordStatus
from accrochage.state.base import Observation, WriteObserver, WriteTime
from accrochage.streams.incoming import IngestResult
from accrochage.streams.state_metrics import StateCollector
from accrochage.streams.write_times import Shipped

EVENT_OUTCOMES: tuple[str, ...] = (
    Outcome.CREATED,
    Outcome.UNCHANGED,
    Outcome.UPDATED,
    RecordStatus.INVALID,
    Outcome.UNUSABLE,
    Outcome.FORBIDDEN,
)
"""The `outcome` labels of `accrochage_events_total` (CONTRACT §10)."""
BATCH_OUTCOMES: tuple[str, ...] = (BatchState.WRITTEN, BatchState.FAILED)
DELIVERY_OUTCOMES = ("sent", "failed")
WRITING_PROCESSES = ("service", "writer")
"""The `process` labels of the write lock's histograms: the process that serves `/metrics`
(its batch cuts, reports, corrections, alerts; a worker's events when it stores them itself)
and its events' writer process."""
LOCK_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""From a write alone (about a millisecond) to `state.lock_wait`'s default (30 s)."""


def event_outcome(result: IngestResult) -> str | None:
    """The `outcome` label of a stored event; None when nothing was stored."""
    if not result.stored:
        return None
    if result.record_id is None or result.outcome in (Outcome.UNUSABLE, Outcome.REFUSED):
        return Outcome.UNUSABLE  # kept in the unusable log, no record changed
    if result.outcome == Outcome.FORBIDDEN:
        return Outcome.FORBIDDEN
    if result.errors:
        return RecordStatus.INVALID
    if result.outcome in (Outcome.CREATED, Outcome.UNCHANGED):
        return result.outcome
    return Outcome.UPDATED


def tally(results: Iterable[IngestResult]) -> dict[str, int]:
    counts = Tally(o for o in map(event_outcome, results) if o is not None)
    return dict(counts)


class Metrics:
    """One registry and the instruments in it: built once by the composition root
    (`app.build_core`) and handed to what counts; a process that serves no `/metrics` (a writer
    or decode process) counts nowhere and ships its tallies back instead."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._events = Counter(
            "accrochage_events",
            "Events stored, by outcome (created, unchanged, updated, invalid, unusable; "
            "forbidden: refused to a scoped ingest token, kept in the unusable log).",
            ["outcome"],
            registry=self.registry,
        )
        self._batch_writes = Counter(
            "accrochage_batch_writes",
            "Batch files written (XSD-valid, released) or failed.",
            ["outcome"],
            registry=self.registry,
        )
        self._last_flush = Gauge(
            "accrochage_last_flush_timestamp_seconds",
            "When the flusher last ran to its end (Unix time).",
            registry=self.registry,
        )
        self._batching_tick = Gauge(
            "accrochage_batching_tick_seconds",
            "batching.tick: the seconds between the end of one batch cut and the start of the "
            "next (up to an hour), which a last flush's age allows for.",
            registry=self.registry,
        )
        self._last_watch = Gauge(
            "accrochage_last_watch_timestamp_seconds",
            "When the watch job last read the state and every listener heard it (the gauges, "
            "the alert rules; Unix time): the gauges and the alerts are as of then.",
            registry=self.registry,
        )
        self._rate_limited = Counter(
            "accrochage_rate_limited",
            "Requests refused (429) to an ingest token over its events a minute, by token "
            "(its place in api.ingest_tokens, never its value).",
            ["sender"],
            registry=self.registry,
        )
        self._alert_deliveries = Counter(
            "accrochage_alert_deliveries",
            "Alert notices sent to each receiver (its name as the log and the state say it: "
            "webhook:<hash> or alertmanager:<hash>, never its URL), by outcome (sent, failed).",
            ["receiver", "outcome"],
            registry=self.registry,
        )
        self._configuration_changed = Gauge(
            "accrochage_configuration_changed",
            "1 when the configuration file no longer says what this service runs (edited, or "
            "broken, since its start: restart it, or fix the file), else 0.",
            registry=self.registry,
        )
        self._lock_wait = Histogram(
            "accrochage_write_lock_wait_seconds",
            "How long each write transaction waited for the state (another writer held it: a "
            "batch cut, a report, a command), by process (service, writer); one that gave up "
            "(503 state_busy) counts its whole wait.",
            ["process"],
            buckets=LOCK_BUCKETS,
            registry=self.registry,
        )
        self._lock_held = Histogram(
            "accrochage_write_lock_held_seconds",
            "How long each write transaction held the state, every other writer waiting, by "
            "process (service, writer).",
            ["process"],
            buckets=LOCK_BUCKETS,
            registry=self.registry,
        )
        self._write_observers = {p: self.write_observer(p) for p in WRITING_PROCESSES}
        for outcome in EVENT_OUTCOMES:
            self._events.labels(outcome)
        for outcome in BATCH_OUTCOMES:
            self._batch_writes.labels(outcome)
        self._state = StateCollector()
        self.registry.register(self._state)

    def watch_free_space(self, free_bytes: Callable[[], int | None], keep_free: int) -> None:
        """Serve the state's disk's free bytes (read at each scrape) beside the space events
        leave free: an alert rule on the two warns before events are refused."""
        free = Gauge(
            "accrochage_state_free_bytes",
            "Bytes free on the disk holding the state (read at each scrape; NaN: unknown).",
            registry=self.registry,
        )
        free.set_function(lambda: float("nan") if (n := free_bytes()) is None else float(n))
        kept = Gauge(
            "accrochage_state_keep_free_bytes",
            "state.keep_free_bytes: below it on the state's disk, events are refused (507 "
            "storage_low; a Kafka worker waits).",
            registry=self.registry,
        )
        kept.set(keep_free)

    def write_observer(self, process: str) -> WriteObserver:
        """What a store of `process` (`WRITING_PROCESSES`) tells its writes' times to."""
        waited, held = self._lock_wait.labels(process), self._lock_held.labels(process)

        def observe(time: WriteTime) -> None:
            waited.observe(time.waited)
            if time.held is not None:
                held.observe(time.held)

        return observe

    def count_write_times(self, process: str, shipped: Shipped) -> None:
        """The times a writer process shipped with an answer (`streams/write_times.py`)."""
        observe = self._write_observers[process]
        for waited, held in shipped:
            observe(WriteTime(waited, held))

    def watch_log_size(self, log_bytes: Callable[[], int | None]) -> None:
        """Serve the size of the state's write-ahead log (read at each scrape): an alert rule
        sees a reader that keeps it from starting over."""
        size = Gauge(
            "accrochage_state_wal_bytes",
            "Bytes of the state's write-ahead log (SQLite's -wal; read at each scrape; NaN: "
            "unknown): about 45 MiB in steady use, cut back to 64 MiB after a large "
            "transaction; larger for long, a reader keeps old pages (a long backup or query) "
            "and it grows until that reader ends.",
            registry=self.registry,
        )
        size.set_function(lambda: float("nan") if (n := log_bytes()) is None else float(n))

    def count_events(self, counts: Mapping[str, int]) -> None:
        """Add a stored group's tally (`tally`)."""
        for outcome, n in counts.items():
            if outcome in EVENT_OUTCOMES and n > 0:
                self._events.labels(outcome).inc(n)

    def limits(self, senders: Iterable[str]) -> None:
        """The senders with a budget: each one's count is served from 0."""
        for sender in senders:
            self._rate_limited.labels(sender)

    def rate_limited(self, sender: str) -> None:
        self._rate_limited.labels(sender).inc()

    def alert_receivers(self, names: Iterable[str]) -> None:
        """The configured receivers: each one's counts are served from 0."""
        for name in names:
            for outcome in DELIVERY_OUTCOMES:
                self._alert_deliveries.labels(name, outcome)

    def count_alert_delivery(self, receiver: str, sent: bool) -> None:
        self._alert_deliveries.labels(receiver, DELIVERY_OUTCOMES[0 if sent else 1]).inc()

    def configuration_changed(self, changed: bool) -> None:
        self._configuration_changed.set(int(changed))

    def count_batch_write(self, ok: bool) -> None:
        self._batch_writes.labels(BatchState.WRITTEN if ok else BatchState.FAILED).inc()

    def batching_tick(self, seconds: float) -> None:
        self._batching_tick.set(seconds)

    def flushed(self, at: datetime) -> None:
        """The flusher ran to its end at `at`."""
        self._last_flush.set(at.timestamp())

    def watched(self, observation: Observation, at: datetime, certifiers: Iterable[str]) -> None:
        """The watch job read the state at `at`: the gauges render this observation."""
        self._state.publish(observation, certifiers)

    def watch_heard(self, at: datetime) -> None:
        """Every listener of the watch job (these gauges, the alert rules) heard its reading
        of `at`."""
        self._last_watch.set(at.timestamp())

    def publish_lag(self, lag: Mapping[tuple[str, int], int]) -> None:
        """The Kafka lag by (topic, partition); empty: no figure (the broker cannot say)."""
        self._state.publish_lag(lag)
