"""Prometheus metrics (CONTRACT §10): the gauges from the watch job, the counters where events
and files happen (in the writer process too), `GET /metrics` behind the operator's token.

The exposition is parsed with `prometheus_client.parser`, never matched as text.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections import defaultdict, namedtuple
from collections.abc import Awaitable, Callable
from datetime import datetime, time, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from accrochage.app import Core
from accrochage.app_writers import build_writer_parts
from accrochage.models.deadline import PARIS, paris_today
from accrochage.models.vocabulary import RecordStatus
from accrochage.runtimes.watching import watch_for
from accrochage.streams.incoming import Incoming
from accrochage.streams.metrics import EVENT_OUTCOMES, Metrics
from accrochage.streams.writer import WriterService
from accrochage.streams.writer_process import ProcessWriter
from tests.factories import revoked_event
from tests.test_http import serving
from tests.test_tracker import event, ingest, make_core, write_config

Samples = dict[str, list[tuple[dict[str, str], float]]]
TOKEN = "t" * 40


def parse(text: str) -> Samples:
    samples: Samples = defaultdict(list)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name].append((sample.labels, sample.value))
    return samples


def scrape(where: Metrics) -> Samples:
    return parse(generate_latest(where.registry).decode())


def counter(samples: Samples, name: str, outcome: str) -> float:
    return sum(v for labels, v in samples[name] if labels["outcome"] == outcome)


def total(samples: Samples, name: str, **wanted: str) -> float:
    return sum(v for labels, v in samples[name] if all(labels[k] == w for k, w in wanted.items()))


def every_status(core: Core) -> None:
    """Records of both certifiers in every status, one invalid of an unknown certifier."""
    statuses = list(RecordStatus)
    events: list[dict[str, Any]] = []
    for i, _ in enumerate(statuses):
        events.append(event(f"PX-{i}", delivered_on="2026-09-10"))  # due 2026-12-10: at risk
        events.append(
            event(
                f"SC-{i}", certifier="school", certification={"type": "RNCP", "code": "RNCP35726"}
            )
        )
    events.append(event("OLD-1", delivered_on="2026-08-01"))  # overdue on 2026-12-01
    events.append(event("NOBODY-1", certifier="nobody"))
    results = ingest(core, *events)
    assert all(r.stored for r in results)
    state = core.settings.paths.state
    conn = sqlite3.connect(state)
    try:
        for i, status in enumerate(statuses):
            outstanding = int(status not in ("accepted", "withdrawn", "excluded"))
            conn.execute(
                "UPDATE records SET status = ?, outstanding = ? WHERE record_id IN (?, ?)",
                (status.value, outstanding, f"PX-{i}", f"SC-{i}"),
            )
        conn.commit()
    finally:
        conn.close()


def test_a_watch_whose_alert_rules_fail_is_not_told_current(tmp_path: Path) -> None:
    """The last watch's time was set by the gauges' listener, before the alert rules ran: rules
    failing at every run (their answer never stored) left the deadline alerts stale while
    `AccrochageWatchStalled` stayed quiet (the monitoring review). The time now moves only
    when every listener heard the reading; the gauges still show the state as read."""
    core, clock = make_core(tmp_path)
    try:
        watch = watch_for(core)
        watch.run()
        heard_at = core.clock.now().timestamp()

        def failing(observation: object, at: datetime) -> None:
            raise sqlite3.OperationalError("database is locked")

        watch.listeners[1] = failing
        ingest(core, event("LATE-1"))
        clock.advance(timedelta(minutes=10))
        watch.run()
        samples = scrape(core.metrics)
        assert samples["accrochage_last_watch_timestamp_seconds"] == [({}, heard_at)]
        assert total(samples, "accrochage_records") == 1, "the gauges read the state anew"
        watch.listeners[1] = watch_for(core).listeners[1]
        watch.run()
        now = core.clock.now().timestamp()
        assert scrape(core.metrics)["accrochage_last_watch_timestamp_seconds"] == [({}, now)]
    finally:
        core.close()


def test_record_gauges_sum_to_the_summary_on_a_state_with_every_status(tmp_path: Path) -> None:
    core, _ = make_core(tmp_path)
    try:
        every_status(core)
        watch_for(core).run()
        samples = scrape(core.metrics)
        read_at = core.clock.now().timestamp()
        with core.store.reading() as reader:
            summary = reader.summary(paris_today(core.clock), core.settings.batching.margin_days)
            seen = reader.observe(paris_today(core.clock), 14, core.clock.now())
    finally:
        core.close()
    assert total(samples, "accrochage_records") == summary["records"]
    assert samples["accrochage_last_watch_timestamp_seconds"] == [({}, read_at)], "as of then"
    for status in RecordStatus:
        assert total(samples, "accrochage_records", status=status.value) == summary[
            "by_status"
        ].get(status.value, 0), status
    assert total(samples, "accrochage_records", certifier="pix") == sum(
        summary["by_certifier"]["pix"].values()
    )
    assert total(samples, "accrochage_records", certifier="?") == 1  # "nobody" is not configured
    labels = {labels["certifier"] for labels, _ in samples["accrochage_records"]}
    assert labels == {"pix", "school", "?"}
    assert total(samples, "accrochage_records_at_risk") == summary["at_risk"] > 0
    assert total(samples, "accrochage_records_overdue") == summary["overdue"] > 0
    deadlines = {
        labels["certifier"]: v
        for labels, v in samples["accrochage_next_deadline_timestamp_seconds"]
    }
    assert deadlines["pix"] < deadlines["school"]
    first = seen.next_deadline["pix"]
    ends = datetime.combine(first + timedelta(days=1), time(), PARIS).timestamp()
    assert deadlines["pix"] == ends, "late from the midnight that ends the deadline day"
    assert {labels["status"] for labels, _ in samples["accrochage_records"]} >= {
        s.value for s in RecordStatus
    }


def test_counters_follow_ingestion_and_batch_writes(tmp_path: Path) -> None:
    core, _ = make_core(tmp_path)
    try:
        ingest(core, event("PX-1"), event("PX-2"))
        before = scrape(core.metrics)
        report = core.flusher.flush(force=True)
        assert report.written and not report.failed
        after = scrape(core.metrics)
    finally:
        core.close()
    written = "accrochage_batch_writes_total"
    assert counter(after, written, "written") - counter(before, written, "written") == 1
    assert after["accrochage_last_flush_timestamp_seconds"][0][1] == core.clock.now().timestamp()


async def test_metrics_over_http_need_the_token_and_count_events(tmp_path: Path) -> None:
    core, _ = make_core(tmp_path, api={"token": TOKEN})
    try:
        async with serving(core) as client:
            async with client.get("/metrics") as response:
                assert response.status == 401
            before = scrape(core.metrics)
            bad = event("PX-9", holder={"sex": "X"})
            unknown = revoked_event(record_id="PX-404")  # kept in the unusable log too
            body = json.dumps([event("PX-1"), event("PX-2"), bad, "not an event", unknown])
            headers = {"Authorization": f"Bearer {TOKEN}"}
            sent = {**headers, "Content-Type": "application/json"}
            async with client.post("/events", data=body, headers=sent) as response:
                assert response.status == 200
            watch_for(core).run()
            async with client.get("/metrics", headers=headers) as response:
                assert response.status == 200
                assert response.headers["Content-Type"].startswith("text/plain")
                after = parse(await response.text())
    finally:
        core.close()
    name = "accrochage_events_total"
    delta = {o: counter(after, name, o) - counter(before, name, o) for o in EVENT_OUTCOMES}
    assert delta == {
        "created": 2,
        "unchanged": 0,
        "updated": 0,
        "invalid": 1,
        "unusable": 2,
        "forbidden": 0,
    }
    assert total(after, "accrochage_records", certifier="pix", status="pending") == 2
    for labels, _ in after["accrochage_records"]:
        assert set(labels) == {"certifier", "status"}  # never a record id or a person


async def test_the_writer_process_counts_in_the_serving_process(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    counted = Metrics()
    writer = ProcessWriter(partial(build_writer_parts, config), metrics=counted)
    before = scrape(counted)
    try:
        raw = json.dumps(event("PX-1")).encode()
        stored = writer.submit([Incoming(raw, "kafka:t:0:0", 0, 0, b"pix")])
        assert await asyncio.to_thread(stored.result, 60) == 1
    finally:
        writer.shutdown(wait=True)
    after = scrape(counted)
    name = "accrochage_events_total"
    assert counter(after, name, "created") - counter(before, name, "created") == 1


LAG_TP = namedtuple("tp", "topic partition")("t", 0)
"""The one partition the lag job's stand-in consumer is assigned."""


