"""Helper processes start from a fork server that has imported the project once."""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor

from accrochage import processes
from accrochage.processes import helper_context


def _where_imported() -> tuple[int, int, bool]:
    import sys

    return os.getpid(), processes.IMPORTED_BY, "accrochage.sinks.xml_outbox" in sys.modules


def test_a_helper_inherits_the_project_its_fork_server_imported() -> None:
    with ProcessPoolExecutor(1, mp_context=helper_context()) as pool:
        helper, imported_by, render_code = pool.submit(_where_imported).result(timeout=120)
    assert helper != os.getpid()
    assert imported_by != helper, "the helper imported the project again instead of inheriting"
    assert render_code, "a render process would import the outbox at its first batch"
