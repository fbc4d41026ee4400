"""Alerts (CONTRACT §10) to real HTTP receivers on free loopback ports, driven by calling the
scheduler's jobs directly with a `FixedClock`: firing within one tick, the repeat, the
resolution, a receiver that fails then recovers, a restart between firing and resolution,
an Alertmanager's API, and `accrochage alerts`."""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner
from dateutil.relativedelta import relativedelta
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from accrochage.app import Core
from accrochage.cli import main
from accrochage.models.deadline import FixedClock, SystemClock, paris_today
from accrochage.runtimes.watching import watch_for, watching_jobs
from accrochage.streams.receivers import Alertmanager, Deliverer, Receiver, Topic, Webhook
from accrochage.streams.watch import watch_job
from tests.test_tracker import NOW, event, ingest, make_core

REPEAT = timedelta(hours=6)
WEBHOOK_KEYS = {
    "version",
    "groupKey",
    "truncatedAlerts",
    "status",
    "receiver",
    "groupLabels",
    "commonLabels",
    "commonAnnotations",
    "externalURL",
    "alerts",
}
ALERT_KEYS = {
    "status",
    "labels",
    "annotations",
    "startsAt",
    "endsAt",
    "generatorURL",
    "fingerprint",
}


class Sink:
    """What a receiver got: each POST's path and JSON body; `failing` answers 500."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, Any]] = []
        self.failing = 0
        self.lock = threading.Lock()

    def bodies(self) -> list[Any]:
        with self.lock:
            return [body for _, body in self.posts]


@contextmanager
def receiver() -> Iterator[tuple[str, Sink]]:
    sink = Sink()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length))
            with sink.lock:
                fail = sink.failing > 0
                if fail:
                    sink.failing -= 1
                else:
                    sink.posts.append((self.path, body))
            self.send_response(500 if fail else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    with serving(Handler) as url:
        yield url, sink


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """An HTTP server of `handler` on 127.0.0.1, in a thread: its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def tick(core: Core, receivers: list[Receiver]) -> None:
    """One tick of the two jobs, as the scheduler runs them."""
    watch_for(core).run()
    Deliverer(core.store, core.clock, receivers).run()


def accept_all(core: Core) -> None:
    conn = sqlite3.connect(core.settings.paths.state)
    try:
        conn.execute("UPDATE records SET status = 'accepted', outstanding = 0")
        conn.commit()
    finally:
        conn.close()


def at_risk(core: Core) -> None:
    # Delivered 2026-09-10: due 2026-12-10, within the 14-day margin on NOW (2026-12-01).
    ingest(core, event("PX-1", delivered_on="2026-09-10"), event("PX-2", delivered_on="2026-09-11"))


def test_firing_repeat_and_resolution_reach_a_webhook(tmp_path: Path) -> None:
    core, clock = make_core(tmp_path)
    with receiver() as (url, sink):
        hook: list[Receiver] = [Webhook(url + "/hook", REPEAT)]
        try:
            tick(core, hook)
            assert sink.bodies() == []  # nothing at risk, nothing sent
            at_risk(core)
            tick(core, hook)
            (firing,) = sink.bodies()
            assert set(firing) == WEBHOOK_KEYS and firing["version"] == "4"
            assert firing["status"] == "firing"
            (alert,) = firing["alerts"]
            assert set(alert) == ALERT_KEYS
            assert alert["labels"] == {
                "alertname": "AccrochageRecordsAtRisk",
                "certifier": "pix",
                "severity": "warning",
            }
            assert firing["commonLabels"] == alert["labels"]
            assert firing["groupLabels"] == {
                "alertname": "AccrochageRecordsAtRisk",
                "certifier": "pix",
            }
            assert alert["annotations"]["summary"].startswith("2 ")
            assert "PX-1" not in json.dumps(firing)  # counts, never a record id or a person

            clock.advance(REPEAT - timedelta(minutes=1))
            tick(core, hook)
            assert len(sink.bodies()) == 1  # not yet due again
            clock.advance(timedelta(minutes=1))
            tick(core, hook)
            repeat = sink.bodies()[1]
            assert repeat["status"] == "firing"
            assert repeat["alerts"][0]["fingerprint"] == alert["fingerprint"]
            assert repeat["alerts"][0]["startsAt"] == alert["startsAt"]

            accept_all(core)
            tick(core, hook)
            resolved = sink.bodies()[2]
            assert resolved["status"] == "resolved"
            assert resolved["alerts"][0]["fingerprint"] == alert["fingerprint"]
            assert resolved["alerts"][0]["endsAt"] != "0001-01-01T00:00:00Z"
            clock.advance(REPEAT * 2)
            tick(core, hook)
            assert len(sink.bodies()) == 3  # a resolved alert is sent once
        finally:
            core.close()


