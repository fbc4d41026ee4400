"""`accrochage run`: no broker. HTTP ingestion (its events stored by a writer process of its
own, `api/writer_link.py`), the scheduler's jobs (the batch cut), the query API."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Sequence
from functools import partial
from pathlib import Path

from aiohttp import web

from accrochage import __version__
from accrochage.api.connections import ConnectionLimits, fitted
from accrochage.api.context import ApiContext
from accrochage.api.server import build_app
from accrochage.api.writer_link import ProcessLink
from accrochage.api.writing import EventWriter, InlineDecoder, ThreadWriter
from accrochage.app import Core, refdata_warnings, reference_keeper
from accrochage.app_writers import build_event_writer
from accrochage.models.reference import Reference
from accrochage.runtimes.config_watch import config_job
from accrochage.runtimes.serving import (
    EXIT_WRITER_ENDED,
    WRITER_ENDED,
    WRITER_LINK,
    bound_socket,
    serve,
)
from accrochage.runtimes.watching import watching_jobs
from accrochage.sinks.profiles import profile_for
from accrochage.streams.receivers import Receiver
from accrochage.streams.reference import refdata_job
from accrochage.streams.revalidate import dates_job
from accrochage.streams.scheduler import Job, Scheduler, batch_cut_job
from accrochage.streams.unusable import forget_job
from accrochage.streams.writer import WriterService

log = logging.getLogger("accrochage.service")


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
        access_log=api.access_log,
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


def scheduler_for(
    core: Core, extra: Sequence[Receiver] = (), config: Path | None = None
) -> Scheduler:
    """The delivery dates come, the batch cut, the dismissed input forgotten, the watch job
    (metrics, alert rules), the alert delivery; and a look at the configuration file the
    service was started with (`config`), edited or broken since."""
    tick = core.settings.batching.tick.total_seconds()
    core.metrics.batching_tick(tick)
    return Scheduler(
        [
            dates_job(core.revalidator, core.clock, tick),
            batch_cut_job(core.flusher, tick),
            forget_job(core.store, core.clock, core.settings.state.forget_dismissed_after, tick),
            *watching_jobs(core, extra),
            *refdata_jobs(core),
            *([config_job(core.settings, config, core.metrics)] if config is not None else []),
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
    core: Core, *, timer: bool = True, separate_writer: bool = False, config: Path | None = None
) -> web.Application:
    """The embedded service's app; `timer=False` leaves the scheduler's jobs out (tests);
    `config`: the configuration file its settings were read from, watched for changes.

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
    scheduler = scheduler_for(core, config=config) if timer else Scheduler()
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


def run_service(
    core: Core,
    *,
    separate_writer: bool = True,
    sock: socket.socket | None = None,
    config: Path | None = None,
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
        app = build_service(core, separate_writer=separate_writer, config=config)
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
