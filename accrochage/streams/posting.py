"""Posting an alert to an HTTP receiver (a webhook, an Alertmanager), bounded in time.

Python's `urlopen` bounds each socket read, not the exchange: a receiver sending its answer a
byte every few seconds held the delivery thread (every other receiver behind it, and the
service's stop) for as long as it liked; it also followed a redirect with a GET that carries
no alert, and took a user and password in the URL for a port (quoting them in its error).
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import socket
import threading
import urllib.parse
import urllib.request
from typing import Any

from accrochage.errors import AccrochageError

TIMEOUT = 5.0
"""Seconds an exchange lasts at most once connected (connecting is bounded alike)."""
MAX_ANSWER_BYTES = 64 * 1024
"""Bytes of a receiver's answer read at most: only its status matters."""


class ReceiverError(AccrochageError):
    """A receiver that did not take an alert: its answer (never its URL: it may hold a
    secret) is said in the message."""


def post_json(url: str, body: Any, timeout: float = TIMEOUT) -> None:
    """POST `body` as JSON to `url`, or raise. The whole exchange ends `timeout` seconds after
    the connection (a receiver trickling its answer included), at most `MAX_ANSWER_BYTES` of
    the answer are read, a redirect is a failure (following it would send a GET without the
    alert), and a user and password in the URL are sent as Basic authentication."""
    target = urllib.parse.urlsplit(url)
    connection, plain_proxy = _connection(target, timeout)
    headers = {"Content-Type": "application/json", "User-Agent": "accrochage"}
    if target.username is not None:
        headers["Authorization"] = _basic(target)
    path = (target.path or "/") + (f"?{target.query}" if target.query else "")
    if plain_proxy is not None:  # it takes the whole URL, and its credentials, per request
        path = f"{target.scheme}://{target.netloc.rpartition('@')[2]}{path}"
        if plain_proxy.username is not None:
            headers["Proxy-Authorization"] = _basic(plain_proxy)
    try:
        connection.connect()
        watchdog = _Watchdog(connection, timeout)
        late = ReceiverError(f"no whole answer within {timeout:g} s")
        try:
            connection.request("POST", path, json.dumps(body).encode(), headers)
            response = connection.getresponse()
            response.read(MAX_ANSWER_BYTES)
        except (OSError, http.client.HTTPException) as exc:
            # The socket's own timeout (no byte for `timeout` seconds) can fire before the
            # watchdog's thread does on a busy machine: the answer was as late either way.
            if watchdog.fired or isinstance(exc, TimeoutError):
                raise late from exc
            raise
        finally:
            watchdog.cancel()
        if watchdog.fired:  # the socket shut mid-answer may read as an answer's end
            raise late
    finally:
        connection.close()
    if not 200 <= response.status < 300:
        raise ReceiverError(f"answered HTTP {response.status}")


def _connection(
    target: urllib.parse.SplitResult, timeout: float
) -> tuple[http.client.HTTPConnection, urllib.parse.SplitResult | None]:
    """A connection to `target`, or to the proxy the environment names for it (`https_proxy`,
    `http_proxy`, `no_proxy`, as urllib reads them); with that proxy when it is one a plain
    HTTP request goes through (HTTPS is tunnelled, its credentials given to the tunnel)."""
    if target.hostname is None:
        raise ReceiverError("its URL names no host")
    proxy = _proxy_for(target)
    if proxy is None:
        if target.scheme == "https":
            return http.client.HTTPSConnection(target.hostname, target.port, timeout=timeout), None
        return http.client.HTTPConnection(target.hostname, target.port, timeout=timeout), None
    if proxy.hostname is None:
        raise ReceiverError("the environment's proxy URL names no host")
    auth = {"Proxy-Authorization": _basic(proxy)} if proxy.username is not None else {}
    if target.scheme == "https":
        tunnel = http.client.HTTPSConnection(proxy.hostname, proxy.port or 80, timeout=timeout)
        tunnel.set_tunnel(target.hostname, target.port or 443, headers=auth)
        return tunnel, None
    plain = http.client.HTTPConnection(proxy.hostname, proxy.port or 80, timeout=timeout)
    return plain, proxy


def _proxy_for(target: urllib.parse.SplitResult) -> urllib.parse.SplitResult | None:
    proxy = urllib.request.getproxies().get(target.scheme)
    if not proxy or urllib.request.proxy_bypass(target.netloc.rpartition("@")[2]):
        return None
    return urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")


def _basic(url: urllib.parse.SplitResult) -> str:
    user = urllib.parse.unquote(url.username or "")
    password = urllib.parse.unquote(url.password or "")
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


class _Watchdog:
    """Shuts a connection's socket down `seconds` from now: a blocked read returns at once."""

    def __init__(self, connection: http.client.HTTPConnection, seconds: float) -> None:
        self.fired = False
        self._connection = connection
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        self.fired = True
        sock = self._connection.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def cancel(self) -> None:
        self._timer.cancel()
