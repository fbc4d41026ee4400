"""Helper processes die with the process that started them.

A helper started through the fork server has the fork server, not its starter, as parent,
and waits on queues it holds open itself: after a kill -9 of its starter it would live on,
keep working beside the restarted service, then idle forever. A thread that polls the
starter's pid ends it within a fraction of a second instead.
"""

from __future__ import annotations

import os
import signal
import threading
import time

POLL_SECONDS = 0.2


def exit_with(parent: int) -> None:
    """Start a daemon thread that ends this process as soon as `parent` is gone."""

    def watch() -> None:
        while True:
            time.sleep(POLL_SECONDS)
            try:
                os.kill(parent, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:
                pass

    threading.Thread(target=watch, name=f"exit-with-{parent}", daemon=True).start()


def ignore_stop_signals() -> None:
    """A helper leaves SIGINT and SIGTERM to the process that started it, which stops it in
    order. A Ctrl-C reaches the whole process group: a helper taking it interrupted its work
    with a KeyboardInterrupt (a request lost, tracebacks in a JSON log, a pool its starter
    then waited on for ever)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
