"""The one logging setup of the long-running commands (`run`, `worker`): text lines, or JSON
lines (`--log-format json`) for log collectors.

Both carry the same message and nothing else: the product never puts a person's data in a
log message (record ids and counts only), and the JSON formatter adds no field of the record
beyond the time, level, logger, message, process and, for an error, its traceback.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import click

from accrochage.models.deadline import PARIS
from accrochage.streams.child_logs import OwnDebugOnly

FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("text", "json")
F = TypeVar("F", bound=Callable[..., Any])


def _paris(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, PARIS).isoformat(timespec="milliseconds")


class ParisTimeFormatter(logging.Formatter):
    """Timestamps in Europe/Paris, the time of the CDC's deadlines, with their UTC offset
    (`2026-11-20T10:15:00.123+01:00`): no reader has to guess the zone."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return _paris(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: `at`, `level`, `logger`, `message`, `pid` (+ `exception`)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "at": _paris(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class Repeated(logging.Filter):
    """A Kafka client's warning or error said once per `every` seconds, with how many like it
    were held back: while the broker is down, aiokafka logs each failed connection, metadata
    update and fetch, about 100 lines a second (40 MB an hour) that drowned everything else.
    The product's own lines pass untouched."""

    LIBRARIES = ("aiokafka", "kafka")
    KEPT = 1024

    def __init__(self, every: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.every = every
        self.clock = clock
        self._seen: dict[tuple[str, object], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or not record.name.startswith(self.LIBRARIES):
            return True
        key = (record.name, record.msg)
        now = self.clock()
        last, held = self._seen.get(key, (None, 0))
        if last is not None and now - last < self.every:
            self._seen[key] = (last, held + 1)
            return False
        if len(self._seen) >= self.KEPT:
            self._seen.clear()
        self._seen[key] = (now, 0)
        if held:
            record.msg = f"{record.msg} [{held} more like it in the last {self.every:.0f} s]"
        return True


def setup_logging(level: str, log_format: str = "text") -> None:
    """Every record to stderr, one line each, whatever was configured before."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else ParisTimeFormatter(FORMAT))
    handler.addFilter(Repeated())
    handler.addFilter(OwnDebugOnly())
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)


def in_json() -> bool:
    """Whether this process logs JSON lines (`--log-format json`): its last words must be one
    too, or a collector drops them."""
    return any(isinstance(h.formatter, JsonFormatter) for h in logging.getLogger().handlers)


def log_format_option(command: F) -> F:
    return click.option(
        "--log-format",
        default="text",
        show_default=True,
        type=click.Choice(LOG_FORMATS),
        help="text lines, or JSON lines for a log collector.",
    )(command)
