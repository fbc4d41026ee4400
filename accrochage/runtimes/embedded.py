"""`accrochage run`: no broker. HTTP ingestion (its events stored by a writer process of its
own, `api/writer_link.py`), the scheduler's jobs (the batch cut), the query API."""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from functools import partial

from aiohttp import web

from accrochage import __version__
from accrochage.api.connections import ConnectionLimits, fitted
from accrochage.api.context import ApiContext
from accrochage.api.protocol import ApiRunner
from accrochage.api.server import build_app
from accrochage.api.writer_link import ProcessLink
from accrochage.api.writing import EventWriter, InlineDecoder, ThreadWriter
from accrochage.app import Core, refdata_warnings, reference_keeper
from accrochage.app_writers import build_event_writer
from accrochage.errors import AccrochageError
from accrochage.lifeline import left_ignored
from accrochage.models.reference import Reference
from accrochage.runtimes.watching import watching_jobs
from accrochage.settings import ApiSettings
from accrochage.sinks.profiles import profile_for
from accrochage.streams.receivers import Receiver
from accrochage.streams.reference import refdata_job
from accrochage.streams.revalidate import dates_job
from accrochage.streams.scheduler import Job, Scheduler, batch_cut_job
from accrochage.streams.unusable import forget_job
from accrochage.streams.writer import WriterService

log = logging.getLogger("accrochage.service")
SHUTDOWN_TIMEOUT = 30
_BIND_ERRORS = {errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES}
LISTEN_BACKLOG = 128
"""Connections waiting to be accepted (aiohttp's own default)."""
EXIT_WRITER_ENDED = 70
"""`run`'s exit code when its writer process ended while it served (the OOM killer's choice,
say), as the Kafka worker's: not a stop asked for, so a supervisor restarts it."""
WRITER_ENDED = "the writer process ended"
WRITER_LINK = web.AppKey("writer_link", ProcessLink)
"""The service's writer process link, when it stores through one (`serve` stops with it)."""
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
"""Each stops the service gracefully; SIGHUP's default action (a closed terminal, an
administrator expecting a reload) killed it with nothing said. SIGHUP and SIGINT stay
ignored when the service was started with them ignored (`lifeline.left_ignored`)."""


SWITCH_INTERVAL = 0.001
"""Seconds a thread of the serving process holds the interpreter lock while another waits
for it (CPython's default: 0.005). The event loop shares the lock with the reader threads
(one platform's checks, the operator's reads): with 5 ms, another platform's single event
was acknowledged in 23.5 ms under one platform's flood of checks, with 1 ms in 8.1 ms
(2.6 alone), the flooder's checks 9 % slower (14,713 events/s against 16,107;
`bench.fairness --seconds 10 --repeat 2`); one event a request 2,349 req/s against 2,225
(`bench.http`, one run each)."""


def stop_signals() -> tuple[signal.Signals, ...]:
    """The `STOP_SIGNALS` this process acts on."""
    ignored = left_ignored()
    return tuple(s for s in STOP_SIGNALS if s not in ignored)


def api_context(core: Core, writer: WriterService | EventWriter) -> ApiContext:
    """The API's parts; `writer`: this process's writer service, or a writer process's link."""
    api = core.settings.api
    reference = core.reference.current if core.reference is not None else _no_reference
    return ApiContext(
        store=core.store,
        clock=core.clock,
        registry=core.registry,
        writer=ThreadWriter(writer) if isinstance(writer, WriterService) else writer,
        margin_days=core.settings.batching.margin_days,
        token=api.token,
        ingest_tokens=api.ingest_scopes,
        max_body_bytes=api.max_body_bytes,
        max_events_per_request=api.max_events_per_request,
        body_timeout_seconds=api.body_timeout.total_seconds(),
        reference=core.reference.current if core.reference is not None else None,
        summary_warnings=partial(refdata_warnings, core),
        decoder=core.decoder,
        decode_here=InlineDecoder(
            core.registry, core.clock, reference, profile_for(core.settings.schema_.version)
        ),
        connections=fitted(ConnectionLimits(api.max_connections, api.max_connections_per_client)),
        batch_cut_error=lambda: core.flusher.storage_error,
        metrics=core.metrics,
        keep_free_bytes=core.settings.state.keep_free_bytes,
        event_budgets=api.sender_budgets,
    )


def _no_reference() -> Reference | None:
    return None


def scheduler_for(core: Core, extra: Sequence[Receiver] = ()) -> Scheduler:
    """The delivery dates come, the batch cut, the dismissed input forgotten, the watch job
    (metrics, alert rules), the alert delivery."""
    tick = core.settings.batching.tick.total_seconds()
    return Scheduler(
        [
            dates_job(core.revalidator, core.clock, tick),
            batch_cut_job(core.flusher, tick),
            forget_job(core.store, core.clock, core.settings.state.forget_dismissed_after, tick),
            *watching_jobs(core, extra),
            *refdata_jobs(core),
        ]
    )


def refdata_jobs(core: Core) -> list[Job]:
    """Reload the reference data when its files change or another process loaded it: one
    look at the files' sizes and times and at the stored version per tick."""
    if core.reference is None:
        return []
    keeper = reference_keeper(core.settings, core.store, core.reference, core.clock)
    return [refdata_job(keeper, core.settings.batching.tick.total_seconds())]


def writer_link(core: Core) -> ProcessLink:
    """A writer process storing into `core`'s state (started with the app)."""
    tick = core.settings.batching.tick.total_seconds()
    state, lock_wait = core.settings.paths.state, core.settings.state.lock_wait.total_seconds()
    keep_free = core.settings.state.keep_free_bytes
    return ProcessLink(
        partial(build_event_writer, state, core.registry, core.clock, tick, lock_wait, keep_free),
        metrics=core.metrics,
    )


