"""The gauges of the state (CONTRACT.md §10): rendered from the last `Observation` the watch
job published (`streams/watch.py`), so that a scrape never queries the state, and the Kafka
lag beside them. Publishing replaces the whole snapshot: no scrape sees half of one."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from enum import StrEnum

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from accrochage.models.deadline import PARIS
from accrochage.models.vocabulary import BatchState, RecordStatus
from accrochage.state.base import Observation

UNKNOWN = "?"
"""The `certifier` label of records whose certifier is not configured."""


@dataclass(slots=True)
class _Snapshot:
    observation: Observation | None = None
    certifiers: tuple[str, ...] = ()
    lag: dict[tuple[str, int], int] = field(default_factory=dict)


class StateCollector(Collector):
    """Renders the last published observation; publishing replaces it whole (no torn scrape)."""

    def __init__(self) -> None:
        self._snapshot = _Snapshot()
        self._lock = threading.Lock()

    def publish(self, observation: Observation, certifiers: Iterable[str]) -> None:
        with self._lock:
            self._snapshot = _Snapshot(observation, tuple(certifiers), self._snapshot.lag)

    def publish_lag(self, lag: Mapping[tuple[str, int], int]) -> None:
        with self._lock:
            self._snapshot = _Snapshot(
                self._snapshot.observation, self._snapshot.certifiers, dict(lag)
            )

    def collect(self) -> Iterator[Metric]:
        snapshot = self._snapshot
        yield from _state_families(snapshot.observation, snapshot.certifiers)
        if snapshot.lag:
            lag = GaugeMetricFamily(
                "accrochage_kafka_lag_messages",
                "Messages on the topic beyond the offset the state has stored.",
                labels=["topic", "partition"],
            )
            for (topic, partition), n in sorted(snapshot.lag.items()):
                lag.add_metric([topic, str(partition)], n)
            yield lag


def certifier_label(certifier: str | None, certifiers: Iterable[str]) -> str:
    return certifier if certifier is not None and certifier in certifiers else UNKNOWN


def by_label(counts: Mapping[str | None, int], certifiers: Iterable[str]) -> dict[str, int]:
    keys = set(certifiers)
    out = dict.fromkeys(sorted(keys), 0)
    for certifier, n in counts.items():
        label = certifier_label(certifier, keys)
        out[label] = out.get(label, 0) + n
    return out


def by_label_and(
    counts: Iterable[tuple[tuple[str | None, str], int]], keys: set[str], kinds: Iterable[StrEnum]
) -> list[tuple[tuple[str, str], int]]:
    """`by_label` for counts by certifier and a second word (a status, a batch state): every
    configured certifier with every word, from 0."""
    out = {(c, kind.value): 0 for c in sorted(keys) for kind in kinds}
    for (certifier, kind), n in counts:
        label = (certifier_label(certifier, keys), kind)
        out[label] = out.get(label, 0) + n
    return sorted(out.items())


def _state_families(
    observation: Observation | None, certifiers: tuple[str, ...]
) -> Iterator[Metric]:
    records = GaugeMetricFamily(
        "accrochage_records", "Records by certifier and status.", labels=["certifier", "status"]
    )
    at_risk = GaugeMetricFamily(
        "accrochage_records_at_risk",
        "Outstanding records due within the deadline margin (not yet overdue), or on a day "
        "unknown (their delivery date cannot be read).",
        labels=["certifier"],
    )
    overdue = GaugeMetricFamily(
        "accrochage_records_overdue",
        "Outstanding records whose deadline has passed.",
        labels=["certifier"],
    )
    next_deadline = GaugeMetricFamily(
        "accrochage_next_deadline_timestamp_seconds",
        "When the earliest deadline of the outstanding records passes (Unix time): the end of "
        "its day, midnight in Paris; `time() > this` means a record is overdue.",
        labels=["certifier"],
    )
    corrections = GaugeMetricFamily(
        "accrochage_correction_requests_open",
        "Correction requests not answered yet.",
        labels=["certifier"],
    )
    batches = GaugeMetricFamily(
        "accrochage_batches", "Batches by certifier and state.", labels=["certifier", "state"]
    )
    if observation is not None:
        keys = set(certifiers)
        for pair, n in by_label_and(observation.records.items(), keys, RecordStatus):
            records.add_metric(list(pair), n)
        for certifier, n in by_label(observation.at_risk, keys).items():
            at_risk.add_metric([certifier], n)
        for certifier, n in by_label(observation.overdue, keys).items():
            overdue.add_metric([certifier], n)
        earliest: dict[str, float] = {}
        for owner, day in observation.next_deadline.items():
            key = certifier_label(owner, keys)
            # The deadline day itself is on time: the record is late from the next midnight.
            stamp = datetime.combine(day + timedelta(days=1), time(), PARIS).timestamp()
            earliest[key] = min(stamp, earliest.get(key, stamp))
        for certifier, stamp in sorted(earliest.items()):
            next_deadline.add_metric([certifier], stamp)
        for certifier, n in by_label(observation.correction_requests_open or {}, keys).items():
            corrections.add_metric([certifier], n)
        for pair, n in by_label_and(observation.batches.items(), keys, BatchState):
            batches.add_metric(list(pair), n)
    yield from (records, at_risk, overdue, next_deadline, corrections, batches)
