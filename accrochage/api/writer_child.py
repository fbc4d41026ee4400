"""The writer process of the HTTP service (`api/writer_link.py` is its serving end).

One thread: it waits for a group of events on its socket, takes every other group already
there, stores them all in one transaction (`WriterService.store_now`: group commit, one
failing event fails alone), then answers each group: its results, the storage failure of
that transaction if any, the outcome counts and the write lock's times (the serving process
serves `/metrics`).
Groups that arrive while a transaction runs wait in the socket and go into the next one. No
hand-off between threads: on a busy machine every wake-up costs a wait for a core.

A group whose transaction failed is answered with the error's code only, and the message of
a storage error (it names the state file, never an event). The process ends when its
serving end sends the end (everything before it stored), when the socket closes, or within
a fraction of a second of its parent's death (`lifeline`).
"""

from __future__ import annotations

import logging
import os
import pickle
import socket
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import suppress
from typing import Any

from accrochage import heap
from accrochage.api.frames import CHUNK, frame, unframe
from accrochage.errors import AccrochageError, StoreError
from accrochage.lifeline import exit_with, ignore_stop_signals
from accrochage.streams import metrics
from accrochage.streams.child_logs import LogSetup, adopt_log_setup
from accrochage.streams.incoming import Incoming, IngestResult
from accrochage.streams.writer import WriterService

log = logging.getLogger("accrochage.writer")
END = None
STARTED_NOT = "not started"
"""The first message of a writer process that could not build its parts, with the error's
code and message (instead of "ready")."""

WriterBuild = Callable[[], tuple[WriterService, Callable[[], None]]]
"""Builds, in the writer process, its writer service and what closes its store."""


class Inbox:
    """Length-prefixed messages from a blocking socket, buffered."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()
        self.closed = False

    def _complete(self) -> Any:
        """The next buffered message, or `self` when none is complete."""
        body = unframe(self.buffer)
        return self if body is None else pickle.loads(body)

    def _fill(self, *, wait: bool) -> bool:
        """Read what the socket holds (waiting for something when `wait`); False at EOF or
        when nothing was there. A serving process killed before reading its last answers
        resets the socket: that is its end too, not a traceback in the service's log."""
        try:
            chunk = self.sock.recv(CHUNK, 0 if wait else socket.MSG_DONTWAIT)
        except BlockingIOError:
            return False
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.closed = True
            return False
        self.buffer += chunk
        return True

    def take(self) -> list[Any]:
        """Every message there is, waiting for the first; [END] at the end."""
        messages: list[Any] = []
        while True:
            message = self._complete()
            if message is not self:
                messages.append(message)
                if message is END:
                    return messages
                continue
            if messages and not self._fill(wait=False):
                if self.closed:
                    messages.append(END)
                return messages
            if not messages and not self._fill(wait=True):
                return [END]


def _storage(service: WriterService) -> tuple[str, str] | None:
    problem = service.storage_error
    return None if problem is None else (problem.code, str(problem))


def _answer(service: WriterService, stored: Future[list[IngestResult]]) -> Any:
    error = stored.exception()
    times = service.write_times.ship() if service.write_times is not None else []
    if error is None:
        results = stored.result()
        return (True, results, _storage(service), metrics.tally(results), times)
    if not isinstance(error, StoreError):
        log.error("a group of events could not be stored (%s)", type(error).__name__)
        failure = ("internal_error", type(error).__name__, False)
        return (False, failure, _storage(service), {}, times)
    return (False, (error.code, str(error), True), _storage(service), {}, times)


def serve_writer(
    build: WriterBuild,
    parent: int,
    sock: socket.socket,
    logs: LogSetup = (None, logging.WARNING),
) -> None:
    """The writer process's main: build the writer service, store the groups in order."""
    exit_with(parent)
    # The serving process decides when to stop (a Ctrl-C reaches the whole process group).
    ignore_stop_signals()
    adopt_log_setup(logs)
    try:
        service, close = build()
    except AccrochageError as exc:  # the serving process says it, in one line
        with suppress(OSError):
            sock.sendall(frame((STARTED_NOT, exc.code, str(exc))))
        sock.close()
        return
    heap.settle()
    inbox = Inbox(sock)
    try:
        sock.sendall(frame("ready"))
        ended = False
        while not ended:
            messages = inbox.take()
            ended = messages[-1] is END
            groups = [
                [
                    Incoming(raw, source, decoded=decoded, scope=scope)
                    for raw, source, decoded, scope in wire
                ]
                for wire in messages
                if wire is not END
            ]
            answers = [_answer(service, done) for done in service.store_now(groups)]
            if answers:
                try:
                    sock.sendall(b"".join(frame(answer) for answer in answers))
                except OSError:  # the serving end is gone: so is the service
                    os._exit(1)
        service.stop()
    finally:
        close()
        sock.close()
