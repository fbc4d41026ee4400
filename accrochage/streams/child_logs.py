"""A child process writes its log lines as its parent does (`--log-format`: text or JSON
lines, and the level): the parent's formatter and level cross the process boundary."""

from __future__ import annotations

import logging
import pickle

LogSetup = tuple[logging.Formatter | None, int]
PROJECT_LOGGER = "accrochage"


class OwnDebugOnly(logging.Filter):
    """At `--log-level DEBUG`, the project's own debug lines and no library's.

    The project never puts a person's data in a log line; the libraries' debug lines do not
    promise as much: aiokafka's producer logs each message it sends, key and value (a
    rejected event's envelope holds the holder's names, birth data and NIR), and faust and
    aiohttp log what they receive. Their lines from INFO up pass as before."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.INFO or _ours(record.name)


def _ours(name: str) -> bool:
    return name == PROJECT_LOGGER or name.startswith(PROJECT_LOGGER + ".")


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
        handler.addFilter(OwnDebugOnly())
        logging.getLogger().addHandler(handler)
        logging.getLogger().setLevel(level)
