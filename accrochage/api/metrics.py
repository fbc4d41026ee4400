"""`GET /metrics`: the Prometheus text format of the service's `Metrics` (`streams/metrics.py`).

The numbers are already computed (the watch job, the counters): a scrape renders them and
never touches the state. The operator's token guards it, as every route (`api/auth.py`).
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from accrochage.api.context import CONTEXT


async def get_metrics(request: web.Request) -> web.Response:
    response = web.Response(body=generate_latest(request.app[CONTEXT].metrics.registry))
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


def add_routes(app: web.Application) -> None:
    app.router.add_get("/metrics", get_metrics)
