"""The operator's hand on records and files: deposited, archived, retry, exclude, include,
reinstate, support-applied, dismiss-unusable.

Each item is answered on its own line; one refused item never stops the others; the exit
code is 1 when any was refused.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from datetime import date, datetime, time
from pathlib import Path

import click

from accrochage.commands.core import core_from
from accrochage.commands.options import DAY, SENDER_HELP, said_if_unknown, sender_option
from accrochage.models.deadline import PARIS
from accrochage.models.vocabulary import CdcReason, values
from accrochage.streams.item_outcomes import ItemOutcome
from accrochage.streams.unusable import dismiss_open
from accrochage.streams.unusable import dismiss_unusable as dismiss
from accrochage.streams.unusable import forget_dismissed as forget


def report(outcomes: Sequence[ItemOutcome]) -> None:
    for outcome in outcomes:
        click.echo(str(outcome), err=not outcome.done)
    if not outcomes:
        click.echo("nothing to do")
    if any(not outcome.done for outcome in outcomes):
        sys.exit(1)


def required_text(text: str, refused: str) -> str:
    """An option's text, stripped; a usage error (`refused`) when it is blank: a reason or a
    note kept in a history says something."""
    if not text.strip():
        raise click.UsageError(refused)
    return text.strip()


@click.command()
@click.argument("refs", nargs=-1, required=True)
@click.pass_context
def deposited(ctx: click.Context, refs: tuple[str, ...]) -> None:
    """Record that these files were uploaded to the CDC portal.

    A REF is the file's name or path (as `batches --to-deposit` lists it), its batch id, or
    the first 8 characters or more of the id.
    """
    with core_from(ctx, existing=True) as core:
        outcomes = core.operations.deposited(refs)
    report(outcomes)


@click.command()
@click.argument("refs", nargs=-1, required=True)
@click.option(
    "--to",
    type=click.Path(exists=True, file_okay=False, resolve_path=True, path_type=Path),
    help="The folder the files were archived to (each checked there); without: deleted.",
)
@click.pass_context
def archived(ctx: click.Context, refs: tuple[str, ...], to: Path | None) -> None:
    """Record that these settled files left the outbox for good (the DPO's retention).

    Only a reported batch's file (in done/) or a superseded one's: with --to, each must be
    in that folder with the bytes released; without, deleted (in no outbox folder). `verify`
    and the batch timer no longer look for them in the outbox; `evidence` reads them in the
    archive. A REF is as for `deposited`.
    """
    outbox = Path(os.path.realpath(ctx.obj.settings.paths.outbox))
    if to is not None and (to == outbox or outbox in to.parents):
        raise click.UsageError(f"--to {to} is in the outbox ({outbox}): give the archive's folder")
    with core_from(ctx, existing=True) as core:
        outcomes = core.operations.archived(refs, to)
    report(outcomes)


@click.command()
@click.argument("record_ids", nargs=-1)
@click.option(
    "--batch",
    "batch_ref",
    help="The rejected records of this file, and those its report left out (name, path or id).",
)
@click.option(
    "--all-rejected",
    is_flag=True,
    help="Every rejected record (with --certifier or --reason: those only).",
)
@click.option(
    "--certifier",
    callback=said_if_unknown,
    help="With --batch or --all-rejected: only this certifier's records.",
)
@click.option(
    "--reason",
    type=click.Choice(values(CdcReason)),
    help="With --batch or --all-rejected: only records rejected for this class of reason.",
)
@click.pass_context
def retry(
    ctx: click.Context,
    record_ids: tuple[str, ...],
    batch_ref: str | None,
    all_rejected: bool,
    certifier: str | None,
    reason: str | None,
) -> None:
    """Put rejected records back to pending, without new content (when the cause was fixed).

    RECORD_IDs come from `records --status rejected` or `import-report`'s output. An identity
    rejection is retried too, with a warning: the CDC will reject it again unless the holder's
    data changed on its side; send a corrected event instead.
    """
    chosen = sum((bool(record_ids), batch_ref is not None, all_rejected))
    if chosen != 1:
        raise click.UsageError("give RECORD_IDs, or --batch REF, or --all-rejected (one of them)")
    if record_ids and (certifier or reason):
        raise click.UsageError("--certifier and --reason go with --batch or --all-rejected")
    with core_from(ctx, existing=True) as core:
        if record_ids:
            outcomes = core.operations.retry(record_ids)
        else:
            outcomes = core.operations.retry_rejected(
                batch_ref=batch_ref,
                certifier=certifier,
                reason=CdcReason(reason) if reason else None,
            )
    report(outcomes)


@click.command()
@click.argument("record_ids", nargs=-1, required=True)
@click.option(
    "--reason",
    required=True,
    help="Why the law does not ask for these records (kept in their history).",
)
@click.pass_context
def exclude(ctx: click.Context, record_ids: tuple[str, ...], reason: str) -> None:
    """Take invalid, pending or rejected records out of the obligation (`include` undoes it)."""
    if not reason.strip():
        raise click.UsageError("--reason must say why")
    with core_from(ctx, existing=True) as core:
        outcomes = core.operations.exclude(record_ids, reason.strip())
    report(outcomes)


@click.command()
@click.argument("record_ids", nargs=-1, required=True)
@click.pass_context
def include(ctx: click.Context, record_ids: tuple[str, ...]) -> None:
    """Put excluded records back: each gets the status of its current content."""
    with core_from(ctx, existing=True) as core:
        outcomes = core.operations.include(record_ids)
    report(outcomes)


@click.command()
@click.argument("record_ids", nargs=-1, required=True)
@click.option(
    "--reason",
    required=True,
    help="Why the revocation was a mistake, and who said so (kept in their history).",
)
@click.pass_context
def reinstate(ctx: click.Context, record_ids: tuple[str, ...], reason: str) -> None:
    """Undo revocations an exam platform sent by mistake.

    A withdrawn record gets the status of its content back (pending: sent at the next cut,
    again if the CDC had deleted it); one flagged revocation_pending loses the flag, unless
    its SUPPRESSION file is deposited (import that file's report first; one not deposited
    yet is superseded, never to upload). The revocation replayed
    (its event_id) changes nothing; a new revocation revokes again.
    """
    if not reason.strip():
        raise click.UsageError("--reason must say why")
    with core_from(ctx, existing=True) as core:
        outcomes = core.operations.reinstate(record_ids, reason.strip())
    report(outcomes)


@click.command("support-applied")
@click.argument("record_ids", nargs=-1, required=True)
@click.option(
    "--note",
    required=True,
    help="What the CDC's support did, and its ticket or reference (kept in the history).",
)
@click.pass_context
def support_applied(ctx: click.Context, record_ids: tuple[str, ...], note: str) -> None:
    """Record that the CDC's support applied these records' correction or withdrawal.

    Schema 1.1.2 has no SUPPRESSION: an accepted record corrected or revoked stays outstanding
    (`accrochage show ID` says what to ask the support). Once the support did it, a revoked
    record becomes withdrawn, a corrected one accepted with its correction as its content.
    """
    said = required_text(note, "--note must say what the support did")
    with core_from(ctx, existing=True) as core:
        outcomes = core.operations.support_applied(record_ids, said)
    report(outcomes)


@click.command("dismiss-unusable")
@click.argument("ids", nargs=-1)
@click.option(
    "--note",
    required=True,
    help="How it was dealt with (sent again fixed, a test, nothing to send): kept with it.",
)
@click.option(
    "--all-open", is_flag=True, help="Every one not dealt with yet, instead of IDS (a flood)."
)
@click.option(
    "--certifier",
    callback=said_if_unknown,
    help="With --all-open: those naming this certifier only (its key).",
)
@click.option("--sender", callback=sender_option, help=f"With --all-open: {SENDER_HELP}")
@click.pass_context
def dismiss_unusable(
    ctx: click.Context,
    ids: tuple[str, ...],
    note: str,
    all_open: bool,
    certifier: str | None,
    sender: str | None,
) -> None:
    """Mark unusable events dealt with: kept, out of `unusable` (but `--all`) and out of the
    summary's count. IDS are those `accrochage unusable` lists; `--all-open` takes every one
    not dealt with yet (`--certifier`: of that certifier; `--sender`: that platform's token's),
    a platform's flood."""
    if bool(ids) == all_open:
        raise click.UsageError("name the IDS to dismiss, or --all-open (not both)")
    if (certifier is not None or sender is not None) and not all_open:
        raise click.UsageError(
            "--certifier and --sender go with --all-open: IDS name the events already"
        )
    said = required_text(note, "--note must say how they were dealt with")
    with core_from(ctx, existing=True) as core:
        if all_open:
            count = dismiss_open(core.store, core.clock, certifier, said, sender)
            click.echo(f"{count} unusable event(s) dismissed (kept: unusable --all)")
            return
        outcomes = dismiss(core.store, core.clock, ids, said)
    report(outcomes)


@click.command("forget-dismissed")
@click.option(
    "--dismissed-before",
    type=DAY,
    default=None,
    help="Those dismissed before this day (Paris) instead: a day after today forgets them all.",
)
@click.pass_context
def forget_dismissed(ctx: click.Context, dismissed_before: date | None) -> None:
    """Forget the raw input of the unusable events dismissed for longer than
    state.forget_dismissed_after (90 days unless configured): it may name a person. Their rows
    stay (`unusable --all`), `raw` empty and `forgotten_at` set. The services do it once a
    day; this does it now."""
    with core_from(ctx, existing=True) as core:
        if dismissed_before is None:
            before = core.clock.now() - core.settings.state.forget_dismissed_after
        else:
            before = datetime.combine(dismissed_before, time(0), PARIS)
        forgotten = forget(core.store, core.clock, before)
    cut = before.astimezone(PARIS)
    click.echo(
        f"{forgotten} unusable event(s) dismissed before {cut:%Y-%m-%d %H:%M} (Paris): "
        "raw input forgotten"
    )


def register(group: click.Group) -> None:
    for command in (
        deposited,
        archived,
        retry,
        exclude,
        include,
        reinstate,
        support_applied,
        dismiss_unusable,
        forget_dismissed,
    ):
        group.add_command(command)
