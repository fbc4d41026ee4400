"""Another process holding something (a lock, a snapshot, a write transaction) until the test
lets it go: a script run by `python -c`, which prints one line once it holds, then reads its
standard input until it closes.

Every wait is bounded: a holder that does not say it holds fails the test, and one that does
not end once let go is killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

BOUND = 30.0
"""Seconds a holder may take to say it holds, or to end once let go."""


@contextmanager
def holding(script: str, *args: str, ready: str = "held") -> Iterator[subprocess.Popen[str]]:
    """The process running `script` with `args`, once it printed `ready`; let go when the
    block ends, unless `let_go` did it before."""
    process = subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        said = process.stdout.readline()
        assert said == f"{ready}\n", f"the holding process said {said!r}, not {ready!r}"
        yield process
    finally:
        let_go(process)


def let_go(process: subprocess.Popen[str]) -> None:
    """The holder's standard input closed, and the holder ended: continued first if it was
    stopped (SIGSTOP), killed if it does not end within `BOUND`."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGCONT)
    if process.stdin is not None and not process.stdin.closed:
        process.stdin.close()
    try:
        process.wait(BOUND)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(BOUND)
    if process.stdout is not None and not process.stdout.closed:
        process.stdout.close()
