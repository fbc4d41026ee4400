"""The CDC feedback loop: files deposited, processing reports imported, rejections retried."""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path

from accrochage.errors import AccrochageError
from accrochage.models.batch import BatchInfo, ReleasedFile
from accrochage.models.deadline import Clock
from accrochage.models.record import AWAITING_REPORT
from accrochage.models.vocabulary import BATCHES_TO_WRITE, RELEASED, BatchState
from accrochage.sinks.base import BatchSink
from accrochage.sinks.reports import ProcessingReport, parse_report, read_report_bytes
from accrochage.state.base import ImportedReport, Store, Transaction
from accrochage.streams.left_behind import move_left_behind
from accrochage.streams.outcomes import OutcomeContext
from accrochage.streams.redecode import Decodes
from accrochage.streams.report_copies import keep_copy
from accrochage.streams.report_match import answered_batch, batches_named, unmatched_report
from accrochage.streams.report_outcomes import ImportSummary, apply_outcomes, reject_file
from accrochage.streams.verify import sha256_of
from accrochage.streams.withdraw import SupersededMove, supersede_if_due


class Feedback:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        sink: BatchSink,
        decode: Decodes,
        archive: Path | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.sink = sink
        self.decode = decode
        """Decodes a stored correction again, the day it becomes a record's content."""
        self.archive = archive
        """A folder keeping a copy of every report imported (the CDC's word, for audits)."""

    def _now(self) -> datetime:
        return self.clock.now().replace(microsecond=0)

    def import_report(
        self, path: Path, batch_ref: str | None = None, *, by_id: bool = False
    ) -> ImportSummary:
        """Apply a report file, its copy kept first: a crash between the two never leaves an
        applied report without the copy `evidence` hands over (importing it again, a no-op on
        the state, puts a copy back in any case)."""
        data = read_report_bytes(path)  # read once: the size and kind checked first
        report = parse_report(data, source=str(path))
        kept = keep_copy(self.archive, data, path.name) if self.archive is not None else None
        summary = self.apply_report(report, data, path.name, batch_ref, by_id=by_id)
        if summary.already_imported:
            summary.notes += move_left_behind(self.store, self.sink)
        if kept is not None:
            summary.kept_as = str(kept)
        return summary

    def import_report_bytes(self, data: bytes, name: str, *, by_id: bool = False) -> ImportSummary:
        return self.apply_report(parse_report(data, source=name), data, name, by_id=by_id)

    def apply_report(
        self,
        report: ProcessingReport,
        data: bytes,
        name: str,
        batch_ref: str | None = None,
        *,
        by_id: bool = False,
    ) -> ImportSummary:
        """`batch_ref`: the batch the report answers, named by the operator (a batch id, a
        prefix of one, or a file name) when its nomFichier matches none. `by_id`: the
        operator confirms that a report matched to no file is applied by idTechnique alone
        (`unmatched_report`)."""
        digest = hashlib.sha256(data).hexdigest()
        now = self._now()
        with self.store.transaction() as tx:
            named = batches_named(tx, report)
            if tx.report_imported(digest):  # whichever way it was matched then
                return _already_imported(
                    name,
                    named[0] if len(named) == 1 else None,
                    "this report was already imported: nothing changed",
                )
            batch_id = answered_batch(tx, report, named, batch_ref)
            if report.id_traitement and tx.processing_imported(
                report.id_traitement, batch_id, report.file_name
            ):
                # The same report in other bytes (saved again, line endings changed in
                # transit): applied again, it would move records that moved on since.
                return _already_imported(
                    name,
                    batch_id,
                    f"a report of idTraitement {report.id_traitement} for this file was "
                    "already imported (the same report, its bytes changed since): nothing "
                    "changed",
                )
            if batch_id is None and not report.rejected_whole_file and not by_id:
                raise AccrochageError(unmatched_report(tx, report))
            if batch_id is None:
                _one_certifier(tx, report, name)
            summary = ImportSummary(name, batch_id)
            if batch_id is None:
                summary.notes.append(
                    f"no batch matches nomFichier {report.file_name!r} / idFlux "
                    f"{report.id_flux!r}: outcomes are applied by idTechnique only"
                )
            label = f"{name} (idTraitement {report.id_traitement})"
            batch = tx.batch(batch_id) if batch_id is not None else None
            if batch is not None:
                summary.action = batch.action.value
                if batch_id != report.id_flux and batch.file_name != report.file_name:
                    how = (
                        f"--batch {batch_ref}"
                        if batch_ref is not None
                        else "the batch id the name carries"
                    )
                    summary.notes.append(
                        f"nomFichier {report.file_name!r} is not the name accrochage gave the "
                        f"file ({batch.file_name}): matched by {how}"
                    )
            ctx = OutcomeContext(tx, batch, now, label, self.decode)
            left: set[str] = set()
            if report.rejected_whole_file:
                closures = reject_file(ctx, report, summary)
            else:
                closures, left = apply_outcomes(ctx, report, summary)
            out_of_date = self._supersede_left(tx, sorted(left), now, summary)
            if closures:
                summary.requests_closed = tx.close_correction_requests(closures, now, label)
            settled = [batch_id] if batch_id is not None else []
            if batch_id is None:
                settled = _settled_batches(tx, [*summary.accepted, *summary.rejected])
                summary.notes += [f"batch {b}: all its records settled, reported" for b in settled]
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
            moves = []
            for done in settled:
                move = self._file_done(tx, done, now)
                moves += [move] if move is not None else []
        self.sink.move_recorded(moves, "reported")
        self.sink.move_recorded(out_of_date, "superseded")
        return summary

    def _supersede_left(
        self, tx: Transaction, batch_ids: list[str], now: datetime, summary: ImportSummary
    ) -> list[SupersededMove]:
        """Files written and never deposited that carried records this report (on an earlier
        file, uploaded anyway) settled: out of date, superseded; their other records are cut
        again. The moves of their files, to make once committed."""
        moves = []
        for batch_id in batch_ids:
            done, move, _ = supersede_if_due(tx, batch_id, self.sink, self.decode, now)
            if done:
                summary.notes.append(
                    f"batch {batch_id}, written and never deposited, carried records this "
                    "report settled: superseded (not to be deposited), its other records are "
                    "cut again"
                )
                moves += [move] if move is not None else []
        return moves

    def _file_done(self, tx: Transaction, batch_id: str, now: datetime) -> tuple[Path, Path] | None:
        """Mark the batch reported; its file (if released) belongs in `done/` from now on."""
        batch = tx.batch(batch_id)
        assert batch is not None
        if batch.state in BATCHES_TO_WRITE:
            self._record_found(tx, batch, now)
            batch = tx.batch(batch_id)
            assert batch is not None
            if batch.state in BATCHES_TO_WRITE:
                tx.batch_reported(batch_id, None)
                return None
        if batch.state not in RELEASED:
            return None
        if batch.file_path is None:
            tx.batch_reported(batch_id, None)
            return None
        target = self.sink.place(batch.certifier, batch.file_name, BatchState.REPORTED)
        tx.batch_reported(batch_id, target)
        return batch.file_path, target

    def _record_found(self, tx: Transaction, batch: BatchInfo, now: datetime) -> None:
        """A report for a batch never recorded written: its file was released, then the
        process died before the commit, and the operator uploaded it anyway. The file found
        is recorded as written, so that it moves to `done/` and is never offered again."""
        found = self.sink.find(batch.certifier, batch.file_name)
        if found is None:
            return
        passages = len(tx.batch_member_ids(batch.batch_id))
        released = ReleasedFile(found, passages, found.stat().st_size, sha256_of(found))
        tx.batch_written(batch.batch_id, released, now)


