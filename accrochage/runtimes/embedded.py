"""`accrochage run`: one process, no broker. HTTP ingestion through the writer service, the
scheduler's jobs (the batch cut), the query API."""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from functools import partial

from aiohttp import web

from accrochage.api.protocol import ApiRunner
from accrochage.api.server import ApiContext, build_app
from accrochage.app import Core, refdata_warnings, reference_keeper
from accrochage.errors import AccrochageError
from accrochage.runtimes.watching import watching_jobs
from accrochage.streams.receivers import Receiver
from accrochage.streams.reference import refdata_job
from accrochage.streams.scheduler import Job, Scheduler, batch_cut_job
from accrochage.streams.writer import WriterService

log = logging.getLogger("accrochage.service")
SHUTDOWN_TIMEOUT = 30
_BIND_ERRORS = {errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES}


def api_context(core: Core, writer: WriterService) -> ApiContext:
    api = core.settings.api
    return ApiContext(
        store=core.store,
        clock=core.clock,
        registry=core.registry,
        writer=writer,
        margin_days=core.settings.batching.margin_days,
        token=api.token,
        ingest_tokens=tuple(api.ingest_tokens),
        max_body_bytes=api.max_body_bytes,
        max_events_per_request=api.max_events_per_request,
        reference=core.reference.current if core.reference is not None else None,
        summary_warnings=partial(refdata_warnings, core),
        decoder=core.decoder,
    )


def scheduler_for(core: Core, extra: Sequence[Receiver] = ()) -> Scheduler:
    """The batch cut, the watch job (metrics, alert rules), the alert delivery."""
    tick = core.settings.batching.tick.total_seconds()
    return Scheduler(
        [batch_cut_job(core.flusher, tick), *watching_jobs(core, extra), *refdata_jobs(core)]
    )


def refdata_jobs(core: Core) -> list[Job]:
    """Reload the reference data when its files change or another process loaded it: one
    look at the files' sizes and times and at the stored version per tick."""
    if core.reference is None:
        return []
    keeper = reference_keeper(core.settings, core.store, core.reference, core.clock)
    return [refdata_job(keeper, core.settings.batching.tick.total_seconds())]


def build_service(core: Core, *, timer: bool = True) -> web.Application:
    """The embedded service's app; `timer=False` leaves the scheduler's jobs out (tests)."""
    writer = WriterService(core.ingestor)
    scheduler = scheduler_for(core) if timer else Scheduler()
    app = build_app(api_context(core, writer))

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        scheduler.start()
        yield
        await scheduler.stop()
        await asyncio.to_thread(writer.stop)

    app.cleanup_ctx.append(lifecycle)
    return app


async def serve(app: web.Application, host: str, port: int, started: Callable[[], None]) -> None:
    """Serve `app` until cancelled (SIGTERM and SIGINT end it gracefully, as `web.run_app`
    does), through `ApiRunner`: every HTTP-level error in the JSON shape, no header logged."""
    runner = ApiRunner(app, handle_signals=True, shutdown_timeout=SHUTDOWN_TIMEOUT)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        started()
        while True:
            await asyncio.sleep(3600)
    finally:
        await runner.cleanup()


def run_service(core: Core) -> None:
    """Serve until SIGTERM or SIGINT; in-flight requests and queued events finish first.

    "started" is logged once the port is bound; a port that cannot be bound is one
    `AccrochageError` naming `api.bind`, not a traceback.
    """
    api = core.settings.api
    outbox = core.settings.paths.outbox

    def started() -> None:
        log.info("accrochage service started on http://%s (outbox %s)", api.bind, outbox)

    try:
        asyncio.run(serve(build_service(core), api.host, api.port, started))
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    except OSError as exc:
        if exc.errno not in _BIND_ERRORS:
            raise
        raise AccrochageError(
            f"cannot listen on {api.bind} (api.bind): {exc.strerror or exc}; stop the process "
            "that uses this port or choose another one"
        ) from None
    log.info("accrochage service stopped")
