"""Alert receivers that misbehave: one trickling its answer, one redirecting, one behind Basic
authentication; the delivery job's stop and its pace, and the watch job's. Each held the
alerts back, lost them, or leaked a secret before (a review's findings)."""

from __future__ import annotations

import asyncio
import base64
import http.client
import logging
import math
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from accrochage.models.deadline import PARIS, FixedClock
from accrochage.runtimes.watching import watch_for
from accrochage.streams import posting
from accrochage.streams.posting import ReceiverError, post_json
from accrochage.streams.receivers import BUDGET_PER_RUN, Deliverer, Webhook, ahead, delivery_job
from accrochage.streams.scheduler import Job, Scheduler
from accrochage.streams.watch import MAX_WAIT, watch_wait
from tests.test_alerts import at_risk, receiver, serving
from tests.test_tracker import event, ingest, make_core

REPEAT = timedelta(hours=6)


@contextmanager
def trickling(every: float | None = 1.0) -> Iterator[str]:
    """A receiver that answers a status line, then one header line every `every` seconds,
    never ending; with `every` None, one that reads the request and never answers a byte."""
    server = socket.create_server(("127.0.0.1", 0))
    done = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not done.is_set():
            try:
                client, _ = server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=trickle, args=(client,), daemon=True).start()

    def trickle(client: socket.socket) -> None:
        with client:
            try:
                client.recv(65536)
                if every is None:
                    done.wait(30)
                    return
                client.sendall(b"HTTP/1.1 200 OK\r\n")
                while not done.wait(every):
                    client.sendall(b"X-Wait: 1\r\n")
            except OSError:
                return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/hook"
    finally:
        done.set()
        thread.join(10)
        server.close()


@contextmanager
def redirecting() -> Iterator[tuple[str, list[str]]]:
    """A receiver answering a POST with 302 to another path (and 200 to anything there)."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen.append(f"POST {self.path}")
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(302)
            self.send_header("Location", "/landing")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            seen.append(f"GET {self.path}")
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    with serving(Handler) as url:
        yield f"{url}/hook", seen


def test_a_trickling_receiver_holds_back_neither_the_others_nor_itself(tmp_path: Path) -> None:
    """Its answer never completes: the request ends after the timeout, and the next receiver
    gets its alert in the same run (before: the run lasted as long as the trickle)."""
    with trickling() as slow:
        with pytest.raises(ReceiverError, match="no whole answer within 1 s"):
            post_json(slow, {"alert": 1}, timeout=1.0)

        core, clock = make_core(tmp_path)
        with receiver() as (url, sink):
            try:
                at_risk(core)
                watch_for(core).run()
                deliverer = Deliverer(
                    core.store, clock, [Webhook(slow, REPEAT), Webhook(url, REPEAT)]
                )
                assert deliverer.run() == 1
                assert [b["status"] for b in sink.bodies()] == ["firing"]
            finally:
                core.close()


def test_a_read_timing_out_before_the_watchdog_is_a_late_answer_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The socket's own timeout fired before the watchdog's thread on a loaded machine (CI,
    7 December): the exchange failed with a bare `TimeoutError` instead of saying the answer
    was late. The watchdog is held back here so that the socket's timeout always comes first."""

    class Late(posting._Watchdog):
        def __init__(self, connection: http.client.HTTPConnection, seconds: float) -> None:
            super().__init__(connection, seconds + 30)

    monkeypatch.setattr(posting, "_Watchdog", Late)
    with (
        trickling(every=None) as url,
        pytest.raises(ReceiverError, match="no whole answer within 1 s"),
    ):
        post_json(url, {"alert": 1}, timeout=1.0)


