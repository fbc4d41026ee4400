"""A helper process's own side of `accrochage/pool.py`: its initializer, then one task at a
time from its own pipe, each answer pickled back (or why it could not be)."""

from __future__ import annotations

import pickle
import signal
import traceback
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from multiprocessing.reduction import ForkingPickler
from typing import Any

from accrochage.errors import AccrochageError


class HelperDied(AccrochageError):
    """A helper process ended before answering (killed, or out of memory)."""

    code = "helper_died"
    status = 500


class RemoteTraceback(Exception):
    """The helper's own traceback, set as the cause of the exception its task raised."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return self.text


def serve(conn: Connection, initializer: Callable[..., None], initargs: Sequence[Any]) -> None:
    """A helper's life: its initializer, then one task at a time until told to end, or
    until its starter's end of the pipe closes. An initializer that fails makes every task
    fail with what it raised (never an answer the starter waits for in vain)."""
    # A starter that ignores SIGTERM (a writer process) must still be able to end its helpers,
    # and multiprocessing ends a daemonic helper still running at its starter's exit with it:
    # neither ignored nor blocked (the fork server, and so each helper, starts it blocked).
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    try:
        initializer(*initargs)
        unusable: str | None = None
    except Exception as exc:
        unusable = f"a helper process could not start ({type(exc).__name__}: {exc})"
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):  # the starter is gone, or closed its end
            return
        try:
            task = pickle.loads(data)
            if task is None:
                return
            if unusable is not None:
                raise HelperDied(unusable)
            fn, args = task
            answer: tuple[bool, Any, str | None] = (True, fn(*args), None)
        except BaseException as exc:  # the starter raises it where the result is awaited
            answer = (False, exc, traceback.format_exc())
        try:
            conn.send_bytes(_pickled(answer))
        except OSError:  # the starter is gone: no one to answer, nothing to report
            return


def _pickled(answer: tuple[bool, Any, str | None]) -> memoryview:
    """The answer, or the error of pickling it (a result nested too deep: the starter may do
    the work itself), or at least that error's name."""
    try:
        return ForkingPickler.dumps(answer)
    except Exception as exc:
        told = traceback.format_exc()
        try:
            return ForkingPickler.dumps((False, exc, told))
        except Exception:
            what = "result" if answer[0] else f"{type(answer[1]).__name__}"
            failure = f"the helper's {what} could not be sent back ({type(exc).__name__})"
            return ForkingPickler.dumps((False, RuntimeError(failure), told))


def no_initializer() -> None:
    pass
