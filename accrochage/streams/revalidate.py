"""`accrochage revalidate`: pending and invalid records checked again against the current
reference data; each record whose findings change is updated (invalid <-> pending) and
reported. A record in a batch keeps its content (frozen in a file), but its stored correction,
not sent yet, is checked too: one refused for reference data older than its certification is
sent once newer data finds it valid.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

from accrochage.models.deadline import Clock, paris_today
from accrochage.models.event import stored_payload
from accrochage.models.problems import Problem
from accrochage.models.record import TRUNCATED, Change, Record
from accrochage.models.reference import Reference
from accrochage.models.registry import Registry
from accrochage.models.revalidation import (
    REVALIDATED,
    apply_correction_revalidated,
    apply_revalidated,
    correction_to_check,
)
from accrochage.models.vocabulary import Outcome, RecordStatus
from accrochage.state.base import PendingReads, Store
from accrochage.streams.incoming import Ready, decode_ready
from accrochage.streams.scheduler import Job, OnceADay

log = logging.getLogger("accrochage.revalidate")

CHUNK = 500


@dataclass(frozen=True, slots=True)
class _Findings:
    """What a stored event decoded again says, and no more: holding a chunk's decoded events
    (their payloads, their models) until its write cost `revalidate` about 75 µs a record
    more than holding these."""

    errors: list[Problem]
    warnings: list[Problem]
    delivered_on: date | None
    size: int | None

    @classmethod
    def of(cls, ready: Ready) -> _Findings:
        decoded, size = ready
        return cls(decoded.errors, decoded.warnings, decoded.delivered_on, size)


@dataclass(frozen=True, slots=True)
class _Look:
    """A record as read, and what to check of it decoded again."""

    record: Record
    content: bool | None
    """True: its content is checked; False: its stored correction; None: nothing is."""
    findings: _Findings | None
    """None when nothing is checked, or the payload was too large to keep whole."""


@dataclass(frozen=True, slots=True)
class Revalidated:
    record_id: str
    certifier: str | None
    before: str
    after: str
    added: list[str]
    """Findings it has now and had not, as `error|warning field: message`."""
    removed: list[str]


@dataclass(slots=True)
class RevalidationReport:
    checked: int = 0
    skipped: int = 0
    """Invalid records whose content was too large to keep whole: they cannot be re-read."""
    changed: list[Revalidated] = field(default_factory=list)


def _revalidated(before: Record, after: Record, content: bool) -> Revalidated:
    """What changed: the content's findings, or (`content` False) its stored correction's."""
    if content:
        old = _findings(before.errors, before.warnings)
        new = _findings(after.errors, after.warnings)
        return Revalidated(
            before.record_id,
            before.certifier,
            str(before.status),
            str(after.status),
            sorted(new - old),
            sorted(old - new),
        )
    old = _findings(before.correction_errors, ())
    new = _findings(after.correction_errors, ())
    was = "invalid correction" if before.correction_valid is False else "valid correction"
    now = "valid correction" if after.correction_valid else "invalid correction"
    return Revalidated(
        before.record_id, before.certifier, was, now, sorted(new - old), sorted(old - new)
    )


def _findings(errors: tuple[Problem, ...], warnings: tuple[Problem, ...]) -> set[str]:
    return {f"error {p.field}: {p.message}" for p in errors} | {
        f"warning {p.field}: {p.message}" for p in warnings
    }


class Revalidator:
    def __init__(
        self, store: Store, registry: Registry, clock: Clock, reference: Reference | None
    ) -> None:
        self.store = store
        self.registry = registry
        self.clock = clock
        self.reference = reference

    def run(self, certifier: str | None = None, version: int = 0) -> RevalidationReport:
        """Every pending and invalid record, and every stored correction not sent yet."""
        reason = f"revalidated against reference data version {version}"
        with self.store.reading() as reader:
            ids = reader.to_revalidate(certifier, held_by_date=False)
        return self._check(ids, reason)

    def dates_come(self) -> RevalidationReport:
        """The records refused for a delivery date in the future, checked again: once that
        day has come they are valid (and have their deadline). Before, such a record stayed
        invalid until someone thought of `revalidate`, and slid into overdue."""
        with self.store.reading() as reader:
            ids = reader.to_revalidate(None, held_by_date=True)
        return self._check(ids, "checked again: its delivery date has come")

    def _check(self, ids: list[str], reason: str) -> RevalidationReport:
        report = RevalidationReport()
        for start in range(0, len(ids), CHUNK):
            if start:
                self.store.let_writers_in()
            self._check_chunk(ids[start : start + CHUNK], reason, report)
        return report

    def _check_chunk(self, ids: list[str], reason: str, report: RevalidationReport) -> None:
        """The records decoded again from a reader, without the write lock; then stored by a
        write transaction that reads them again and decodes inside only those changed since.
        Decoded inside, a chunk held the write lock about 75 ms (150 µs a record), and a
        service's writer waited as long for each (`python -m bench.beside`)."""
        today = paris_today(self.clock)
        with self.store.reading() as reader:
            looks = {
                r.record_id: self._look(reader, r, today) for r in reader.records(ids).values()
            }
        with self.store.transaction() as tx:
            now = self.clock.now()
            changes: list[Change] = []
            for record in tx.records(ids).values():
                look = looks.get(record.record_id)
                if look is None or look.record != record:
                    look = self._look(tx, record, today)
                change = self._apply(look, now, reason, report)
                if change is not None:
                    changes.append(change)
            tx.save(changes)

    def _look(self, source: PendingReads, record: Record, today: date) -> _Look:
        """The record, and what to check of it decoded again."""
        if record.status in REVALIDATED:
            content, kept = True, record.version
        elif correction_to_check(record):
            content, kept = False, record.correction_version or record.version
        else:
            return _Look(record, None, None)
        stored = source.content(record.record_id, kept)
        payload = stored_payload(stored.payload, stored.event_id)
        if payload is None or TRUNCATED in payload:
            return _Look(record, content, None)
        ready = decode_ready(payload, self.registry, today, self.reference)
        return _Look(record, content, _Findings.of(ready))

    @staticmethod
    def _apply(
        look: _Look, now: datetime, reason: str, report: RevalidationReport
    ) -> Change | None:
        """The change the findings make, counted in `report`; None when there is none."""
        record = look.record
        if look.content is None:
            return None
        found = look.findings
        if found is None:
            report.skipped += 1
            return None
        report.checked += 1
        if look.content:
            change = apply_revalidated(
                record, found.errors, found.warnings, now, reason, found.delivered_on, found.size
            )
        else:
            change = apply_correction_revalidated(record, found.errors, now, reason)
        if change.outcome is Outcome.UNCHANGED or change.record is None:
            return None
        report.changed.append(_revalidated(record, change.record, look.content))
        return change


class DatesCome(OnceADay):
    """Once a Paris day, the first time at start: the records refused for a delivery date in
    the future checked again (`Revalidator.dates_come`), by the services' scheduler."""

    def __init__(self, revalidator: Callable[[], Revalidator], clock: Clock) -> None:
        super().__init__(clock)
        self._revalidator = revalidator

    def work(self) -> None:
        report = self._revalidator().dates_come()
        if report.changed:
            valid = sum(1 for item in report.changed if item.after == RecordStatus.PENDING)
            log.info(
                "%d record(s) refused for a delivery date in the future checked again: "
                "%d valid now",
                len(report.changed),
                valid,
            )


def dates_job(revalidator: Callable[[], Revalidator], clock: Clock, every: float) -> Job:
    """`every`: seconds between two looks at the date (the check itself runs once a day)."""
    return Job("delivery dates", every, DatesCome(revalidator, clock).run)
