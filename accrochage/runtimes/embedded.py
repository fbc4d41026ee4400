"""`accrochage run`: one process, no broker. HTTP ingestion through the writer service, the
scheduler's jobs (the batch cut), the query API."""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from accrochage.api.protocol import ApiRunner
from accrochage.api.server import ApiContext, build_app
from accrochage.app import Core
from accrochage.errors import AccrochageError
from accrochage.streams.scheduler import Scheduler, batch_cut_job
from accrochage.streams.writer import WriterService

log = logging.getLogger("accrochage.service")
SHUTDOWN_TIMEOUT = 30
_BIND_ERRORS = {errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES}


def api_context(core: Core, writer: WriterService) -> ApiContext:
    api = core.settings.api
    return ApiContext(
        store=core.store,
        clock=core.clock,
        writer=writer,
        margin_days=core.settings.batching.margin_days,
        token=api.token,
        ingest_tokens=tuple(api.ingest_tokens),
        max_body_bytes=api.max_body_bytes,
        max_events_per_request=api.max_events_per_request,
    )


def scheduler_for(core: Core) -> Scheduler:
    return Scheduler([batch_cut_job(core.flusher, core.settings.batching.tick.total_seconds())])


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