def lag_app(highwaters: Callable[[], Awaitable[object]]) -> Any:
    """A stand-in for the faust app the lag job reads: its consumer assigned `LAG_TP`, its
    end offsets what `highwaters` answers."""

    class Consumer:
        def assignment(self) -> set[object]:
            return {LAG_TP}

        async def highwaters(self, *_: object) -> object:
            return await highwaters()

        async def _commit(self, _: object) -> bool:
            return True

    class App:
        consumer = Consumer()

    return App()


async def test_the_kafka_lag_is_not_shown_while_the_broker_cannot_say_its_end_offsets(
    tmp_path: Path,
) -> None:
    """Its last value (0) stayed while the broker was down: an outage looked like a worker
    caught up."""
    from accrochage.runtimes.kafka.lag import lag_job

    answers: list[object] = [{LAG_TP: 5}, ConnectionError("broker down")]

    async def highwaters() -> object:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    core, _ = make_core(tmp_path)
    try:
        job = lag_job(lag_app(highwaters), core.store, "t", core.metrics)
        await job.run()  # type: ignore[misc]
        assert total(scrape(core.metrics), "accrochage_kafka_lag_messages", topic="t") == 5
        with pytest.raises(ConnectionError):
            await job.run()  # type: ignore[misc]
        assert scrape(core.metrics)["accrochage_kafka_lag_messages"] == []
    finally:
        core.close()


