"""The one logging setup of the long-running commands (`run`, `worker`): text lines, or JSON
lines (`--log-format json`) for log collectors.

Both carry the same message and nothing else: the product never puts a person's data in a
log message (record ids and counts only), and the JSON formatter adds no field of the record
beyond the time, level, logger, message, process and, for an error, its traceback.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import click

from accrochage.models.deadline import PARIS

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


def setup_logging(level: str, log_format: str = "text") -> None:
    """Every record to stderr, one line each, whatever was configured before."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else ParisTimeFormatter(FORMAT))
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