def test_overdue_and_unknown_certifier_are_critical_and_labelled_question_mark(
    tmp_path: Path,
) -> None:
    core, _ = make_core(tmp_path)
    with receiver() as (url, sink):
        try:
            ingest(core, event("OLD-1", delivered_on="2026-08-01"))
            conn = sqlite3.connect(core.settings.paths.state)
            conn.execute("UPDATE records SET certifier = 'gone'")
            conn.commit()
            conn.close()
            tick(core, [Webhook(url, REPEAT)])
        finally:
            core.close()
    labels = sorted(
        (b["alerts"][0]["labels"]["alertname"], b["alerts"][0]["labels"]["severity"])
        for b in sink.bodies()
    )
    assert labels == [
        ("AccrochageRecordsAtRisk", "warning"),
        ("AccrochageRecordsOverdue", "critical"),
    ]
    assert {b["alerts"][0]["labels"]["certifier"] for b in sink.bodies()} == {"?"}


def test_a_record_whose_delivery_date_cannot_be_read_fires_the_at_risk_alert(
    tmp_path: Path,
) -> None:
    """Its deadline could be any day: the operator hears of it at once, and `summary` says
    why it counts; a correction that gives it a date far enough resolves the alert."""
    core, _ = make_core(tmp_path)
    unreadable = event("UD-1", delivered_on="2026-11-20")
    unreadable["delivered_on"] = "20/11/2026"
    with receiver() as (url, sink):
        hook: list[Receiver] = [Webhook(url, REPEAT)]
        try:
            ingest(core, unreadable)
            tick(core, hook)
            text = CliRunner().invoke(
                main,
                ["--config", str(tmp_path / "accrochage.toml"), "summary", "--as-of", "2026-12-01"],
            )
            readable = dict(unreadable, event_id=str(uuid.uuid4()), delivered_on="2026-11-20")
            ingest(core, readable)
            tick(core, hook)
        finally:
            core.close()
    firing, resolved = sink.bodies()
    assert firing["status"] == "firing" and resolved["status"] == "resolved"
    assert firing["alerts"][0]["labels"]["alertname"] == "AccrochageRecordsAtRisk"
    assert "cannot be read" in firing["alerts"][0]["annotations"]["summary"]
    assert text.exit_code == 0, text.output
    assert "1 at risk" in text.output
    assert "1 whose delivery date cannot be read" in text.output
    assert "accrochage outstanding --deadline-unknown" in text.output


def test_a_receiver_that_fails_gets_the_alert_once_it_recovers(tmp_path: Path) -> None:
    core, clock = make_core(tmp_path)
    with receiver() as (url, sink):
        try:
            at_risk(core)
            sink.failing = 2
            watch_for(core).run()
            deliverer = Deliverer(core.store, clock, [Webhook(url, REPEAT)])
            deliverer.run()  # 500
            assert sink.bodies() == []
            deliverer.run()  # backing off: not even tried
            assert sink.failing == 1
            clock.advance(timedelta(seconds=5))
            deliverer.run()  # 500 again
            clock.advance(timedelta(seconds=10))
            deliverer.run()
            assert [b["status"] for b in sink.bodies()] == ["firing"]
            clock.advance(timedelta(minutes=10))
            deliverer.run()
            assert len(sink.bodies()) == 1  # delivered: not repeated before alerts.repeat
        finally:
            core.close()


