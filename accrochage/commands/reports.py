"""`accrochage import-report`: the CDC's processing reports applied, and what to do next."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from accrochage.commands.core import core_from
from accrochage.commands.output import masked
from accrochage.errors import AccrochageError, StoreError
from accrochage.models.cdc import ADVICE
from accrochage.models.vocabulary import CdcAction, CdcReason, RecordStatus


@click.command("import-report")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--batch",
    "batch_ref",
    metavar="BATCH",
    help="The batch (id or file name) the one FILE answers, when the report names a file "
    "accrochage cannot match (renamed before its upload).",
)
@click.option(
    "--by-id",
    is_flag=True,
    help="Apply a report whose idFlux and nomFichier match no file accrochage wrote by "
    "idTechnique alone: it is the CDC's word on these records, sent another way.",
)
@click.pass_context
def import_report(
    ctx: click.Context, files: tuple[Path, ...], batch_ref: str | None, by_id: bool
) -> None:
    """Apply CDC processing reports (accusés de traitement) to the records.

    Each FILE is a report downloaded from the CDC portal. A file that cannot be applied is
    reported and the others are still applied (exit 1 when any failed).
    """
    if batch_ref is not None and len(files) != 1:
        raise click.UsageError("--batch names the batch of one report: give one FILE")
    if batch_ref is not None and by_id:
        raise click.UsageError("--batch and --by-id exclude each other: give one")
    failed = 0
    with core_from(ctx, existing=True) as core:
        for path in files:
            try:
                result = core.feedback.import_report(path, batch_ref, by_id=by_id)
            except StoreError:
                raise
            except AccrochageError as exc:
                failed += 1
                said = str(exc)  # most name the file already
                named = said.startswith(f"{path.name}: ") or said.startswith(f"{path}: ")
                click.echo(f"error: {said if named else f'{path.name}: {said}'}", err=True)
                continue
            withdrawal = result.action == CdcAction.SUPPRESSION
            click.echo(
                f"{path.name}: {'SUPPRESSION ' if withdrawal else ''}batch "
                f"{result.batch_id or 'unknown'}: "
                f"{len(result.accepted)} accepted, {len(result.rejected)} rejected, "
                f"{len(result.unchanged)} unchanged"
            )
            if result.file_error:
                click.echo(f"  whole file rejected: {masked(result.file_error)}")
            apart = {*result.elsewhere, *result.waiting}
            settled = [r for r in result.unchanged if r not in apart]
            for label, ids in (
                ("unknown idTechnique", result.unknown_ids),
                ("records the batch did not carry, left as they are", result.elsewhere),
                ("settled before, this report's outcome not applied (accrochage show)", settled),
                ("not mentioned, status kept", result.not_mentioned),
            ):
                if ids:
                    click.echo(
                        f"  {label} ({len(ids)}): {', '.join(ids[:20])}"
                        + (" ..." if len(ids) > 20 else "")
                    )
            if result.not_mentioned and result.batch_id and not result.file_error:
                click.echo(
                    "  the CDC's report did not list those: they never reached it, or its "
                    f"report missed them; `accrochage retry --batch {result.batch_id}` sends "
                    "them again (with the batch's rejected records)"
                )
            for note in result.notes:
                click.echo(f"  note: {note}")
            if withdrawal:
                echo_refused_suppressions(result.rejections)
            else:
                echo_rejections(result.rejections, result.batch_id)
            if result.requests_closed:
                click.echo(
                    f"  correction requests closed, corrected data accepted "
                    f"({len(result.requests_closed)}): {', '.join(result.requests_closed)}"
                )
            if result.kept_as:
                click.echo(f"  a copy of the report is kept at {result.kept_as}")
    if failed:
        sys.exit(1)


SHOWN_PER_REASON = 20


def echo_rejections(rejections: list[dict[str, str | None]], batch_id: str | None) -> None:
    """The rejected ids with the CDC's messages, grouped by class, and what to do next."""
    batch = batch_id or "REF"
    withdrawn = [r["record_id"] for r in rejections if r.get("status") == RecordStatus.WITHDRAWN]
    if withdrawn:
        click.echo(
            f"  rejected, revoked meanwhile ({len(withdrawn)}): withdrawn, nothing to send: "
            + ", ".join(str(i) for i in withdrawn[:SHOWN_PER_REASON])
            + (" ..." if len(withdrawn) > SHOWN_PER_REASON else "")
        )
    groups: dict[str, list[dict[str, str | None]]] = {}
    for rejection in rejections:
        if rejection.get("status") != RecordStatus.WITHDRAWN:
            reason = rejection["cdc_reason"] or CdcReason.OTHER.value
            groups.setdefault(reason, []).append(rejection)
    for reason, items in sorted(groups.items()):
        advice = ADVICE[CdcReason(reason)].replace("--batch REF", f"--batch {batch}")
        click.echo(f"  rejected, {reason} ({len(items)}): {advice}")
        for item in items[:SHOWN_PER_REASON]:
            taken_over = item.get("status") == RecordStatus.PENDING  # its stored correction
            after = " (its stored correction is pending: it goes in the next file)"
            said = masked(str(item["message"]))
            click.echo(f"    {item['record_id']}: {said}{after if taken_over else ''}")
        if len(items) > SHOWN_PER_REASON:
            click.echo(
                f"    ... and {len(items) - SHOWN_PER_REASON} more: "
                f"accrochage records --status rejected --reason {reason}"
            )
    identity = set(groups) & {
        CdcReason.IDENTITY_NOT_FOUND.value,
        CdcReason.IDENTITY_AMBIGUOUS.value,
    }
    others = set(groups) - identity - {CdcReason.ALREADY_EXISTS.value}
    if groups and not identity:
        click.echo(
            "  next: fix the data and send corrected events, or `accrochage retry --batch "
            f"{batch}` when the cause was on the CDC's side"
        )
    elif identity and others:
        # `retry --batch` would send the identity rejections again as they are: refused again.
        click.echo(
            "  next: send corrected events for the identity rejections, and `accrochage retry "
            "ID...` the others once their cause is fixed"
        )


def echo_refused_suppressions(rejections: list[dict[str, str | None]]) -> None:
    for item in rejections[:SHOWN_PER_REASON]:
        click.echo(f"  suppression refused, {item['record_id']}: {masked(str(item['message']))}")
    if len(rejections) > SHOWN_PER_REASON:
        click.echo(f"    ... and {len(rejections) - SHOWN_PER_REASON} more")
    held = [item for item in rejections if item.get("cdc_held_as")]
    for item in held[:SHOWN_PER_REASON]:
        click.echo(
            f"  next: the CDC holds {item['record_id']} under idTechnique {item['cdc_held_as']}: "
            f"no SUPPRESSION can reach it; ask the CDC's support (accrochage show "
            f"{item['record_id']} says what), then accrochage support-applied"
        )
    again = [item for item in rejections if not item.get("cdc_held_as")]
    if again:
        ids = " ".join(str(item["record_id"]) for item in again[:3])
        more = " ..." if len(again) > 3 else ""
        click.echo(
            "  next: the CDC still holds these passages; once the cause is fixed, "
            f"`accrochage retry {ids}{more}` (or --all-rejected) cuts their SUPPRESSION again"
        )


def register(group: click.Group) -> None:
    group.add_command(import_report)
