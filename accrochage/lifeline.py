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
from pathlib import Path

POLL_SECONDS = 0.2


def exit_with(parent: int) -> None:
    """Start a daemon thread that ends this process as soon as `parent` is gone."""

    def watch() -> None:
        while True:
            time.sleep(POLL_SECONDS)
            if gone(parent):
                os._exit(1)

    threading.Thread(target=watch, name=f"exit-with-{parent}", daemon=True).start()


def gone(pid: int) -> bool:
    """`pid` ended: no such process, or a zombie (dead, not yet reaped by its own parent,
    which a supervisor may do late: a signal still reaches a zombie)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False  # no /proc: a signal's answer is all there is
    return stat.rpartition(b")")[2].split()[:1] == [b"Z"]


GROUP_SIGNALS = (signal.SIGINT, signal.SIGHUP)
"""What reaches a whole process group: Ctrl-C, and a terminal that closes (its session's
processes are sent SIGHUP, whose default action ends a process)."""


def ignore_interrupt() -> None:
    """A pool process leaves Ctrl-C and SIGHUP to the process that started it, which stops
    the pool in order. Both reach the whole process group: a pool process taking Ctrl-C
    interrupted its work with a KeyboardInterrupt (a request lost, tracebacks in a JSON log,
    a pool its starter then waited on for ever), and SIGHUP killed it while its starter
    stopped gracefully. SIGTERM keeps its default: multiprocessing ends a daemonic helper
    still running at its starter's exit with it (a group's SIGTERM, systemd's stop, ends pool
    processes: their unanswered work fails and is not acknowledged)."""
    for signum in GROUP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


def ignore_stop_signals() -> None:
    """A writer process leaves SIGINT, SIGHUP and SIGTERM to its starter, which ends it after
    its last group (a message, never a signal): a signal to the process group must not cut a
    transaction short."""
    for signum in (*GROUP_SIGNALS, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)


def left_ignored() -> frozenset[signal.Signals]:
    """The `GROUP_SIGNALS` this process was started with ignored, which the services keep
    ignored (they stop on either otherwise): SIGHUP by `nohup`, whose whole point is that a
    closed terminal leaves the command running; SIGINT by a shell for a command it runs in
    the background without job control (a script's `nohup accrochage run &`), so that a
    Ctrl-C meant for the script, which reaches its whole process group, leaves it running.
    Read before the service sets its own handlers."""
    return frozenset(s for s in GROUP_SIGNALS if signal.getsignal(s) == signal.SIG_IGN)