def _settled_batches(tx: Transaction, record_ids: list[str]) -> list[str]:
    """The released batches of these records that wait for no report any more: a report
    matched to no batch (a file renamed before its upload) settled every one of their records.
    Left waiting, they would be counted unreported, and alerted on, for ever."""
    batch_ids = {r.batch_id for r in tx.records(record_ids).values() if r.batch_id is not None}
    settled = []
    for batch_id in sorted(batch_ids):
        info = tx.batch(batch_id)
        if info is None or info.state not in (BatchState.WRITTEN, BatchState.DEPOSITED):
            continue
        if not any(r.status in AWAITING_REPORT for r in tx.records_in_batch(batch_id)):
            settled.append(batch_id)
    return settled


def _already_imported(name: str, batch_id: str | None, note: str) -> ImportSummary:
    summary = ImportSummary(name, batch_id)
    summary.already_imported = True
    summary.notes.append(note)
    return summary


def _one_certifier(tx: Transaction, report: ProcessingReport, name: str) -> None:
    """A report applied by idTechnique alone answers one file, and a file holds one
    certifier's passages: one whose ids are records of several certifiers is no report of
    theirs (a file edited, or reports joined), and applying it would move each one's
    records on another's word."""
    ids = [o.id_technique for o in report.outcomes]
    counts: dict[str, int] = {}
    for record in tx.records(ids).values():
        key = record.certifier or "?"
        counts[key] = counts.get(key, 0) + 1
    if len(counts) > 1:
        said = ", ".join(f"{key} ({n})" for key, n in sorted(counts.items()))
        raise AccrochageError(
            f"{name} names records of several certifiers: {said}; a CDC report answers one "
            "file, which holds one certifier's passages: nothing applied. Check the report "
            "with the CDC, or apply each certifier's part as a report of its own"
        )
