"""Named crash points: tests kill the process (SIGKILL, as kill -9) at a chosen step.

`ACCROCHAGE_FAILPOINT=<name>` in a process's environment makes `reached(name)` kill that
process there. Crash tests then prove recovery at each named step, whatever the machine's
speed; unset (always, outside tests), `reached` costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

VARIABLE = "ACCROCHAGE_FAILPOINT"


def reached(name: str) -> None:
    if os.environ.get(VARIABLE) == name:
        os.kill(os.getpid(), signal.SIGKILL)
