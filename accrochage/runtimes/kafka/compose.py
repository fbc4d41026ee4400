"""`accrochage worker`: the faust app, the writer (a process of its own by default), the
scheduler's jobs (batch cut, rejected-topic publishing) and the HTTP API beside it."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from collections.abc import Coroutine
from functools import partial
from pathlib import Path
from typing import Any

import faust
from aiohttp import web

from accrochage import __version__
from accrochage.api.protocol import ApiRunner
from accrochage.api.server import build_app
from accrochage.app import Core, build_core, log_source, store_location
from accrochage.app_writers import build_writer_parts
from accrochage.lifeline import left_ignored
from accrochage.runtimes.embedded import api_context, scheduler_for
from accrochage.runtimes.kafka.admin import ensure_topics
from accrochage.runtimes.kafka.lag import AlertProducer, lag_job
from accrochage.runtimes.kafka.pending import writer_died
from accrochage.runtimes.kafka.worker import WorkerApp, build_worker, dead_letter_job
from accrochage.runtimes.serving import bound_socket, stop_signals
from accrochage.settings import Settings, config_path
from accrochage.state.base import ServiceGuard, Store
from accrochage.streams.receivers import Topic
from accrochage.streams.writer import WriterService
from accrochage.streams.writer_process import GroupWriter, InProcessWriter, ProcessWriter

log = logging.getLogger("accrochage.kafka")


def compose_worker(
    core: Core,
    writer: GroupWriter,
    sock: socket.socket,
    *,
    reread_beyond_end: bool = False,
    config: Path | None = None,
) -> WorkerApp:
    """The faust app with the scheduler's jobs and the HTTP API attached to its life;
    `config`: the configuration file its settings were read from, watched for changes."""
    settings = core.settings
    app = build_worker(
        settings.kafka,
        settings.paths.state.parent / "faust",
        core.store.offsets,
        writer,
        rewind=partial(rewind, core.store) if reread_beyond_end else None,
        marks=core.store.log_marks,
    )
    producer = AlertProducer(app)
    alerts = settings.alerts
    topic = [Topic(alerts.topic, producer, alerts.repeat)] if alerts.topic else []
    scheduler = scheduler_for(core, topic, config)
    scheduler.add(dead_letter_job(app, core.store))
    scheduler.add(lag_job(app, core.store, settings.kafka.topic, core.metrics))
    api_writer = WriterService(core.ingestor, metrics=core.metrics)

    @app.task  # type: ignore[untyped-decorator]
    async def start_jobs() -> None:
        producer.bind()
        scheduler.start()

    @app.task  # type: ignore[untyped-decorator]
    async def serve_api() -> None:
        await _start_api(app, core, api_writer, sock)

    async def stop_jobs(*_: Any, **__: Any) -> None:
        core.store.stop_waiting()  # a job waiting for another process's writer gives up now
        await scheduler.stop()
        await asyncio.to_thread(api_writer.stop)

    app.on_before_shutdown.connect(stop_jobs)
    return app


async def _start_api(
    app: WorkerApp, core: Core, writer: WriterService, sock: socket.socket
) -> None:
    runner = ApiRunner(build_app(api_context(core, writer)), handle_signals=False)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    log.info("query API on http://%s", core.settings.api.bind)

    async def stop(*_: Any, **__: Any) -> None:
        await runner.cleanup()

    app.on_before_shutdown.connect(stop)


def rewind(store: Store, topic: str, partition: int, offset: int) -> None:
    """Lower a partition's stored offset to `offset` (`--reread-beyond-end`)."""
    with store.transaction() as tx:
        tx.save_offsets(topic, {partition: offset})


def run_worker(
    settings: Settings,
    config: Path | None,
    *,
    log_level: str,
    separate_writer: bool,
    reread_beyond_end: bool = False,
) -> None:
    """Wait for the state lock (standby), create the topics, run until stopped."""
    lock = store_location(settings).service_guard()
    if not _waited_as_standby(lock):
        return
    try:
        # Bound before anything starts, as `run` does: a worker whose port another service
        # holds consumed on without /metrics or /health (a scrape got the other's numbers).
        sock = bound_socket(settings.api)
    except BaseException:
        lock.release()
        raise
    try:
        _run_bound(
            settings,
            config,
            sock,
            log_level=log_level,
            separate_writer=separate_writer,
            reread_beyond_end=reread_beyond_end,
        )
    finally:
        sock.close()
        lock.release()


class _StandbyStopped(BaseException):
    """A stop signal came while the worker waited as a standby. Not an `Exception`: raised
    wherever the standby is when the signal comes, logging a line say, whose handler would
    catch an `Exception` ("--- Logging error ---") and leave the standby waiting on."""


