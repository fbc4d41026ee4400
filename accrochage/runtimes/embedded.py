"""`accrochage run`: one process, no broker. HTTP ingestion through the writer service, the
scheduler's jobs (the batch cut), the query API."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from accrochage.api.server import ApiContext, build_app
from accrochage.app import Core
from accrochage.streams.scheduler import Scheduler, batch_cut_job
from accrochage.streams.writer import WriterService

log = logging.getLogger("accrochage.service")
SHUTDOWN_TIMEOUT = 30


def api_context(core: Core, writer: WriterService) -> ApiContext:
    return ApiContext(
        store=core.store,
        clock=core.clock,
        writer=writer,
        token=core.settings.api.token,
        margin_days=core.settings.batching.margin_days,
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


def run_service(core: Core) -> None:
    """Serve until SIGTERM or SIGINT; in-flight requests and queued events finish first."""
    api = core.settings.api
    log.info("accrochage service on http://%s (outbox %s)", api.bind, core.settings.paths.outbox)
    web.run_app(
        build_service(core),
        host=api.host,
        port=api.port,
        print=None,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
        handle_signals=True,
    )