def test_a_redirect_is_a_failure_retried_not_an_alert_delivered(tmp_path: Path) -> None:
    """Following it sent a GET without the alert, and the delivery was recorded as made."""
    core, clock = make_core(tmp_path)
    with redirecting() as (url, seen):
        try:
            at_risk(core)
            watch_for(core).run()
            assert Deliverer(core.store, clock, [Webhook(url, REPEAT)]).run() == 0
            assert seen == ["POST /hook"], "the redirect is not followed"
            with core.store.reading() as reader:
                assert reader.alert_deliveries(Webhook(url, REPEAT).name) == []
        finally:
            core.close()
    with pytest.raises(ReceiverError, match="answered HTTP 302"), redirecting() as (url, _):
        post_json(url, {})


def test_a_user_and_password_in_the_url_are_sent_as_basic_auth_never_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """urllib took `user:password@host` for a port: the webhook never worked, and its error,
    quoting the password, was logged at every back-off."""
    got: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.append(self.headers.get("Authorization"))
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(401 if len(got) == 1 else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    core, clock = make_core(tmp_path)
    try:
        with serving(Handler) as base:
            url = base.replace("http://", "http://alerts:S3cret%40T0ken@") + "/hook"
            at_risk(core)
            watch_for(core).run()
            deliverer = Deliverer(core.store, clock, [Webhook(url, REPEAT)])
            with caplog.at_level(logging.WARNING, logger="accrochage.alerts"):
                assert deliverer.run() == 0
            assert "answered HTTP 401" in caplog.text
            # Which receiver, in words the operator can match with the configuration.
            name, host = Webhook(url, REPEAT).name, base.removeprefix("http://")
            assert f"alert receiver {name} (http://{host}) failed" in caplog.text
            assert "/hook" not in caplog.text
            clock.advance(timedelta(minutes=1))
            assert deliverer.run() == 1
            expected = "Basic " + base64.b64encode(b"alerts:S3cret@T0ken").decode()
            assert got == [expected, expected]
            with pytest.raises(OSError):  # nothing listens there
                post_json("http://alerts:S3cret@127.0.0.1:1/hook", {})
            unreachable = Deliverer(
                core.store, clock, [Webhook("http://u:S3cret@127.0.0.1:1/", REPEAT)]
            )
            with caplog.at_level(logging.WARNING, logger="accrochage.alerts"):
                unreachable.run()
            assert "refused" in caplog.text and "S3cret" not in caplog.text
    finally:
        core.close()


async def test_the_scheduler_stops_a_delivery_run_between_two_requests() -> None:
    """A run with many alerts for a slow receiver outlived the service's SIGTERM (its thread
    was waited for): the job's `stop` ends it after the request in progress."""
    started, stopped = threading.Event(), threading.Event()

    def run() -> None:
        started.set()
        stopped.wait(600)

    scheduler = Scheduler([Job("alerts", 60.0, run, stop=stopped.set)])
    scheduler.start()
    assert await asyncio.to_thread(started.wait, 60)
    await asyncio.wait_for(scheduler.stop(), 60)
    assert stopped.is_set()


def test_a_stopped_deliverer_sends_nothing_more(tmp_path: Path) -> None:
    core, clock = make_core(tmp_path)
    with receiver() as (url, sink):
        try:
            at_risk(core)
            watch_for(core).run()
            deliverer = Deliverer(core.store, clock, [Webhook(url, REPEAT)])
            deliverer.stop()
            assert deliverer.run() == 0 and sink.bodies() == []
        finally:
            core.close()


def test_deliveries_run_at_least_every_minute_whatever_the_tick(tmp_path: Path) -> None:
    """An Alertmanager resolves an alert whose `endsAt` (five minutes ahead) passes: with a
    ten-minute tick, every firing alert flapped resolved, then firing again."""
    core, clock = make_core(tmp_path)
    try:
        deliverer = Deliverer(core.store, clock, [])
        assert delivery_job(deliverer, 600.0).every == 60.0
        assert delivery_job(deliverer, 5.0).every == 5.0
    finally:
        core.close()


def test_the_watch_job_is_paced_by_its_reading_alone(tmp_path: Path) -> None:
    """A listener waiting for the write lock (another process's `flush`) counted in the run's
    time: 8 s of waiting put the next run, gauges and alerts 13 minutes away."""
    assert watch_wait(5.0, 0.001) == 5.0
    assert watch_wait(5.0, 0.2) == 20.0
    assert watch_wait(5.0, 8.0) == MAX_WAIT == 60.0
    assert watch_wait(600.0, 0.001) == MAX_WAIT, "at least once a minute, whatever the tick"
    core, _ = make_core(tmp_path)
    elapsed = [0.0]

    def seconds() -> float:
        """Each look at the clock a quarter of a second later; a listener waits 100 s."""
        elapsed[0] += 0.25
        return elapsed[0]

    def waits_for_the_lock(observation: Any, now: Any) -> None:
        elapsed[0] += 100

    try:
        watch = watch_for(core)
        watch.seconds = seconds
        watch.listeners.append(waits_for_the_lock)
        watch.run()
        assert watch.last_seconds == 0.25
    finally:
        core.close()


def test_the_environments_proxy_carries_the_alert(monkeypatch: pytest.MonkeyPatch) -> None:
    """urllib honoured `http_proxy`/`https_proxy`; the bounded posting does too: a plain
    request goes to the proxy with the whole URL, HTTPS through a CONNECT tunnel, each with
    the proxy's credentials."""
    seen: list[tuple[str, str, str | None]] = []

    class Proxy(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen.append(("POST", self.path, self.headers.get("Proxy-Authorization")))
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_CONNECT(self) -> None:
            seen.append(("CONNECT", self.path, self.headers.get("Proxy-Authorization")))
            self.send_response(502)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    for name in ("no_proxy", "NO_PROXY", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    with serving(Proxy) as proxy:
        monkeypatch.setenv("http_proxy", proxy.replace("http://", "http://px:pw@"))
        monkeypatch.setenv("https_proxy", proxy.replace("http://", "http://px:pw@"))
        post_json("http://hooks.invalid/alert?k=1", {"alert": 1})
        with pytest.raises(OSError, match="502"):
            post_json("https://hooks.invalid/alert", {"alert": 1})
    auth = "Basic " + base64.b64encode(b"px:pw").decode()
    assert seen == [
        ("POST", "http://hooks.invalid/alert?k=1", auth),
        ("CONNECT", "hooks.invalid:443", auth),
    ]


def test_a_slow_receiver_keeps_its_rest_for_the_next_run_and_the_others_are_served(
    tmp_path: Path,
) -> None:
    """Receivers are served one after the other: one answering each alert in 4.9 s (under
    the timeout) held every receiver after it for up to eight minutes, past the five an
    Alertmanager keeps a firing alert without news. A receiver's share of a run is bounded;
    time here is what the slow receiver says it took."""
    elapsed = [0.0]

    class Slow:
        name, where, repeat, got = "slow", "slow", REPEAT, 0

        def send(self, state: Any, now: Any) -> None:
            elapsed[0] += 4.9
            self.got += 1

    core, clock = make_core(tmp_path)
    with receiver() as (url, sink):
        try:
            at_risk(core)
            ingest(core, event("SC-1", certifier="school", delivered_on="2026-09-10"))
            ingest(core, event("SC-2", certifier="school", delivered_on="2026-08-01"))
            ingest(core, event("PX-3", delivered_on="2026-08-01"))
            watch_for(core).run()
            slow = Slow()
            deliverer = Deliverer(
                core.store, clock, [slow, Webhook(url, REPEAT)], seconds=lambda: elapsed[0]
            )
            firing = deliverer.run() - slow.got
            assert slow.got == math.ceil(BUDGET_PER_RUN / 4.9), "its share of the run"
            assert firing == len(sink.bodies()) >= 4 > slow.got, "the next receiver served"
            deliverer.run()
            assert slow.got == firing, "the rest at the next run"
        finally:
            core.close()


@pytest.mark.parametrize("port", ["99999", "abc"])
def test_a_receiver_with_a_port_out_of_range_fails_alone_and_is_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, port: str
) -> None:
    """Settings refuse such a URL; a receiver given one all the same failed, and naming its
    host for the warning raised again (ValueError): the run ended before the next receiver."""
    core, clock = make_core(tmp_path)
    try:
        with receiver() as (url, sink):
            at_risk(core)
            watch_for(core).run()
            broken = Webhook(f"http://hooks.example:{port}/XXXXSECRET", REPEAT)
            deliverer = Deliverer(core.store, clock, [broken, Webhook(url, REPEAT)])
            with caplog.at_level(logging.WARNING, logger="accrochage.alerts"):
                assert deliverer.run() == 1
            assert len(sink.posts) == 1, "the next receiver is served"
        assert f"alert receiver {broken.name} (http://hooks.example) failed" in caplog.text
        assert "XXXXSECRET" not in caplog.text
    finally:
        core.close()


def test_a_failed_receiver_is_retried_after_its_back_off_across_the_autumn_change(
    tmp_path: Path,
) -> None:
    """The back-off counts elapsed time: a receiver failing at 02:58 summer time on the night
    the clocks go back was not tried again for an hour (02:58:05 read on Paris's wall clock),
    its alerts held back as long."""
    clock = FixedClock(datetime(2026, 10, 25, 2, 58, tzinfo=PARIS))  # 00:58 UTC
    core, _ = make_core(tmp_path, clock)
    with receiver() as (url, sink):
        try:
            ingest(core, event("DST-1", delivered_on="2026-07-28"))  # due 2026-10-28
            watch_for(core).run()
            sink.failing = 1
            deliverer = Deliverer(core.store, clock, [Webhook(url, REPEAT)])
            assert deliverer.run() == 0  # 500: backing off 5 s
            clock.current = datetime(2026, 10, 25, 2, 5, fold=1, tzinfo=PARIS)  # 01:05 UTC
            assert deliverer.run() == 1
            assert [b["status"] for b in sink.bodies()] == ["firing"]
        finally:
            core.close()


def test_an_alertmanager_s_ends_at_is_five_minutes_of_elapsed_time_across_the_autumn_change() -> (
    None
):
    """02:58 summer time plus five minutes read on the wall clock was 03:03 winter time, 65
    minutes later: an alert of a service that died then stayed up an hour."""
    now = datetime(2026, 10, 25, 2, 58, tzinfo=PARIS)
    later = ahead(now, timedelta(minutes=5))
    assert later.astimezone(UTC) - now.astimezone(UTC) == timedelta(minutes=5)
    assert later.isoformat() == "2026-10-25T02:03:00+01:00"
    summer = datetime(2026, 7, 1, 12, 0, tzinfo=PARIS)
    assert ahead(summer, timedelta(minutes=5)).isoformat() == "2026-07-01T12:05:00+02:00"


def test_a_receiver_down_is_said_once_an_hour_and_said_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Tried every 5 minutes, a receiver down for a day made 288 warnings; and nothing said
    when it took notices again."""
    core, clock = make_core(tmp_path)
    elapsed = [0.0]
    try:
        with receiver() as (url, sink):
            at_risk(core)
            watch_for(core).run()
            sink.failing = 13
            hook = Webhook(url, REPEAT)
            deliverer = Deliverer(core.store, clock, [hook], seconds=lambda: elapsed[0])
            with caplog.at_level(logging.INFO, logger="accrochage.alerts"):
                for _ in range(13):  # an hour of tries, every 5 minutes
                    assert deliverer.run() == 0
                    clock.advance(timedelta(minutes=5))
                    elapsed[0] += 300.0
                assert deliverer.run() == 1
        said = [(r.levelname, r.getMessage()) for r in caplog.records]
        assert [level for level, _ in said] == ["WARNING", "WARNING", "INFO"], said
        assert "retrying in 5s, then at most every 300s" in said[0][1]
        assert "; 12 failures since the last such line" in said[1][1]
        assert said[2][1] == f"alert receiver {hook.name} ({hook.where}) takes notices again"
    finally:
        core.close()
