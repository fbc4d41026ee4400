"""Helper processes start from a fork server that has imported the project once."""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor

from accrochage import processes
from accrochage.processes import ExitWatch, helper_context


def _where_imported() -> tuple[int, int, bool]:
    import sys

    return os.getpid(), processes.IMPORTED_BY, "accrochage.sinks.xml_outbox" in sys.modules


def _writer_code() -> list[str]:
    import sys

    return [m for m in WRITER_CODE if m in sys.modules]


WRITER_CODE = ("accrochage.app_writers", "accrochage.streams.writer_main")
"""What a writer process unpickles and runs: `partial(build_writer_parts, ...)` or
`partial(build_event_writer, ...)`, and the Kafka writer's `writer_main`."""


def test_a_helper_inherits_the_project_its_fork_server_imported() -> None:
    with ProcessPoolExecutor(1, mp_context=helper_context()) as pool:
        helper, imported_by, render_code = pool.submit(_where_imported).result(timeout=120)
    assert helper != os.getpid()
    assert imported_by != helper, "the helper imported the project again instead of inheriting"
    assert render_code, "a render process would import the outbox at its first batch"


def test_a_writer_process_inherits_what_it_builds_and_runs() -> None:
    """`build_writer_parts` and `build_event_writer` moved out of `app` (which the command
    line imports) to `app_writers` (which it does not): each writer process imported it, and
    `writer_main` with it, at its start."""
    with ProcessPoolExecutor(1, mp_context=helper_context()) as pool:
        found = pool.submit(_writer_code).result(timeout=120)
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
