"""Groups read and handed on in a thread of their own, their results taken in order.

`ingest` sends each group it reads to the decode processes a few groups ahead of the one it
stores. Read in the storing thread, an input that stops giving events without ending (a
pipe kept open, a slow network mount) held back the groups already read and decoded: none
was stored until the reading went on. Here the reading runs in a thread of its own, so that
what was read is stored whatever the input does next, and the storing thread waits only for
the group it stores.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TypeVar

G = TypeVar("G")
R = TypeVar("R")

_PUT_WAIT = 0.1
"""Seconds a full queue is waited for before the reader looks whether it should stop."""


@dataclass(frozen=True, slots=True)
class _Ended:
    """The reading is over: `error` is what stopped it (None: the input ended)."""

    error: BaseException | None


def read_ahead(groups: Iterator[G], submit: Callable[[G], Future[R]], limit: int) -> Iterator[R]:
    """Each group's result, in the order read. A reader thread takes the groups from `groups`
    and `submit`s each, at most `limit` submitted and not yet taken; what stops the reading
    (an unreadable input, a failed submit) is raised here once every group read before it
    was given. Stopping early (an exception, a closed generator) cancels what is not taken
    and lets the reader end after its current read."""
    handed: queue.Queue[Future[R] | _Ended] = queue.Queue(maxsize=max(1, limit))
    stop = threading.Event()

    def hand(item: Future[R] | _Ended) -> bool:
        while not stop.is_set():
            try:
                handed.put(item, timeout=_PUT_WAIT)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for group in groups:
                if stop.is_set() or not hand(submit(group)):
                    return
        except BaseException as exc:  # handed to the storing thread, raised there
            hand(_Ended(exc))
            return
        hand(_Ended(None))

    # A daemon: an input blocked in a read (a pipe kept open) must not keep the process alive.
    reader = threading.Thread(target=read, name="ingest-reader", daemon=True)
    reader.start()
    try:
        while True:
            item = handed.get()
            if isinstance(item, _Ended):
                if item.error is not None:
                    raise item.error
                return
            yield item.result()
    finally:
        stop.set()
        _cancel_waiting(handed)


def _cancel_waiting(handed: queue.Queue[Future[R] | _Ended]) -> None:
    while True:
        try:
            item = handed.get_nowait()
        except queue.Empty:
            return
        if isinstance(item, Future):
            item.cancel()
