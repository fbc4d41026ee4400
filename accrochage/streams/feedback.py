"""The CDC feedback loop: files deposited, processing reports imported, rejections retried."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from accrochage.errors import AccrochageError
from accrochage.models.deadline import Clock
from accrochage.models.lifecycle import (
    Change,
    Outcome,
    apply_deposited,
    apply_report,
    apply_retry,
)
from accrochage.models.vocabulary import BatchState
from accrochage.sinks.reports import ProcessingReport, parse_report, read_report_bytes
from accrochage.state.base import ImportedReport, Store, Transaction


@dataclass(slots=True)
class ImportSummary:
    file: str
    batch_id: str | None
    already_imported: bool = False
    accepted: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    unknown_ids: list[str] = field(default_factory=list)
    not_mentioned: list[str] = field(default_factory=list)
    file_error: str | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Feedback:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def _now(self) -> datetime:
        return self.clock.now().replace(microsecond=0)

    def deposited(self, batch_ids: Sequence[str]) -> list[str]:
        """Record that files were uploaded to the CDC portal; returns what was done for each."""
        now, done = self._now(), []
        with self.store.transaction() as tx:
            for batch_id in batch_ids:
                batch = tx.batch(batch_id)
                if batch is None:
                    raise AccrochageError(f"unknown batch {batch_id}: see `GET /batches`")
                if batch.state is BatchState.DEPOSITED:
                    done.append(f"{batch_id}: already recorded as deposited")
                    continue
                if batch.state is not BatchState.WRITTEN:
                    raise AccrochageError(
                        f"batch {batch_id} is {batch.state}, not written: its file is not in "
                        "the outbox yet, so it cannot have been deposited"
                    )
                tx.batch_deposited(batch_id, now)
                changes = [apply_deposited(r, batch_id, now) for r in tx.records_in_batch(batch_id)]
                moved = [c for c in changes if c.changed]
                tx.save(moved)
                done.append(f"{batch_id}: deposited ({len(moved)} records)")
        return done

    def retry(self, record_ids: Sequence[str]) -> list[str]:
        now, done = self._now(), []
        with self.store.transaction() as tx:
            current = tx.records(record_ids)
            changes: list[Change] = []
            for record_id in record_ids:
                record = current.get(record_id)
                if record is None:
                    raise AccrochageError(f"unknown record {record_id}")
                change = apply_retry(record, now)
                if change.outcome is Outcome.REFUSED:
                    raise AccrochageError(change.errors[0].message)
                assert change.record is not None
                current[record_id] = change.record
                changes.append(change)
                done.append(f"{record_id}: pending again")
            tx.save(changes)
        return done

    def import_report(self, path: Path) -> ImportSummary:
        data = read_report_bytes(path)  # read once: the size and kind checked first
        return self.apply_report(parse_report(data, source=str(path)), data, path.name)

    def import_report_bytes(self, data: bytes, name: str) -> ImportSummary:
        return self.apply_report(parse_report(data, source=name), data, name)

    def apply_report(self, report: ProcessingReport, data: bytes, name: str) -> ImportSummary:
        digest = hashlib.sha256(data).hexdigest()
        now = self._now()
        with self.store.transaction() as tx:
            batch_id = tx.find_batch(report.id_flux, report.file_name)
            summary = ImportSummary(name, batch_id)
            if tx.report_imported(digest):
                summary.already_imported = True
                summary.notes.append("this report was already imported: nothing changed")
                return summary
            if batch_id is None:
                summary.notes.append(
                    f"no batch matches nomFichier {report.file_name!r} / idFlux "
                    f"{report.id_flux!r}: outcomes are applied by idTechnique only"
                )
            label = f"{name} (idTraitement {report.id_traitement})"
            if report.rejected_whole_file:
                _reject_file(tx, report, batch_id, summary, now, label)
            else:
                _apply_outcomes(tx, report, batch_id, summary, now, label)
            tx.save_report(
                ImportedReport(
                    sha256=digest,
                    name=name,
                    file_name=report.file_name,
                    id_flux=report.id_flux,
                    id_traitement=report.id_traitement,
                    batch_id=batch_id,
                    imported_at=now,
                    summary=summary.as_dict(),
                )
            )
        return summary


def _apply_outcomes(
    tx: Transaction,
    report: ProcessingReport,
    batch_id: str | None,
    summary: ImportSummary,
    now: datetime,
    label: str,
) -> None:
    current = tx.records([o.id_technique for o in report.outcomes])
    changes: list[Change] = []
    for outcome in report.outcomes:
        record = current.get(outcome.id_technique)
        if record is None:
            summary.unknown_ids.append(outcome.id_technique)
            continue
        change = apply_report(
            record,
            accepted=outcome.accepted,
            message=outcome.message,
            report_batch=batch_id,
            now=now,
            label=label,
        )
        if change.record is None:
            summary.unchanged.append(outcome.id_technique)
            continue
        current[outcome.id_technique] = change.record
        changes.append(change)
        (summary.accepted if outcome.accepted else summary.rejected).append(outcome.id_technique)
    tx.save(changes)
    if batch_id is not None:
        mentioned = {o.id_technique for o in report.outcomes}
        summary.not_mentioned = [r for r in tx.batch_member_ids(batch_id) if r not in mentioned]


def _reject_file(
    tx: Transaction,
    report: ProcessingReport,
    batch_id: str | None,
    summary: ImportSummary,
    now: datetime,
    label: str,
) -> None:
    error = "; ".join(
        f"{e.type or 'erreur'}: {e.message}" + (f" (ligne {e.line})" if e.line else "")
        for e in report.file_errors
    )
    summary.file_error = error
    if batch_id is None:
        raise AccrochageError(
            f"{summary.file}: the CDC rejected the whole file {report.file_name!r} ({error}), "
            "but no batch has that file name: cannot tell which records it held"
        )
    changes = []
    for record in tx.records_in_batch(batch_id):
        change = apply_report(
            record,
            accepted=False,
            message=f"file rejected: {error}",
            report_batch=batch_id,
            now=now,
            label=label,
            whole_file=True,
        )
        if change.record is None:
            summary.unchanged.append(record.record_id)
        else:
            changes.append(change)
            summary.rejected.append(record.record_id)
    tx.save(changes)
