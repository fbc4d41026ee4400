"""Length-prefixed pickled messages between the HTTP service and its writer process: the
framing (`frame`, `unframe`), used by both ends, and the serving end's non-blocking socket,
driven by the event loop's own reader and writer callbacks.

No task reads it: at SIGTERM, `asyncio.run` cancels every task before the app's cleanup has
run, and a cancelled reading task would leave the cleanup waiting for answers that no one
reads. Callbacks keep running as long as the loop does.
"""

from __future__ import annotations

import asyncio
import pickle
import socket
import struct
from collections.abc import Callable
from typing import Any

HEADER = struct.Struct("!I")
CHUNK = 1 << 20
"""Bytes read from the socket at a time, at most."""


def frame(message: Any) -> bytes:
    """One message as it crosses the socket: its pickle's length, then the pickle."""
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(body)) + body


def unframe(buffer: bytearray) -> bytes | None:
    """The pickle of the first complete message in `buffer`, taken out of it; None while
    the message is incomplete."""
    if len(buffer) < HEADER.size:
        return None
    (size,) = HEADER.unpack_from(buffer)
    if len(buffer) < HEADER.size + size:
        return None
    body = bytes(buffer[HEADER.size : HEADER.size + size])
    del buffer[: HEADER.size + size]
    return body


class FrameSocket:
    """Sends messages (buffered when the socket is full) and hands each one received to
    `received`; `lost` is called once when the socket fails or the other end closes."""

    def __init__(
        self,
        sock: socket.socket,
        received: Callable[[Any], None],
        lost: Callable[[BaseException | None], None],
    ) -> None:
        sock.setblocking(False)
        self.sock = sock
        self._received = received
        self._lost = lost
        self._in = bytearray()
        self._out = bytearray()
        self._loop = asyncio.get_running_loop()
        self._open = True
        self._loop.add_reader(sock.fileno(), self._readable)

    def send(self, message: Any) -> None:
        self.send_frame(frame(message))

    def send_frame(self, data: bytes) -> None:
        """Send one message framed already (`frame`): a caller that must know whether its
        message can be pickled frames it first."""
        if not self._open:
            return
        if self._out:
            self._out += data
            return
        try:
            sent = self.sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            self._close(exc)
            return
        if sent < len(data):
            self._out += data[sent:]
            self._loop.add_writer(self.sock.fileno(), self._writable)

    def _writable(self) -> None:
        try:
            sent = self.sock.send(self._out)
        except BlockingIOError:
            return
        except OSError as exc:
            self._close(exc)
            return
        del self._out[:sent]
        if not self._out:
            self._loop.remove_writer(self.sock.fileno())

    def _readable(self) -> None:
        try:
            data = self.sock.recv(CHUNK)
        except BlockingIOError:
            return
        except OSError as exc:
            self._close(exc)
            return
        if not data:
            self._close(None)
            return
        self._in += data
        while (body := unframe(self._in)) is not None:
            try:
                message = pickle.loads(body)
            except Exception as exc:
                self._close(exc)
                return
            self._received(message)
            if not self._open:
                return

    def _close(self, exc: BaseException | None) -> None:
        if not self._open:
            return
        self.close()
        self._lost(exc)

    def close(self) -> None:
        if self._open:
            self._open = False
            self._loop.remove_reader(self.sock.fileno())
            self._loop.remove_writer(self.sock.fileno())
            self.sock.close()