def test_a_restart_neither_repeats_a_firing_nor_loses_a_resolution(tmp_path: Path) -> None:
    clock = FixedClock(NOW)
    core, _ = make_core(tmp_path, clock)
    with receiver() as (url, sink):
        hook: list[Receiver] = [Webhook(url, REPEAT)]
        try:
            at_risk(core)
            tick(core, hook)
        finally:
            core.close()
        assert [b["status"] for b in sink.bodies()] == ["firing"]

        core, _ = make_core(tmp_path, clock)  # restart
        try:
            tick(core, hook)
            assert len(sink.bodies()) == 1  # no duplicate firing
            accept_all(core)
            watch_for(core).run()  # resolved in the store; the process dies before sending
        finally:
            core.close()

        core, _ = make_core(tmp_path, clock)  # restart
        try:
            Deliverer(core.store, clock, hook).run()
            assert [b["status"] for b in sink.bodies()] == ["firing", "resolved"]
        finally:
            core.close()

        core, _ = make_core(tmp_path, clock)  # restart again: the resolution is not re-sent
        try:
            clock.advance(REPEAT)
            tick(core, hook)
            assert len(sink.bodies()) == 2
        finally:
            core.close()


def test_a_restart_sends_nothing_before_the_rules_saw_the_state_as_it_is(tmp_path: Path) -> None:
    """Settled while the service was down, after the repeat: the delivery job, first to run
    at the start, sent the stored "firing" again (a false page, resolved a second later)."""
    clock = FixedClock(NOW)
    core, _ = make_core(tmp_path, clock)
    with receiver() as (url, sink):
        hook: list[Receiver] = [Webhook(url, REPEAT)]
        try:
            at_risk(core)
            tick(core, hook)
            accept_all(core)  # settled while the service is down
        finally:
            core.close()
        assert [b["status"] for b in sink.bodies()] == ["firing"]

        clock.advance(REPEAT + timedelta(hours=1))
        core, _ = make_core(tmp_path, clock)  # restart, the repeat due
        try:
            jobs = {job.name: job.run for job in watching_jobs(core, hook)}
            jobs["alerts"]()
            assert [b["status"] for b in sink.bodies()] == ["firing"], "sent before the rules ran"
            jobs["watch"]()
            jobs["alerts"]()
            assert [b["status"] for b in sink.bodies()] == ["firing", "resolved"]
        finally:
            core.close()


def test_each_receivers_notices_are_counted_sent_or_failed(tmp_path: Path) -> None:
    """A receiver refusing every notice (a revoked Slack hook, an Alertmanager moved) was a
    log line only: no deadline reached anyone, and no rule could say so (the monitoring
    review). Each notice now counts in `accrochage_alert_deliveries_total`, by receiver."""
    core, clock = make_core(tmp_path)
    with receiver() as (url, sink):
        hook = Webhook(url, REPEAT)
        try:
            at_risk(core)
            jobs = {job.name: job.run for job in watching_jobs(core, [hook])}
            counts = delivery_counts(core)
            assert counts == {(hook.name, "sent"): 0, (hook.name, "failed"): 0}, "served from 0"
            sink.failing = 2
            jobs["watch"]()
            jobs["alerts"]()
            clock.advance(timedelta(minutes=1))
            jobs["alerts"]()
            assert delivery_counts(core)[hook.name, "failed"] == 2
            clock.advance(timedelta(minutes=1))
            jobs["alerts"]()
            assert delivery_counts(core) == {(hook.name, "sent"): 1, (hook.name, "failed"): 2}
            assert [b["status"] for b in sink.bodies()] == ["firing"]
            assert url not in generate_latest(core.metrics.registry).decode()
        finally:
            core.close()


def delivery_counts(core: Core) -> dict[tuple[str, str], float]:
    return {
        (sample.labels["receiver"], sample.labels["outcome"]): sample.value
        for family in text_string_to_metric_families(
            generate_latest(core.metrics.registry).decode()
        )
        for sample in family.samples
        if sample.name == "accrochage_alert_deliveries_total"
    }


def test_alertmanager_gets_the_alert_every_minute_while_firing_then_resolved(
    tmp_path: Path,
) -> None:
    core, clock = make_core(tmp_path)
    with receiver() as (url, sink):
        manager: list[Receiver] = [Alertmanager(url)]
        try:
            at_risk(core)
            tick(core, manager)
            clock.advance(timedelta(seconds=30))
            tick(core, manager)
            clock.advance(timedelta(seconds=30))
            tick(core, manager)
            accept_all(core)
            tick(core, manager)
        finally:
            core.close()
    assert [path for path, _ in sink.posts] == ["/api/v2/alerts"] * 3
    bodies = sink.bodies()
    first_end = datetime.fromisoformat(bodies[0][0]["endsAt"])
    assert first_end > NOW  # a few minutes ahead while firing
    assert datetime.fromisoformat(bodies[1][0]["endsAt"]) > first_end
    resolved_end = datetime.fromisoformat(bodies[2][0]["endsAt"])
    assert resolved_end == NOW + timedelta(minutes=1)
    assert bodies[0][0]["labels"]["alertname"] == "AccrochageRecordsAtRisk"


