"""Keeping a running service's reference data current, without a restart.

A periodic job loads the files of `[refdata]` again when they change on disk, and every
process re-reads the reference data when its stored version changes (another process, or
`accrochage refdata load`, swapped new data in). A file that cannot be read is logged and
the data already loaded stays in use.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from pathlib import Path

from accrochage.errors import AccrochageError, RefdataBusy, RefdataError
from accrochage.models.deadline import Clock, paris_today
from accrochage.refdata.load import load_refdata, source_warnings
from accrochage.refdata.memory import ReferenceHolder
from accrochage.refdata.sources import signature
from accrochage.state.base import RefdataStorage
from accrochage.streams.scheduler import Job

log = logging.getLogger("accrochage.refdata")


class ReferenceKeeper:
    def __init__(
        self,
        storage: RefdataStorage,
        holder: ReferenceHolder,
        rncp: Path | None,
        cog: Path | None,
        max_age: timedelta,
        clock: Clock,
    ) -> None:
        self.storage = storage
        self.holder = holder
        self.rncp = rncp
        self.cog = cog
        self.max_age = max_age
        self.clock = clock
        self._failed: dict[str, str] = {}
        self._seen: tuple[str, str] | None = None
        """The files' signatures when last loaded: a `refdata load` of other files by the
        operator stays in use until the configured files change."""
        self._refused: tuple[str, str] | None = None
        """The files' signatures, with their status changes, when their load was refused (a
        damaged or cut file, one this user may not read): read again once they change, their
        permissions too, not at every tick (the XML export takes seconds to parse)."""
        self._told_on: date | None = None

    def run(self) -> None:
        """Load changed files (if any are configured), follow the stored version, and say
        once a day (and at start) what makes the data in use too old to trust."""
        if self.rncp is not None or self.cog is not None:
            self._load()
        if self.holder.refresh():
            log.info("reference data version %d in use", self.holder.version)
            self._told_on = None
        self._tell_age()

    def _status(self) -> tuple[str, str]:
        """The files' signatures with their status changes: a file refused as unreadable
        (`cannot read ...: Permission denied`) and then made readable by a `chmod` keeps its
        size and modification time, and was never read again until the service restarted."""
        return (signature(self.rncp, status=True), signature(self.cog, status=True))

    def _tell_age(self) -> None:
        """An export a year old decided which events were invalid while the service said
        nothing: its age was logged only when the files changed."""
        today = paris_today(self.clock)
        if self._told_on == today:
            return
        for warning in source_warnings(self.storage.sources(), today, self.max_age):
            log.warning("%s (said once a day while it lasts)", warning)
        self._told_on = today

    def _load(self) -> None:
        seen = (signature(self.rncp), signature(self.cog))
        if seen == self._seen or (self._refused is not None and self._status() == self._refused):
            return
        try:
            report = load_refdata(self.storage, self.rncp, self.cog, wait_seconds=0.0)
        except RefdataBusy:
            log.info("another process is loading reference data: looked at again next time")
            return
        except AccrochageError as exc:
            if isinstance(exc, RefdataError):  # the files themselves: until they change
                self._refused = self._status()
            message = str(exc)
            if self._failed.get("load") != message:  # once per distinct failure
                log.error("reference data not reloaded: %s; the loaded data stays in use", exc)
            self._failed["load"] = message
            return
        self._failed.clear()
        self._seen = seen
        if report.changed:
            for item in report.loaded:
                if item.changed and item.source is not None:
                    log.info("loaded %s from %s", item.kind, ", ".join(item.source.files))
            self._told_on = None


def refdata_job(keeper: ReferenceKeeper, every: float) -> Job:
    """`every`: seconds between two checks of the files and of the stored version."""
    return Job("refdata", every, keeper.run)
