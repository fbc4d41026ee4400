"""Sending alerts: webhooks in Alertmanager's format, an Alertmanager's API, a Kafka topic.

The delivery job compares, for each receiver, the alerts table with what that receiver last
got (`alert_deliveries`) and sends what differs: a new firing, a repeat due
(`alerts.repeat`; every minute for an Alertmanager), a resolution of what it got firing. A
delivery is recorded only once the receiver took it, so a failure is retried at the next
tick (with a back-off per receiver) and a restart loses none (a kill -9 between a POST and
its record sends that one again: at least once). What waits is bounded by the alerts
themselves (five rules per certifier), and each run sends at most `MAX_PER_RUN` per
receiver. The job runs in a thread of its own: a receiver that is down or slow (each request
ends `posting.TIMEOUT` seconds after it connected, answered or not) never slows ingestion,
nor the other receivers for long, nor the service's stop.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol
from urllib.parse import urlsplit

from accrochage.models.deadline import Clock
from accrochage.state.base import AlertDelivery, AlertState, Store
from accrochage.streams.alerts import (
    FIRING,
    RESOLVED,
    alert_object,
    annotations_of,
    labels,
    webhook_body,
)
from accrochage.streams.log_lines import LinesEvery
from accrochage.streams.posting import ReceiverError, post_json
from accrochage.streams.scheduler import Job

log = logging.getLogger("accrochage.alerts")
EVERY_AT_MOST = 60.0
"""Seconds between delivery runs at most, whatever `batching.tick`: an Alertmanager resolves
an alert whose `endsAt` passes (`ALERTMANAGER_AHEAD`) before it is sent again."""
MAX_PER_RUN = 100
BUDGET_PER_RUN = 10.0
"""Seconds a receiver may take of a run: one that answers slowly (under `posting.TIMEOUT`)
keeps the rest for the next run, and the receivers after it are served now. Before, 100
alerts at 4.9 s each held every other receiver for eight minutes, beyond the five an
Alertmanager keeps a firing alert without news."""
MAX_BACKOFF = timedelta(minutes=5)
FAILURES_LOGGED_EVERY = 3600.0
"""Seconds between two lines of one receiver's failures: tried every `MAX_BACKOFF`, a
receiver down for a day made 288 lines; the next line says how many failed since."""
ALERTMANAGER_REPEAT = timedelta(minutes=1)
ALERTMANAGER_AHEAD = timedelta(minutes=5)
"""`endsAt` of a firing alert sent to an Alertmanager: it resolves it if we stop sending."""


class Receiver(Protocol):
    @property
    def name(self) -> str:
        """Stable, stored with its deliveries; never the URL itself (it may hold a secret)."""

    @property
    def where(self) -> str:
        """What the log may show of its target: a URL's scheme and host, never its
        credentials, path or query (a Slack webhook's key is its path)."""

    @property
    def repeat(self) -> timedelta: ...

    def send(self, state: AlertState, now: datetime) -> None:
        """Deliver, or raise."""


def _id(kind: str, target: str) -> str:
    return f"{kind}:{hashlib.sha256(target.encode()).hexdigest()[:12]}"


def _host_of(url: str) -> str:
    """Where the receiver is, read to warn that a delivery failed: it never raises. A port
    out of range or not a number failed the delivery, then raised again here and ended the
    whole run, every receiver after it unserved."""
    try:
        parts = urlsplit(url)
    except ValueError:  # an unclosed IPv6 bracket
        return "?"
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{parts.scheme}://{parts.hostname or '?'}" + (f":{port}" if port else "")


@dataclass
class Webhook:
    url: str
    repeat: timedelta

    @property
    def name(self) -> str:
        return _id("webhook", self.url)

    @property
    def where(self) -> str:
        return _host_of(self.url)

    def send(self, state: AlertState, now: datetime) -> None:
        post_json(self.url, webhook_body(state))


def ahead(now: datetime, span: timedelta) -> datetime:
    """`span` of elapsed time after `now`, read in `now`'s zone: an aware time plus a
    timedelta moves the wall clock, and across the autumn change five minutes were 65."""
    tz = now.tzinfo
    return (now.astimezone(UTC) + span).astimezone(tz)


@dataclass
class Alertmanager:
    base_url: str
    repeat: timedelta = ALERTMANAGER_REPEAT

    @property
    def name(self) -> str:
        return _id("alertmanager", self.base_url)

    @property
    def where(self) -> str:
        return _host_of(self.base_url)

    def send(self, state: AlertState, now: datetime) -> None:
        ends = state.ends_at if state.status == RESOLVED and state.ends_at else None
        alert = {
            "labels": labels(state),
            "annotations": annotations_of(state),
            "startsAt": state.starts_at.isoformat(timespec="seconds"),
            "endsAt": (ends or ahead(now, ALERTMANAGER_AHEAD)).isoformat(timespec="seconds"),
            "generatorURL": "",
        }
        post_json(self.base_url.rstrip("/") + "/api/v2/alerts", [alert])


@dataclass
class Topic:
    """`alerts.topic` on Kafka: key the fingerprint, value the alert object."""

    topic: str
    produce: Callable[[str, bytes, bytes], None]
    repeat: timedelta

    @property
    def name(self) -> str:
        return _id("topic", self.topic)

    @property
    def where(self) -> str:
        return f"topic {self.topic}"

    def send(self, state: AlertState, now: datetime) -> None:
        alert = alert_object(state)
        self.produce(self.topic, alert["fingerprint"].encode(), json.dumps(alert).encode())


def due(state: AlertState, last: AlertDelivery | None, repeat: timedelta, now: datetime) -> bool:
    if state.status == FIRING:
        if last is None or last.status != FIRING or last.sent_at < state.starts_at:
            return True
        return now - last.sent_at >= repeat
    return last is not None and last.status == FIRING


class Deliverer:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        receivers: Sequence[Receiver],
        ready: Callable[[], bool] = lambda: True,
        seconds: Callable[[], float] = time.monotonic,
        counted: Callable[[str, bool], None] = lambda receiver, sent: None,
    ) -> None:
        """`ready`: whether the alerts stored are the rules' answer on the state as it is;
        until then nothing is sent. At a service's start they are those of its last run: a
        repeat due sent a "firing" for an alert settled while it was down (a false page,
        resolved a second later) and counts of the day before."""
        self.store = store
        self.clock = clock
        self.receivers = list(receivers)
        self.ready = ready
        self._seconds = seconds
        """The time a receiver takes of a run is read here (`BUDGET_PER_RUN`)."""
        self._retry_at: dict[str, datetime] = {}
        """In UTC: two times of the Paris clock compare as read on the wall, and a back-off
        begun in the hour before the clocks go back ended an hour late."""
        self._backoff: dict[str, timedelta] = {}
        self._failures = LinesEvery(FAILURES_LOGGED_EVERY, seconds)
        self._stopping = threading.Event()
        self.counted = counted
        """Told each notice sent or failed, by receiver name (the metrics): a receiver that
        refuses every notice is otherwise only a log line, and no deadline reaches anyone."""

    def stop(self) -> None:
        """Send nothing more: a run in progress ends after the request it is making."""
        self._stopping.set()

    def run(self) -> int:
        """Send what is due to every receiver; return how many deliveries succeeded."""
        if not self.receivers or not self.ready():
            return 0
        now = self.clock.now()
        sent = 0
        with self.store.reading() as reader:
            states = reader.alert_states()
            last = {r.name: reader.alert_deliveries(r.name) for r in self.receivers}
        for receiver in self.receivers:
            if now < self._retry_at.get(receiver.name, now):
                continue
            got = {(d.alertname, d.certifier): d for d in last[receiver.name]}
            todo = [
                s
                for s in states
                if due(s, got.get((s.alertname, s.certifier)), receiver.repeat, now)
            ]
            started, failed, sent_before = self._seconds(), False, sent
            for state in todo[:MAX_PER_RUN]:
                if self._stopping.is_set():
                    return sent
                try:
                    receiver.send(state, now)
                except Exception as exc:
                    self.counted(receiver.name, False)
                    self._failed(receiver, now, exc)
                    failed = True
                    break
                self.counted(receiver.name, True)
                with self.store.transaction() as tx:
                    tx.save_alert_delivery(
                        AlertDelivery(
                            state.alertname, state.certifier, receiver.name, state.status, now
                        )
                    )
                sent += 1
                if self._seconds() - started >= BUDGET_PER_RUN:
                    break  # the rest at the next run (it answered: no back-off)
            if not failed:
                self._retry_at.pop(receiver.name, None)
                was_failing = self._backoff.pop(receiver.name, None) is not None
                if was_failing and sent > sent_before:
                    log.info("alert receiver %s (%s) takes notices again", *_named(receiver))
        return sent

    def _failed(self, receiver: Receiver, now: datetime, exc: Exception) -> None:
        name = receiver.name
        backoff = min(self._backoff.get(name, timedelta(seconds=2.5)) * 2, MAX_BACKOFF)
        self._backoff[name] = backoff
        self._retry_at[name] = now.astimezone(UTC) + backoff
        count = self._failures.due(name)
        if count is None:
            return
        many = f"; {count} failures since the last such line" if count > 1 else ""
        log.warning(
            "alert receiver %s (%s) failed (%s); retrying in %ds, then at most every %ds%s",
            name,
            receiver.where,
            _why(exc),
            backoff.total_seconds(),
            MAX_BACKOFF.total_seconds(),
            many,
        )


def _named(receiver: Receiver) -> tuple[str, str]:
    return receiver.name, receiver.where


def _why(exc: Exception) -> str:
    """What went wrong, without what an exception's text may quote of the URL (a secret)."""
    if isinstance(exc, ReceiverError):
        return str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}"
    return type(exc).__name__


def delivery_job(deliverer: Deliverer, every: float) -> Job:
    """Deliveries every `every` seconds (`batching.tick`), at most `EVERY_AT_MOST`."""

    def run() -> None:
        deliverer.run()

    return Job("alerts", min(every, EVERY_AT_MOST), run, stop=deliverer.stop)
