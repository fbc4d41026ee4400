"""`accrochage revalidate`: pending and invalid records checked again against the current
reference data; each record whose findings change is updated (invalid <-> pending) and
reported. Records in a batch are never touched: their content is frozen in a file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from accrochage.models.deadline import Clock, paris_today
from accrochage.models.decode import decode
from accrochage.models.event import stored_payload
from accrochage.models.problems import Problem
from accrochage.models.record import TRUNCATED, Change, Outcome
from accrochage.models.reference import Reference
from accrochage.models.registry import Registry
from accrochage.models.revalidation import REVALIDATED, apply_revalidated
from accrochage.state.base import Store
from accrochage.state.queries import OutstandingQuery

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

    def _ids(self, certifier: str | None) -> list[str]:
        query = OutstandingQuery(
            as_of=paris_today(self.clock),
            certifier=certifier,
            statuses=tuple(REVALIDATED),
            limit=None,
        )
        with self.store.reading() as reader:
            return [str(row["record_id"]) for row in reader.outstanding(query)]

    def run(self, certifier: str | None = None, version: int = 0) -> RevalidationReport:
        report = RevalidationReport()
        ids = self._ids(certifier)
        reason = f"revalidated against reference data version {version}"
        for start in range(0, len(ids), CHUNK):
            with self.store.transaction() as tx:
                changes: list[Change] = []
                now = self.clock.now()
                today = paris_today(self.clock)
                for record in tx.records(ids[start : start + CHUNK]).values():
                    if record.status not in REVALIDATED:
                        continue
                    stored = tx.content(record.record_id, record.version)
                    payload = stored_payload(stored.payload, stored.event_id)
                    if payload is None or TRUNCATED in payload:
                        report.skipped += 1
                        continue
                    decoded = decode(payload, self.registry, today, self.reference)
                    report.checked += 1
                    change = apply_revalidated(
                        record, decoded.errors, decoded.warnings, now, reason
                    )
                    if change.outcome is Outcome.UNCHANGED or change.record is None:
                        continue
                    changes.append(change)
                    old = _findings(record.errors, record.warnings)
                    new = _findings(change.record.errors, change.record.warnings)
                    report.changed.append(
                        Revalidated(
                            record.record_id,
                            record.certifier,
                            str(record.status),
                            str(change.record.status),
                            sorted(new - old),
                            sorted(old - new),
                        )
                    )
                tx.save(changes)
        return report
