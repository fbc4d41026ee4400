"""A child process writes its log lines as its parent does (`--log-format`: text or JSON
lines, and the level): the parent's formatter and level cross the process boundary."""

from __future__ import annotations

import logging
import pickle

LogSetup = tuple[logging.Formatter | None, int]


def parent_log_setup() -> LogSetup:
    """This process's log format and level, for a child (no formatter if it cannot cross)."""
    root = logging.getLogger()
    formatter = root.handlers[0].formatter if root.handlers else None
    try:
        pickle.dumps(formatter)
    except Exception:
        formatter = None
    return formatter, root.level


def adopt_log_setup(logs: LogSetup) -> None:
    """In the child: log as the parent does."""
    formatter, level = logs
    if formatter is not None:
        handler = logging.StreamHandler()
        handler.setFormatter(formatter)
        logging.getLogger().addHandler(handler)
        logging.getLogger().setLevel(level)
