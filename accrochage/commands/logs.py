"""The one logging setup of the long-running commands (`run`, `worker`)."""

from __future__ import annotations

import logging
from datetime import datetime

from accrochage.models.deadline import PARIS

FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class ParisTimeFormatter(logging.Formatter):
    """Timestamps in Europe/Paris, the time of the CDC's deadlines, with their UTC offset
    (`2026-11-20T10:15:00.123+01:00`): no reader has to guess the zone."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, PARIS).isoformat(timespec="milliseconds")


def setup_logging(level: str) -> None:
    """Every record to stderr, one line each, whatever was configured before."""
    handler = logging.StreamHandler()
    handler.setFormatter(ParisTimeFormatter(FORMAT))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
