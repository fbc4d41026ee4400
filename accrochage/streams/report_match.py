"""Which batch a processing report answers: the one its idFlux or nomFichier names, the one
the operator names (`--batch`), or none (applied by idTechnique, on the operator's word when
it names records here)."""

from __future__ import annotations

from accrochage.errors import AccrochageError
from accrochage.models.batch import not_one_batch
from accrochage.sinks.reports import ProcessingReport
from accrochage.state.base import Transaction


def answered_batch(
    tx: Transaction, report: ProcessingReport, named: list[str], batch_ref: str | None
) -> str | None:
    """The batch the report answers: `batch_ref` when the operator names one, else the one
    the report names (`named`, from `batches_named`); refused when it names two."""
    if batch_ref is not None:
        return _named_batch(tx, batch_ref, named)
    if len(named) > 1:
        raise AccrochageError(
            f"the report's idFlux {report.id_flux!r} and its nomFichier "
            f"{report.file_name!r} name two batches ({', '.join(named)}): which one it "
            "answers cannot be told, and applied to the wrong one it would settle that "
            "batch; check the report, then `import-report FILE --batch REF`"
        )
    return named[0] if named else None


def unmatched_report(tx: Transaction, report: ProcessingReport) -> str:
    """Why a per-passage report whose idFlux and nomFichier name no batch is not applied
    without the operator's word.

    Every real report of that kind carries the idFlux of the file it answers (SPEC 9.1), so
    one that matches no batch answers a file accrochage did not write: another tool's or
    another emitter's, or one altered by hand. Applied by idTechnique alone, a KO about
    someone else's record of the same id would mark ours rejected, and a file of ours
    written and not yet deposited would be superseded for records it never settled."""
    ids = [outcome.id_technique for outcome in report.outcomes]
    known = tx.records(ids)
    flux = f"idFlux {report.id_flux!r}" if report.id_flux else "no idFlux"
    if not known:
        # It changed nothing and said "0 accepted, 0 rejected", exit 0: an operator who
        # downloaded another certifier's report took it as applied.
        return (
            f"the report ({flux}, nomFichier {report.file_name!r}) matches no file "
            f"accrochage wrote, and none of its {len(ids)} idTechnique(s) is a record here: "
            "nothing was applied. It is not this tracker's report (another certifier's, or "
            "another state's?): check which file it answers on the CDC's portal"
        )
    batches = sorted({r.batch_id for r in known.values() if r.batch_id is not None})
    where = ""
    if batches:
        shown = ", ".join(batches[:5]) + (
            f" and {len(batches) - 5} more" if len(batches) > 5 else ""
        )
        where = f" (in batch{'es' if len(batches) > 1 else ''} {shown})"
    return (
        f"the report ({flux}, nomFichier {report.file_name!r}) matches no file accrochage "
        f"wrote, yet {len(known)} of its {len(ids)} idTechnique(s) are "
        f"records here{where}: applied by idTechnique alone, it would settle them whatever "
        "file they were sent in. If it answers a file of yours, import it with `--batch "
        "<batch id or file name>`; if it is the CDC's word on these very records, sent "
        "another way, with `--by-id`; otherwise it is not this tracker's report: leave it"
    )


def batches_named(tx: Transaction, report: ProcessingReport) -> list[str]:
    """The batches the report names, by its idFlux and by its file name (one, when they
    agree; none, for a file renamed before its upload)."""
    by_flux = tx.find_batch(report.id_flux, None) if report.id_flux else None
    by_name = tx.find_batch(None, report.file_name)
    return list(dict.fromkeys(b for b in (by_flux, by_name) if b is not None))


def _named_batch(tx: Transaction, ref: str, named: list[str]) -> str:
    """The one batch `ref` names; refused when it names none or several, or another batch
    than the report itself names (by its idFlux or its file name)."""
    matching = tx.batch_ids_matching(ref)
    why = not_one_batch(matching)
    if why is not None:
        raise AccrochageError(f"--batch {ref!r} names {why}: give a batch id or a file name")
    if named and matching[0] not in named:
        raise AccrochageError(
            f"the report names batch {' or '.join(named)} (by its idFlux or file name), not "
            f"{matching[0]}: import it without --batch"
        )
    return matching[0]
