"""The services' look at their configuration file: edited since the start (a restart applies
it) or broken (the next start would fail), said in the log once per version of the file and
by `accrochage_configuration_changed`."""

from __future__ import annotations

import logging
from pathlib import Path

from accrochage.settings import Settings
from accrochage.settings.drift import Drift, drift, file_bytes
from accrochage.streams.metrics import Metrics
from accrochage.streams.scheduler import Job

log = logging.getLogger("accrochage.service")
EVERY = 10.0
"""Seconds between two looks: the file read (a few kilobytes), parsed only when it changed."""


class ConfigWatch:
    def __init__(self, running: Settings, source: Path, metrics: Metrics) -> None:
        self.running = running
        self.source = source
        self.metrics = metrics
        # Not read here: the settings were read before the state was opened and checked
        # whole (minutes on a large state); a file edited meanwhile is told at the first look.
        self._bytes: bytes | None = None
        self._looked = False
        self._said = Drift()
        metrics.configuration_changed(False)

    def look(self) -> Drift:
        now = file_bytes(self.source)
        if self._looked and now == self._bytes:
            return self._said
        self._looked = True
        self._bytes = now
        found = drift(self.running, self.source)
        self.metrics.configuration_changed(not found.none)
        if found != self._said:
            self._say(found)
        self._said = found
        return found

    def _say(self, found: Drift) -> None:
        if found.error is not None:
            log.error(
                "the configuration file %s changed and does not load: %s. This service runs on "
                "the configuration it started with; it would not start again on this one: "
                "fix the file (accrochage doctor reads it)",
                self.source,
                one_line(found.error),
            )
        elif found.sections:
            log.warning(
                "the configuration file %s changed since this service started (%s): restart the "
                "service to apply it; until then it runs on the configuration it started with",
                self.source,
                ", ".join(found.sections),
            )
        else:
            log.info("the configuration file %s says again what this service runs", self.source)


def one_line(error: str) -> str:
    """A configuration error as one log line: `load_settings` lists each wrong setting on a
    line of its own (for a terminal), and a log line's continuation lines come without time,
    level or logger (a collector, `docker logs`, `grep ERROR` lose which settings are wrong)."""
    lines = [line.strip() for line in error.splitlines() if line.strip()]
    return " ".join(lines)


def config_job(running: Settings, source: Path, metrics: Metrics) -> Job:
    watch = ConfigWatch(running, source, metrics)

    def run() -> None:
        watch.look()

    return Job("configuration", EVERY, run)
