"""`accrochage flush`: cut the batches that are due and write their files, XSD-checked."""

from __future__ import annotations

import sys

import click

from accrochage.commands.core import core_from
from accrochage.commands.ingest import scope_of
from accrochage.commands.output import output_refused, reason_of
from accrochage.errors import SchemaValidationError, StoreError
from accrochage.models.deadline import PARIS
from accrochage.models.vocabulary import CdcAction
from accrochage.streams.batching import Forced
from accrochage.streams.flush_report import (
    CutBatch,
    FailedBatch,
    FlushReport,
    WrittenBatch,
    superseded_why,
)
from accrochage.streams.revalidate import RevalidationReport


@click.command()
@click.option("--force", is_flag=True, help="Cut every pending record now, whatever is due.")
@click.option(
    "--certifier",
    "certifiers",
    multiple=True,
    metavar="KEY",
    help="With --force: only these certifiers' records are cut now (repeat for several); "
    "the others' when due, as always.",
)
@click.pass_context
def flush(ctx: click.Context, force: bool, certifiers: tuple[str, ...]) -> None:
    """Cut the batches that are due and write them to the outbox, XSD-checked.

    Each file is printed as it is written; a file missing from the outbox for a batch still
    to deposit is written again, byte for byte.
    """
    if certifiers and not force:
        raise click.UsageError("--certifier says whose records --force cuts now: give --force")
    forced: Forced = scope_of(ctx, certifiers) or force
    report = FlushReport(on_file=_print_file, on_cut=_print_cut)
    fault: BaseException | None = None
    with core_from(ctx, one_off=True) as core:
        try:
            _dates_come(core.revalidator().dates_come())
            plan = core.flusher.plan(report, force=forced)
            for batch_id in report.superseded:
                click.echo(f"superseded {batch_id}: {superseded_why(report, batch_id)}")
            core.flusher.write_planned(plan, report)
            core.flusher.rewrite_missing(report)
        except (StoreError, OSError, KeyboardInterrupt) as exc:
            if isinstance(exc, OSError) and output_refused(exc):
                # Its output refused (a cron log's full disk), not the flush's work: said as
                # for any command, never as "flush stopped: No space left on device", which
                # sent the operator to the outbox's disk.
                raise
            fault = exc  # `report.cut` holds only the batches whose transaction committed
    for note in report.notes:
        click.echo(f"note: {note}")
    if fault is None and not (report.cut or report.written or report.failed):
        click.echo("nothing due")
        _not_due(report)
    if isinstance(fault, KeyboardInterrupt):
        click.echo(
            "interrupted (Ctrl-C): every file printed above is written and recorded. Others may "
            "be in the outbox without being recorded yet: run `accrochage flush` before "
            "depositing any other file; it records or writes every batch cut, with the same "
            "names and bytes"
        )
        sys.exit(130)
    if fault is not None:
        click.echo(f"error: flush stopped: {reason_of(fault)}", err=True)
        sys.exit(1)
    if not report.ok:
        sys.exit(1)


def _not_due(report: FlushReport) -> None:
    """Why pending records were not cut, and how to cut them now: with the default
    `max_delay` (15m) a first `flush` right after an `ingest` writes nothing."""
    for waiting in report.not_due:
        at = waiting.due_at.astimezone(PARIS).isoformat(timespec="seconds")
        click.echo(
            f"  {waiting.certifier}: {waiting.pending} {waiting.waiting}, due at {at} "
            "(batching.max_delay), or sooner at max_records or within the deadline margin"
        )
    if report.not_due:
        click.echo("  `accrochage flush --force` cuts them now")


def _dates_come(report: RevalidationReport) -> None:
    """Records refused for a delivery date in the future are checked again before the cut:
    those whose day has come are valid now, and cut with the others."""
    for item in report.changed:
        if item.before == item.after:
            continue  # a date dropped, its findings the same: nothing the operator acts on
        click.echo(
            f"checked again {item.record_id} ({item.certifier}), refused for a delivery date "
            f"in the future: {item.before} -> {item.after}"
        )


def _print_cut(batch: CutBatch) -> None:
    withdraws = " SUPPRESSION" if batch.action is CdcAction.SUPPRESSION else ""
    click.echo(
        f"cut{withdraws} {batch.batch_id} ({batch.certifier}, {batch.passages} passages): "
        f"{batch.reason}"
    )


def _print_file(outcome: WrittenBatch | FailedBatch) -> None:
    if isinstance(outcome, WrittenBatch):
        click.echo(f"wrote {outcome.path} ({outcome.passages} passages, {outcome.bytes} bytes)")
    else:
        click.echo(f"FAILED {outcome.batch_id} ({outcome.certifier}): {outcome.error}", err=True)
        click.echo(f"  next: {failed_next(outcome.error)}", err=True)


def failed_next(error: str) -> str:
    """What the operator does about a batch whose file failed: it is tried again at each
    flush, which a schema error the data causes never passes."""
    if error.startswith(SchemaValidationError.__name__) and "idTechnique" not in error:
        return (
            "no record is named: what the configuration puts in the file (the emitter's or "
            "the certifier's identifiers, its certification codes) or the XSD of schema.xsd "
            "refuses it; fix the configuration, then run `accrochage flush` (a running "
            "service tries the file again less and less often: restart it)"
        )
    if error.startswith(SchemaValidationError.__name__):
        return (
            "the file is tried again (by a running service less and less often) and fails until "
            "the record its message "
            "names (idTechnique) changes: send a corrected event for it (it supersedes this "
            "batch, its other records are cut again), or take it out with `accrochage exclude "
            "ID --reason TEXT`; `accrochage show ID` shows the record"
        )
    return "the file is tried again at each flush: fix the cause above, then run `accrochage flush`"


def register(group: click.Group) -> None:
    group.add_command(flush)
