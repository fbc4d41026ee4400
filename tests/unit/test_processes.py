"""Helper processes start from a fork server that has imported the project once."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from typing import Any

from accrochage import processes
from accrochage.processes import ExitWatch, helper_context
from tests.support.crash import ROOT, finished


def _where_imported() -> tuple[int, int, bool]:
    import sys

    return os.getpid(), processes.IMPORTED_BY, "accrochage.sinks.xml_outbox" in sys.modules


def _writer_code() -> list[str]:
    import sys

    return [m for m in WRITER_CODE if m in sys.modules]


WRITER_CODE = ("accrochage.app_writers", "accrochage.streams.writer_main")
"""What a writer process unpickles and runs: `partial(build_writer_parts, ...)` or
`partial(build_event_writer, ...)`, and the Kafka writer's `writer_main`."""


FRESH = """
import json, os, sys
from concurrent.futures import ProcessPoolExecutor
from accrochage.processes import helper_context
from tests.unit import test_processes as probe
with ProcessPoolExecutor(1, mp_context=helper_context()) as pool:
    print(json.dumps([os.getpid(), pool.submit(getattr(probe, sys.argv[1])).result(timeout=120)]))
"""
"""Runs one of the functions above in a helper of a process whose fork server is started
with the default preload (`PRELOAD`, a service's): this test process's own fork server was
started by whichever test needed a helper first, with that helper's preload."""


def _in_fresh_process(function: str) -> tuple[int, Any]:
    done = finished([sys.executable, "-c", FRESH, function], cwd=ROOT)
    starter, answer = json.loads(done.stdout.splitlines()[-1])
    return starter, answer


def test_a_helper_inherits_the_project_its_fork_server_imported() -> None:
    starter, (helper, imported_by, render_code) = _in_fresh_process("_where_imported")
    assert helper != starter
    assert imported_by != helper, "the helper imported the project again instead of inheriting"
    assert render_code, "a render process would import the outbox at its first batch"


def test_a_writer_process_inherits_what_it_builds_and_runs() -> None:
    """`build_writer_parts` and `build_event_writer` moved out of `app` (which the command
    line imports) to `app_writers` (which it does not): each writer process imported it, and
    `writer_main` with it, at its start."""
    _, found = _in_fresh_process("_writer_code")
    assert found == list(WRITER_CODE)


def test_threads_that_watch_a_helper_end_all_read_its_exit_code() -> None:
    """Two threads polling a fork server's child as it is killed: the one that lost the race
    for its exit code read 255 (the fork server taken for dead) about once in 20 kills."""
    context = helper_context()
    codes = []
    for _ in range(100):
        helper = context.Process(target=time.sleep, args=(60,), daemon=True)
        helper.start()
        watch = ExitWatch(helper)
        go = threading.Event()

        def poll(watched: ExitWatch = watch, start: threading.Event = go) -> None:
            start.wait()
            while watched.is_alive():
                pass

        pollers = [threading.Thread(target=poll) for _ in range(2)]
        for poller in pollers:
            poller.start()
        go.set()
        os.kill(helper.pid or 0, signal.SIGKILL)
        for poller in pollers:
            poller.join(60)
        watch.join(60)
        codes.append(watch.exitcode)
    assert set(codes) == {-signal.SIGKILL}
