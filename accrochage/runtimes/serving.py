"""How `accrochage run` serves: its socket bound before anything starts, the signals that
stop it, and its graceful stop (in-flight requests, the writer, the timer), with the exit
code a supervisor reads."""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import socket
import sys
from collections.abc import Callable

from aiohttp import web

from accrochage.api.protocol import ApiRunner
from accrochage.api.writer_link import ProcessLink
from accrochage.errors import AccrochageError
from accrochage.lifeline import left_ignored
from accrochage.settings import ApiSettings

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