def _waited_as_standby(lock: ServiceGuard) -> bool:
    """Whether the worker holds the state's lock: False when a stop signal came first (those
    the worker stops on and was not started with ignored). Ctrl-C used to print "Aborted!"
    (exit 1), SIGTERM and SIGHUP to end it with nothing said."""
    came: list[str] = []
    waiting = True

    def stop(signum: int, _: object) -> None:
        nonlocal waiting
        came.append(signal.Signals(signum).name)
        if waiting:
            # Raised once: a second signal (logind's SIGTERM then SIGHUP, a Ctrl-C and a
            # SIGTERM) ran this handler again as the first one's exception was handled or
            # the handlers restored, and escaped: a traceback, exit 1.
            waiting = False
            raise _StandbyStopped

    previous = {s: signal.signal(s, stop) for s in stop_signals()}
    try:
        lock.wait()
        waiting = False
    except _StandbyStopped:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not came:
        return True
    lock.release()  # taken just as the signal came, maybe
    log.info("stopping (%s) while waiting as a standby", came[0])
    return False


class StoppingWorker(faust.Worker):
    """faust's worker, stopped gracefully by SIGHUP as by SIGTERM: SIGHUP's default action (a
    closed terminal, an administrator expecting a reload) killed it with nothing said. SIGHUP
    and SIGINT stay ignored when the worker was started with them ignored
    (`lifeline.left_ignored`): faust's worker stopped on SIGINT whatever its starter said."""

    def _install_signal_handlers_unix(self) -> None:
        ignored = left_ignored()
        super()._install_signal_handlers_unix()
        if signal.SIGINT in ignored:
            self.loop.remove_signal_handler(signal.SIGINT)  # which sets Python's own handler
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        if signal.SIGHUP not in ignored:
            self.loop.add_signal_handler(signal.SIGHUP, self._schedule_shutdown, signal.SIGHUP)

    def _schedule_shutdown(self, signal: signal.Signals) -> None:
        """The first stop signal named as `run` names it (faust says "Signal received: 15")."""
        if not self._signal_stop_time:
            log.info("stopping (%s)", signal.name)
        super()._schedule_shutdown(signal)


async def _unless_stopped(waited: Coroutine[Any, Any, None]) -> str | None:
    """`waited` (the topics' creation, which waits up to a minute for a broker still
    starting), or the name of the stop signal that came first. Its signal handlers come
    after it: Ctrl-C printed "Aborted!" (exit 1), SIGTERM and SIGHUP ended the worker with
    nothing said, as they did a standby's."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(waited)
    came: list[str] = []

    def stop(sig: signal.Signals) -> None:
        if not came:
            came.append(sig.name)
            task.cancel()

    signals = stop_signals()
    for sig in signals:
        loop.add_signal_handler(sig, stop, sig)
    try:
        await task
    except asyncio.CancelledError:
        if not came:
            raise
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
    return came[0] if came else None


def _run_bound(
    settings: Settings,
    config: Path | None,
    sock: socket.socket,
    *,
    log_level: str,
    separate_writer: bool,
    reread_beyond_end: bool,
) -> None:
    kafka = settings.kafka
    stopped = asyncio.run(
        _unless_stopped(
            ensure_topics(
                kafka.bootstrap,
                {kafka.topic: kafka.partitions, kafka.rejected_topic: kafka.partitions}
                | ({settings.alerts.topic: 1} if settings.alerts.topic else {}),
                replication=kafka.replication,
            )
        )
    )
    if stopped is not None:
        log.info("stopping (%s) while waiting for the Kafka broker", stopped)
        return
    core = build_core(settings, service=True)
    log.info(
        "accrochage %s worker: topic %s, state %s, outbox %s",
        __version__,
        kafka.topic,
        settings.paths.state,
        settings.paths.outbox,
    )
    writer: GroupWriter
    if separate_writer:
        # Raw events to the writer process, which decodes them in its own pool.
        writer = ProcessWriter(
            partial(build_writer_parts, config, decode=True),
            daemon=False,
            on_death=writer_died,
            metrics=core.metrics,
        )
        log.info("the writer process (pid %s) validates and stores the events", writer.pid)
    else:
        service = WriterService(core.ingestor, metrics=core.metrics)
        writer = InProcessWriter(service, log_source(settings))
    code: int | str | None = None
    try:  # from here on, the writer process is ended whatever fails: left, it hung the exit
        app = compose_worker(
            core, writer, sock, reread_beyond_end=reread_beyond_end, config=config_path(config)
        )
        runner = StoppingWorker(
            app, loglevel=log_level, quiet=True, redirect_stdouts=False, override_logging=False
        )
        # Its terminal spinner writes a backspace and a cursor code to stdout at the end of
        # the start, tty or not: a log line (a JSON one too) came out mangled.
        runner.spinner = None
        runner.execute_from_commandline()
    except SystemExit as exc:
        code = exc.code
        raise
    finally:
        writer.abandon_waits()  # a stop never waits for a command that holds the state
        writer.shutdown(wait=True)
        core.close()
        # faust's last line is "Closing event loop", before the writer's end: `run`'s last
        # words, said once everything is closed.
        log.info("accrochage worker stopped%s", "" if not code else f" (exit {code})")
