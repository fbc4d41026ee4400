"""Commands over the outbox's files: verify [--repair]."""

from __future__ import annotations

import sys

import click

from accrochage.commands.core import core_from
from accrochage.streams.strays import StrayFile
from accrochage.streams.verify import FileIssue, OutboxVerifier


def _line(issue: FileIssue) -> str:
    head = f"{issue.batch_id} ({issue.certifier}, {issue.state}) {issue.path}: {issue.problem}"
    if issue.repaired:
        return f"{head}; repaired (same bytes as recorded)"
    if issue.repair_error is not None:
        return f"{head}; NOT repaired: {issue.repair_error}"
    if issue.left_at is not None:
        return f"{head}; run `accrochage verify --repair` (or `accrochage flush`) to move it back"
    return f"{head}; run `accrochage verify --repair` to write it again"


def _stray_line(stray: StrayFile) -> str:
    head = f"{stray.path}: {stray.why}"
    if stray.set_aside_to is not None:
        return f"{head}; moved to {stray.set_aside_to}"
    if stray.error is not None:
        return f"{head}; NOT moved: {stray.error}"
    return f"{head}; `accrochage verify --repair` moves it to {stray.certifier}/unknown/"


@click.command()
@click.option(
    "--repair",
    is_flag=True,
    help=(
        "Write every missing or altered file again from its frozen batch (same bytes), and "
        "move the files the state does not know out of those to upload (to <certifier>/unknown/)."
    ),
)
@click.pass_context
def verify(ctx: click.Context, repair: bool) -> None:
    """Check every released file against its recorded size and sha256, and that the files to
    upload are all the state's; exit 1 on any problem."""
    with core_from(ctx, one_off=True, existing=True) as core:
        report = OutboxVerifier(core.store, core.flusher.sink).verify(repair=repair)
    for issue in report.issues:
        click.echo(_line(issue), err=not issue.repaired)
    for stray in report.strays:
        click.echo(_stray_line(stray), err=stray.set_aside_to is None)
    repaired = sum(issue.repaired for issue in report.issues)
    moved = sum(stray.set_aside_to is not None for stray in report.strays)
    click.echo(
        f"{report.checked} released file(s) checked: {len(report.issues)} missing or altered"
        + (f", {repaired} repaired" if repair else "")
        + (
            f"; {len(report.strays)} file(s) to upload the state does not know"
            if report.strays
            else ""
        )
        + (f", {moved} moved to unknown/" if repair and report.strays else "")
    )
    if not report.ok:
        sys.exit(1)


def register(group: click.Group) -> None:
    group.add_command(verify)
