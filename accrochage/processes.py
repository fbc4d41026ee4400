"""How helper processes start: from a fork server that has already imported what they run.

Decode processes, render processes and writer processes start through the fork server (the
service and the worker have threads: forking them is unsafe). Python 3.11's fork server is
meant to import the main module once (`preload = ['__main__']`), but looks for it under a key
(`main_path`) that `spawn.get_preparation_data` names `init_main_from_path`: it never does,
so every helper ran the `accrochage` script again and imported the whole project, about a
quarter of a second of CPU per helper. Naming the modules makes the fork server import them
once; each helper then starts in milliseconds, its imports inherited. Naming only those its
helpers run (`DECODING`, `RENDERING`) spares a command's fork server the rest of the project.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from collections.abc import Sequence
from multiprocessing import forkserver, resource_tracker
from multiprocessing.connection import wait
from multiprocessing.context import ForkServerContext
from multiprocessing.process import BaseProcess

PRELOAD = ("accrochage.cli", "accrochage.api.writer_child", "accrochage.app_writers")
"""Everything a helper runs is imported by these (the command line imports the project; what
a writer process builds and runs, `app_writers` and `streams.writer_main`, the command line
imports only once it starts a service): the preload of a service's or a worker's helpers."""

DECODING = ("accrochage.streams.decode_worker", "accrochage.state.sqlite.refdata")
"""What a decode process runs (`streams/decoding.py`): about 0.55 s of CPU to import, where
`PRELOAD` takes 0.9, for a fork server whose helpers only decode (`ingest`'s, a writer
process's)."""

RENDERING = ("accrochage.sinks.xml_outbox", "accrochage.state.sqlite.store")
"""What a render process runs (`sinks/xml_outbox.py`): the fork server of `flush`'s."""

IMPORTED_BY = os.getpid()
"""The process that imported the project: a helper's fork server, not the helper itself
(what `tests/unit/test_processes.py` checks; nothing else reads it)."""


def helper_context(preload: Sequence[str] = PRELOAD) -> ForkServerContext:
    """The start method of every helper process, its fork server preloading `preload`.

    The preload applies to the fork server this process starts (at its first helper), so
    every caller goes through here, naming what its helpers run; a later call finds the fork
    server running with the first caller's preload. A helper whose code was not preloaded
    imports it itself: slower, never wrong. A helper that starts helpers of its own (a writer
    process and its decode pool) starts its own fork server.
    """
    context = multiprocessing.get_context("forkserver")
    assert isinstance(context, ForkServerContext)
    context.set_forkserver_preload(list(preload))
    _ensure_fork_server()
    return context


STARTER_SIGNALS = frozenset({signal.SIGHUP, signal.SIGINT, signal.SIGTERM})
"""What the fork server starts blocked: sent to the whole process group by a closed terminal
(SIGHUP), Ctrl-C (SIGINT) or systemd stopping a unit (SIGTERM to every process of its control
group), they are its starter's to act on. The fork server ignores SIGINT only once it has
imported `PRELOAD` (half a second): a Ctrl-C until then killed it, and the helper being
started failed with it (`run` and `worker` said "Aborted!" instead of stopping)."""


def _ensure_fork_server() -> None:
    """Start the fork server, and multiprocessing's resource tracker with it, with
    `STARTER_SIGNALS` blocked (as CPython starts the tracker with SIGINT and SIGTERM blocked);
    both end with their starter in any case. Either signal killed the fork server, whose end a
    starter reads as the end of every helper it forked (exit code 255): a Kafka worker took its
    live writer process for dead (exit 70, its groups failed, the writer left running) and a
    restarted resource tracker wrote tracebacks. Helpers inherit the mask: a pool helper
    unblocks SIGTERM (`helper_main.serve`), the signal multiprocessing ends it with at exit;
    SIGINT and SIGHUP stay blocked (every helper ignores them: `lifeline`)."""
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, STARTER_SIGNALS)
    try:
        resource_tracker.ensure_running()  # and then unblocks SIGTERM (and SIGINT) here
        signal.pthread_sigmask(signal.SIG_BLOCK, STARTER_SIGNALS)
        forkserver.ensure_running()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


class ExitWatch:
    """Whether a helper process lives, and its exit code, for several threads at once.

    A fork server's child reports its exit code through a pipe that is read once: two
    threads polling as it ends (a writer's results thread and its stop, say) race for those
    bytes, and the loser takes the empty pipe for the fork server's death, exit code 255
    (11 of 200 kills, two threads calling `is_alive()`). Each read of the exit code here
    holds one lock; waiting for the end watches the process's sentinel, which reads nothing,
    so no thread holds the lock while it waits."""

    def __init__(self, process: BaseProcess) -> None:
        self.process = process
        self._lock = threading.Lock()

    def is_alive(self) -> bool:
        with self._lock:
            return self.process.is_alive()

    @property
    def exitcode(self) -> int | None:
        with self._lock:
            return self.process.exitcode

    def join(self, timeout: float | None = None) -> None:
        """Wait until the process ended, at most `timeout` seconds (None: for as long)."""
        wait([self.process.sentinel], timeout)
        with self._lock:
            self.process.join(0)


def exit_said(code: int | None) -> str:
    """A process's exit code as its operator reads it: a signal by its name (-9: killed by
    SIGKILL, the OOM killer's or an operator's kill -9)."""
    if code is None or code >= 0:
        return f"exit code {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        return f"exit code {code}"
    return f"exit code {code}: killed by {name}"