def test_the_alerts_command_prints_what_fires(tmp_path: Path) -> None:
    core, _ = make_core(tmp_path)
    try:
        config = tmp_path / "accrochage.toml"
        runner = CliRunner()
        quiet = runner.invoke(main, ["--config", str(config), "alerts"])
        assert quiet.exit_code == 0, quiet.output
        assert "no alert firing" in quiet.output
        # The command runs on the system clock: a record due in five days from today.
        today = paris_today(SystemClock())
        delivered = today - relativedelta(months=3) + timedelta(days=5)
        ingest(core, event("PX-1", delivered_on=delivered.isoformat()))
        shown = runner.invoke(main, ["--config", str(config), "alerts", "--format", "json"])
    finally:
        core.close()
    assert shown.exit_code == 0, shown.output
    (alert,) = json.loads(shown.output)
    assert alert["labels"]["alertname"] == "AccrochageRecordsAtRisk"
    assert alert["status"] == "firing"


def test_the_kafka_topic_gets_the_alert_object_keyed_by_its_fingerprint(tmp_path: Path) -> None:
    core, _ = make_core(tmp_path)
    produced: list[tuple[str, bytes, bytes]] = []
    try:
        at_risk(core)
        tick(core, [Topic("t.alerts", lambda *m: produced.append(m), REPEAT)])
    finally:
        core.close()
    ((topic, key, value),) = produced
    alert = json.loads(value)
    assert topic == "t.alerts" and set(alert) == ALERT_KEYS
    assert key.decode() == alert["fingerprint"] and alert["status"] == "firing"


def test_the_watch_job_runs_every_tick_but_spaces_itself_when_slow(tmp_path: Path) -> None:
    core, _ = make_core(tmp_path)
    try:
        watch = watch_for(core)
        job = watch_job(watch, 5.0)
        job.run()
        assert watch.last_seconds > 0, "the run was timed"
        watch.last_seconds = 0.001  # as over a small state (set: a loaded machine varies)
        assert callable(job.every) and job.every() == 5.0  # every tick
        watch.last_seconds = 0.2  # as over a million records
        assert job.every() == 20.0  # at most 1 % of a core
    finally:
        core.close()


def test_the_summary_names_the_listing_of_overdue_records(tmp_path: Path) -> None:
    """Its next deadlines are those still ahead: an overdue record was counted, never named,
    and nothing said where to see it."""
    core, _ = make_core(tmp_path)
    try:
        ingest(core, event("LATE-1", delivered_on="2026-08-01"))
    finally:
        core.close()
    config = str(tmp_path / "accrochage.toml")
    text = CliRunner().invoke(main, ["--config", config, "summary", "--as-of", "2026-12-01"])
    assert text.exit_code == 0, text.output
    assert "1 overdue (accrochage outstanding --overdue)" in text.output
    # Where the deadlines to come are listed, the overdue ones are named first (an operator
    # reading the list alone missed the most urgent record).
    listed = text.output[text.output.index("next deadlines") :]
    assert listed.splitlines()[1].strip() == (
        "1 overdue already, the most urgent: accrochage outstanding --overdue"
    )
    calm = CliRunner().invoke(main, ["--config", config, "summary", "--as-of", "2026-08-02"])
    assert "0 overdue\n" in calm.output


def test_the_example_alertmanager_never_mutes_an_at_risk_warning() -> None:
    """The example's inhibit rule muted a certifier's at-risk warnings while any of its records
    was overdue: one record stuck for weeks hid every deadline still to be met."""
    example = Path(__file__).parents[1] / "monitoring" / "alertmanager.yml"
    config = yaml.safe_load(example.read_text(encoding="utf-8"))
    assert config["route"]["receiver"], "the example is read"
    muted = [
        rule
        for rule in config.get("inhibit_rules") or []
        if any("AccrochageRecordsAtRisk" in m for m in rule.get("target_matchers", []))
    ]
    assert muted == []