def build_service(
    core: Core, *, timer: bool = True, separate_writer: bool = False
) -> web.Application:
    """The embedded service's app; `timer=False` leaves the scheduler's jobs out (tests).

    `separate_writer`: events are stored by a writer process (`accrochage run`), not a thread
    of this process: HTTP and decoding on one core, storing on the other.
    """
    link: ProcessLink | None = None
    service: WriterService | None = None
    writer: EventWriter
    if separate_writer:
        writer = link = writer_link(core)
    else:
        service = WriterService(core.ingestor, metrics=core.metrics)
        writer = ThreadWriter(service)
    scheduler = scheduler_for(core) if timer else Scheduler()
    app = build_app(api_context(core, writer))
    if link is not None:
        app[WRITER_LINK] = link

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        if core.decoder is not None:  # not at the first large request, which would wait
            await asyncio.to_thread(core.decoder.start)
        if link is not None:
            await link.start()
        scheduler.start()
        yield
        core.store.stop_waiting()  # a job waiting for another process's writer gives up now
        await scheduler.stop()
        if link is not None:
            await link.close()
        if service is not None:
            await asyncio.to_thread(service.stop)

    app.cleanup_ctx.append(lifecycle)
    return app


def listening_socket(host: str, port: int) -> socket.socket:
    """The service's socket, bound and listening before anything of the service starts: the
    writer process and the batch timer (whose first run cuts and writes what is due) start
    with the app, so a port that cannot be bound must stop `run` before them."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def said_stopping(runner: web.AppRunner, why: str) -> None:
    """What stopped the service (a signal's name, or `WRITER_ENDED`) and what the stop waits
    for: a client holding a request open (a body that never ends) delayed it by
    `SHUTDOWN_TIMEOUT` seconds with nothing in the log."""
    server = runner.server
    opened = len(server.connections) if server is not None else 0
    if opened:
        log.info(
            "stopping (%s): waiting up to %d s for the requests in flight (%d connection(s) open)",
            why,
            SHUTDOWN_TIMEOUT,
            opened,
        )
    else:
        log.info("stopping (%s)", why)


async def serve(app: web.Application, sock: socket.socket, started: Callable[[], None]) -> int:
    """Serve `app` on `sock` until SIGTERM, SIGINT or SIGHUP, or until its writer process
    ended, then stop gracefully, through `ApiRunner`: every HTTP-level error in the JSON
    shape, no header logged. Returns the exit code: 0, or `EXIT_WRITER_ENDED`.

    The signals only set an event: the service then returns through its own cleanup (in-flight
    requests, the writer, the timer). aiohttp's own handlers raise `GracefulExit` inside the
    loop instead, and `asyncio.run` then closed the loop under a cleanup still running ("Task
    was destroyed but it is pending!"). A signal during the cleanup changes nothing."""
    switching = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    heard: list[str] = []

    def stop_on(signum: signal.Signals) -> None:
        heard.append(signum.name)
        stop.set()

    def writer_ended() -> None:
        heard.append(WRITER_ENDED)
        stop.set()

    signals = stop_signals()
    for signum in signals:
        loop.add_signal_handler(signum, stop_on, signum)
    link = app.get(WRITER_LINK)
    if link is not None:
        link.on_dead = writer_ended
    runner = ApiRunner(app, handle_signals=False, shutdown_timeout=SHUTDOWN_TIMEOUT)
    try:
        await runner.setup()
        try:
            await web.SockSite(runner, sock).start()
            started()
            await stop.wait()
            said_stopping(runner, heard[0])
        finally:
            await runner.cleanup()
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
        sys.setswitchinterval(switching)
    return EXIT_WRITER_ENDED if heard[0] == WRITER_ENDED else 0


def bound_socket(api: ApiSettings) -> socket.socket:
    """`listening_socket` for `api.bind`; a port that cannot be bound is one `AccrochageError`
    naming `api.bind`, not a traceback. `run` binds it before it opens the state: a port in
    use stops it before it migrates the state or records anything."""
    try:
        return listening_socket(api.host, api.port)
    except OSError as exc:
        if exc.errno not in _BIND_ERRORS:
            raise
        raise AccrochageError(
            f"cannot listen on {api.bind} (api.bind): {exc.strerror or exc}; stop the process "
            "that uses this port or choose another one"
        ) from None


def run_service(
    core: Core, *, separate_writer: bool = True, sock: socket.socket | None = None
) -> int:
    """Serve until SIGTERM or SIGINT; in-flight requests and queued events finish first.

    "started" is logged once the port is bound (`sock`, bound already, or `api.bind`).
    Returns the exit code: `EXIT_WRITER_ENDED` when the writer process ended, else 0.
    """
    api = core.settings.api
    outbox = core.settings.paths.outbox

    def started() -> None:
        log.info(
            "accrochage %s service started on http://%s (state %s, outbox %s)",
            __version__,
            api.bind,
            core.settings.paths.state,
            outbox,
        )

    listening = sock if sock is not None else bound_socket(api)
    code = 0
    try:
        app = build_service(core, separate_writer=separate_writer)
        code = asyncio.run(serve(app, listening, started))
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        listening.close()
    if code == EXIT_WRITER_ENDED:
        log.critical(
            "accrochage service stopped (exit %d): %s; the lines before say why; a "
            "supervisor (systemd's Restart=on-failure) starts it again",
            code,
            WRITER_ENDED,
        )
    else:
        log.info("accrochage service stopped")
    return code
