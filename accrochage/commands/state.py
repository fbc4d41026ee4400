"""The state itself: `backup` while the service runs, `upgrade` of its schema."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import click

from accrochage.app import open_store, store_location
from accrochage.commands.core import existing_state
from accrochage.errors import StateNeedsMigration
from accrochage.state.base import BackupTaken

FORMAT = click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)


class BackupDest(click.ParamType):
    """A file, or a folder where the backup is named by the time. A path ending in `/` names
    a folder, which must exist: without this, `backup /backups/` with its disk unmounted
    wrote a file named `/backups` on the system disk (personal data where none is looked
    for), and every later backup failed on it."""

    name = "FILE|FOLDER"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Path:
        if isinstance(value, Path):
            return value
        text = str(value)
        if text.endswith(("/", os.sep)) and not Path(text).is_dir():
            self.fail(
                f"the folder {text} does not exist (a path ending in / names a folder): "
                "create it, or mount its disk, and run the backup again",
                param,
                ctx,
            )
        return Path(text)


def _backup_fields(taken: BackupTaken) -> dict[str, Any]:
    return {
        "path": str(taken.path),
        "bytes": taken.bytes,
        "records": taken.records,
        "batches": taken.batches,
        "migration": taken.migration,
        "seconds": round(taken.seconds, 3),
    }


def _backup_line(taken: BackupTaken) -> str:
    return (
        f"backup {taken.path}: {taken.bytes:,} bytes, {taken.records:,} record(s), "
        f"{taken.batches:,} batch(es), schema {taken.migration}, checked, in "
        f"{taken.seconds:.1f} s"
    )


@click.command("backup")
@click.argument("dest", type=BackupDest())
@click.option("--overwrite", is_flag=True, help="Replace DEST when it exists.")
@FORMAT
@click.pass_context
def backup(ctx: click.Context, dest: Path, overwrite: bool, fmt: str) -> None:
    """Copy the state to DEST (a file, or a folder where the copy is named by the time)
    while the service runs: one consistent snapshot, checked, durable under its name; the
    state's folder is only read. The outbox's files are not copied: `verify --repair` writes
    them again from the state."""
    settings = ctx.obj.settings
    existing_state(settings)
    taken = store_location(settings).backup(dest, overwrite=overwrite)
    if fmt == "json":
        click.echo(json.dumps(_backup_fields(taken)))
    else:
        click.echo(_backup_line(taken))


@click.command("upgrade")
@click.option(
    "--backup",
    "backup_dest",
    type=BackupDest(),
    help="Take a backup here first (a file, or a folder where it is named by the time).",
)
@click.option("--no-backup", is_flag=True, help="Upgrade without taking a backup first.")
@click.option("--overwrite", is_flag=True, help="Replace the --backup file when it exists.")
@FORMAT
@click.pass_context
def upgrade(
    ctx: click.Context, backup_dest: Path | None, no_backup: bool, overwrite: bool, fmt: str
) -> None:
    """Apply the schema migrations this version brings to the state, after a backup; refused
    while a service serves the state. Nothing to do: exit 0."""
    if (backup_dest is None) == (not no_backup):
        raise click.UsageError(
            "name where the backup taken before the upgrade goes (--backup FILE|FOLDER), "
            "or pass --no-backup"
        )
    if overwrite and backup_dest is None:
        raise click.UsageError("--overwrite replaces the --backup file: give --backup too")
    settings = ctx.obj.settings
    state = existing_state(settings)
    plan = store_location(settings).upgrade_plan()
    shown: dict[str, Any] = {"state": str(state), "applied": [], "backup": None}
    if not plan.pending:
        shown["migration"] = plan.applied[-1] if plan.applied else None
        _say_upgrade(fmt, shown, f"the state {state} is up to date ({shown['migration']})")
        return
    if plan.serving is not None:
        who = f"process {plan.serving}" if plan.serving > 0 else "a process starting now"
        raise StateNeedsMigration(
            f"a service ({who}) serves the state {state}, perhaps of the older version: stop "
            "it, run this upgrade again, then start the service with this version"
        )
    lines = []
    if backup_dest is not None:
        taken = store_location(settings).backup(backup_dest, overwrite=overwrite)
        shown["backup"] = _backup_fields(taken)
        lines.append(_backup_line(taken))
    started = time.monotonic()
    open_store(settings, service=True).close()
    shown["applied"] = list(plan.pending)
    shown["migration"] = plan.pending[-1]
    shown["seconds"] = round(time.monotonic() - started, 3)
    lines.append(
        f"upgraded {state}: {len(plan.pending)} migration(s) applied "
        f"({', '.join(plan.pending)}) in {shown['seconds']:.1f} s"
    )
    _say_upgrade(fmt, shown, "\n".join(lines))


def _say_upgrade(fmt: str, shown: dict[str, Any], text: str) -> None:
    click.echo(json.dumps(shown) if fmt == "json" else text)


def register(group: click.Group) -> None:
    group.add_command(backup)
    group.add_command(upgrade)
