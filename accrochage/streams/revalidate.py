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
from accrochage.state.base import Store
from accrochage.streams.incoming import decode_ready
from accrochage.streams.scheduler import Job, OnceADay

log = logging.getLogger("accrochage.revalidate")

CHUNK = 500


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
            with self.store.transaction() as tx:
                changes: list[Change] = []
                now = self.clock.now()
                today = paris_today(self.clock)
                for record in tx.records(ids[start : start + CHUNK]).values():
                    checked = record.status in REVALIDATED
                    if not checked and not correction_to_check(record):
                        continue
                    kept = record.version if checked else record.correction_version
                    stored = tx.content(record.record_id, kept or record.version)
                    payload = stored_payload(stored.payload, stored.event_id)
                    if payload is None or TRUNCATED in payload:
                        report.skipped += 1
                        continue
                    decoded, size = decode_ready(payload, self.registry, today, self.reference)
                    report.checked += 1
                    if checked:
                        change = apply_revalidated(
                            record,
                            decoded.errors,
                            decoded.warnings,
                            now,
                            reason,
                            decoded.delivered_on,
                            size,
                        )
                    else:
                        change = apply_correction_revalidated(record, decoded.errors, now, reason)
                    if change.outcome is Outcome.UNCHANGED or change.record is None:
                        continue
                    changes.append(change)
                    report.changed.append(_revalidated(record, change.record, checked))
                tx.save(changes)
        return report


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
