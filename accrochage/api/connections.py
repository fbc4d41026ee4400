"""How many connections the service holds at once.

Each open connection holds a file descriptor until it closes. Without a bound, about a
thousand idle connections from anyone (no token needed to connect) exhausted the process's
open files: asyncio's accept loop then logged a traceback per retry (hundreds of megabytes a
minute), and the batch timer failed because SQLite could not open its files. Connections are
counted as they open: one over the total, or over one address's share, is answered 503 at
once and closed, and the total stays below the open-files limit with room for the state, the
outbox and the writer's pipes.
"""

from __future__ import annotations

import json
import logging
import resource
from dataclasses import dataclass

from aiohttp import web

from accrochage.api.errors import EVERY_ANSWER
from accrochage.streams.log_lines import LinesEvery

log = logging.getLogger("accrochage.api")
RESERVED_FILES = 256
"""Open files kept for everything but connections: SQLite's database, WAL and shared-memory
files per connection, reader threads, the outbox, the writer process's pipes, logs."""
REFUSALS_LOGGED_EVERY = 10.0
"""Seconds between two log lines about refused connections (a flood is one line each)."""


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    total: int = 1000
    per_client: int = 100


CONNECTIONS = web.AppKey("connection_limits", ConnectionLimits)


def fitted(limits: ConnectionLimits) -> ConnectionLimits:
    """`limits` within this process's open files, raised first to their hard limit (a
    service manager's default soft limit is often 1,024): what the service can really hold."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 65_536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass
    room = max(soft - RESERVED_FILES, 16)
    if limits.total <= room:
        return limits
    log.warning(
        "api.max_connections is %d but %d files may be open (ulimit -n): at most %d "
        "connections are held; raise the open-files limit to hold more",
        limits.total,
        soft,
        room,
    )
    return ConnectionLimits(room, min(limits.per_client, room))


class ConnectionCount:
    """The open connections, in all and by client address (the event loop's thread only)."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self.total = 0
        self._by_client: dict[str, int] = {}
        self._lines = LinesEvery(REFUSALS_LOGGED_EVERY)

    def admit(self, client: str | None) -> bool:
        """Whether a new connection from `client` is held (and counted)."""
        held = self._by_client.get(client, 0) if client is not None else 0
        if self.total >= self.limits.total or held >= self.limits.per_client:
            self._note_refusal()
            return False
        self.total += 1
        if client is not None:
            self._by_client[client] = held + 1
        return True

    def release(self, client: str | None) -> None:
        self.total -= 1
        if client is None:
            return
        left = self._by_client.get(client, 1) - 1
        if left > 0:
            self._by_client[client] = left
        else:
            self._by_client.pop(client, None)

    def _note_refusal(self) -> None:
        refused = self._lines.due("refused")
        if refused is not None:
            log.warning(
                "HTTP: %d connection(s) refused (503) since the last such line: %d open, "
                "api.max_connections %d, api.max_connections_per_client %d",
                refused,
                self.total,
                self.limits.total,
                self.limits.per_client,
            )


def _refusal() -> bytes:
    body = json.dumps(
        {
            "error": {
                "code": "too_many_connections",
                "message": "the service holds as many connections as it may (from this "
                "address, or in all): close idle ones, or retry later",
                "details": None,
            }
        }
    ).encode()
    common = "".join(f"{name}: {value}\r\n" for name, value in EVERY_ANSWER.items())
    head = (
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json; charset=utf-8\r\n"
        f"{common}Content-Length: {len(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


REFUSAL = _refusal()
"""Written to a connection refused as it opens, before it is closed (its request unread)."""