async def test_the_kafka_lag_is_not_shown_while_the_broker_does_not_answer(
    tmp_path: Path,
) -> None:
    """With the broker gone aiokafka waits out its request timeout (90 s) before it raises:
    the last lag stood all that while, a backlog long read or a worker caught up."""
    from accrochage.runtimes.kafka.lag import lag_job

    answered = asyncio.Event()
    calls: list[int] = []

    async def highwaters() -> object:
        calls.append(1)
        if len(calls) > 1:
            await answered.wait()  # the broker does not answer until it is back
        return {LAG_TP: 5}

    core, _ = make_core(tmp_path)
    try:
        job = lag_job(lag_app(highwaters), core.store, "t", core.metrics, wait=0.01)
        await job.run()  # type: ignore[misc]
        assert total(scrape(core.metrics), "accrochage_kafka_lag_messages", topic="t") == 5
        running = asyncio.ensure_future(job.run())  # type: ignore[arg-type]
        async with asyncio.timeout(30):
            while scrape(core.metrics)["accrochage_kafka_lag_messages"]:
                assert not running.done()
                await asyncio.sleep(0.01)
        answered.set()
        await running
        assert total(scrape(core.metrics), "accrochage_kafka_lag_messages", topic="t") == 5
    finally:
        core.close()


def test_two_services_in_one_process_count_apart(tmp_path: Path) -> None:
    """Each composition root holds its own registry: a second service (or a test) built in the
    same process neither adds to nor reads the first one's counts."""
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    first, _ = make_core(tmp_path / "first")
    second, _ = make_core(tmp_path / "second")
    try:
        for core, ids in ((first, ["PX-1", "PX-2"]), (second, ["PX-1"])):
            service = WriterService(core.ingestor, metrics=core.metrics)
            try:
                stored = service.submit([Incoming(event(i), "test") for i in ids])
                assert all(r.stored for r in stored.result(60))
            finally:
                service.stop(60)
        first.flusher.flush(force=True)
        name, written = "accrochage_events_total", "accrochage_batch_writes_total"
        assert counter(scrape(first.metrics), name, "created") == 2
        assert counter(scrape(second.metrics), name, "created") == 1
        assert counter(scrape(first.metrics), written, "written") == 1
        assert counter(scrape(second.metrics), written, "written") == 0
    finally:
        first.close()
        second.close()


def test_a_service_says_its_batching_tick(tmp_path: Path) -> None:
    """AccrochageFlushStalled allows for it: with a tick of half an hour, a healthy batch cut
    ends every 30 minutes, and a rule of a fixed 15 minutes fired between two of them."""
    from accrochage.runtimes.embedded import scheduler_for

    core, _ = make_core(tmp_path, batching={"tick": "30m"})
    try:
        scheduler_for(core)
        assert total(scrape(core.metrics), "accrochage_batching_tick_seconds") == 1800
    finally:
        core.close()


async def test_the_kafka_lag_is_not_shown_while_the_worker_holds_no_partition(
    tmp_path: Path,
) -> None:
    """Its partitions taken away (a rebalance to another member), the worker kept its last
    figure for ever: AccrochageKafkaUnreachable, which says it fires when the worker holds
    none of the topic's partitions, stayed quiet on a worker that reads nothing."""
    from accrochage.runtimes.kafka.lag import lag_job

    async def highwaters() -> object:
        return {LAG_TP: 5}

    app = lag_app(highwaters)
    core, _ = make_core(tmp_path)
    try:
        job = lag_job(app, core.store, "t", core.metrics)
        await job.run()  # type: ignore[misc]
        assert total(scrape(core.metrics), "accrochage_kafka_lag_messages", topic="t") == 5
        app.consumer.assignment = lambda: set()
        await job.run()  # type: ignore[misc]
        assert scrape(core.metrics)["accrochage_kafka_lag_messages"] == []
    finally:
        core.close()
