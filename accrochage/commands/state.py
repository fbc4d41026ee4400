"""The state itself: `backup` while the service runs, `restore` of a backup, `compact` of its
free space, `upgrade` of its schema."""

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
from accrochage.state.base import BackupTaken, Compacted, Restored
from accrochage.streams.lost_state import refuse_lost_state

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
        "last_change": taken.last_change,
        "seconds": round(taken.seconds, 3),
    }


def _backup_line(taken: BackupTaken) -> str:
    last = "" if taken.last_change is None else f", last change {taken.last_change}"
    return (
        f"backup {taken.path}: {taken.bytes:,} bytes, {taken.records:,} record(s), "
        f"{taken.batches:,} batch(es){last}, schema {taken.migration}, checked, in "
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
    them again from the state. Nor are the copies of the CDC's reports (`reports/` beside the
    state), which nothing writes again: copy that folder with the backups."""
    settings = ctx.obj.settings
    existing_state(settings)
    taken = store_location(settings).backup(dest, overwrite=overwrite)
    if fmt == "json":
        click.echo(json.dumps(_backup_fields(taken)))
        return
    click.echo(_backup_line(taken))
    reports = settings.paths.state.parent / "reports"
    if _holds_files(reports):
        click.echo(
            f"note: the copies of the CDC's reports in {reports} are not in the backup, and "
            "nothing writes them again (`evidence` and a restore's `import-report` need "
            "them): copy that folder with the backups"
        )


def _holds_files(folder: Path) -> bool:
    """Whether `folder` holds a file (temporary ones, with a leading dot, aside)."""
    try:
        return any(not p.name.startswith(".") for p in folder.iterdir())
    except OSError:  # none yet, or a folder this user may not list
        return False


@click.command("restore")
@click.argument("backup_file", metavar="BACKUP", type=click.Path(path_type=Path, dir_okay=False))
@FORMAT
@click.pass_context
def restore(ctx: click.Context, backup_file: Path, fmt: str) -> None:
    """Put BACKUP (a file `backup` wrote) in the state's place: checked first, refused while a
    service or a writer holds the state; the state it replaces is kept beside it
    (`<state>.replaced-<UTC time>`, with its -wal and -shm), never deleted."""
    done = store_location(ctx.obj.settings).restore(backup_file)
    if fmt == "json":
        click.echo(json.dumps(_restored_fields(done)))
        return
    click.echo(
        f"restored {done.backup} to {done.state}: {done.records:,} record(s), "
        f"{done.batches:,} batch(es), schema {done.migration}, checked, in {done.seconds:.1f} s"
    )
    if done.replaced is not None:
        click.echo(f"the state it replaced is kept as {done.replaced} (remove it once sure)")
    if done.last_change is not None:
        click.echo(
            f"its last change of a record was stored at {done.last_change}: what was stored "
            "after it is not in it (the events to send again are those sent since)"
        )
    if done.pending:
        click.echo(
            f"the backup lacks {len(done.pending)} migration(s) of this version: the next "
            "command that writes applies them (`accrochage upgrade --backup DEST` to do it now)"
        )
    for step in RESTORE_NEXT:
        click.echo(f"next: {step}")


RESTORE_NEXT = (
    "accrochage verify --repair (writes again the files the backup knows; sets aside, in "
    "outbox/<certifier>/unknown/, the files cut since, which must not be uploaded)",
    "accrochage doctor",
    "what was recorded since the backup is not in it: run `deposited` again for the files "
    "deposited since, `import-report` again for the reports imported since (copies in "
    "reports/ beside the state), send again the events sent since over HTTP or from files "
    "(a Kafka worker reads them again from the backup's offsets), and redo the exclude, "
    "retry, reinstate and correction requests entered since",
)


def _restored_fields(done: Restored) -> dict[str, Any]:
    return {
        "backup": str(done.backup),
        "state": str(done.state),
        "replaced": None if done.replaced is None else str(done.replaced),
        "records": done.records,
        "batches": done.batches,
        "migration": done.migration,
        "last_change": done.last_change,
        "pending": list(done.pending),
        "seconds": round(done.seconds, 3),
        "next": list(RESTORE_NEXT),
    }


@click.command("compact")
@FORMAT
@click.pass_context
def compact(ctx: click.Context, fmt: str) -> None:
    """Give back to the disk the space deleted data left in the state (a flood of unusable
    events dismissed, then `forget-dismissed`): the state is written again without it. Stop
    the service first: refused while a service or a writer holds the state, and when its
    disk has less free than the state's data (it is written again beside it)."""
    settings = ctx.obj.settings
    existing_state(settings)
    done = store_location(settings).compact()
    if fmt == "json":
        click.echo(json.dumps(_compacted_fields(done)))
        return
    click.echo(
        f"compacted {done.state}: {done.bytes_before:,} -> {done.bytes_after:,} bytes "
        f"({_freed(done):,} given back to the disk), in {done.seconds:.1f} s"
    )


def _freed(done: Compacted) -> int:
    return max(done.bytes_before - done.bytes_after, 0)


def _compacted_fields(done: Compacted) -> dict[str, Any]:
    return {
        "state": str(done.state),
        "bytes_before": done.bytes_before,
        "bytes_after": done.bytes_after,
        "freed": _freed(done),
        "seconds": round(done.seconds, 3),
    }


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
    refuse_lost_state(settings)  # a file of no bytes: no state, made an empty one here
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
    group.add_command(restore)
    group.add_command(compact)
    group.add_command(upgrade)
