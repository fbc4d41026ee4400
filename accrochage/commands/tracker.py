"""Commands over the state: ingest, flush, outstanding, summary, deposited, import-report, retry."""

from __future__ import annotations

import codecs
import csv
import io
import json
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any, NoReturn

import click

from accrochage.app import Core, build_core
from accrochage.errors import AccrochageError, ConfigError, StoreError
from accrochage.models.deadline import paris_today
from accrochage.models.vocabulary import RecordStatus, values
from accrochage.state import queries
from accrochage.streams.files import AUTO, open_events
from accrochage.streams.flush import FlushReport
from accrochage.streams.ingest import Incoming, IngestResult

CHUNK = 500
SHOWN_PROBLEMS = 20


@contextmanager
def core_from(
    ctx: click.Context, *, one_off: bool = False, existing: bool = False
) -> Iterator[Core]:
    """`existing`: a command that only reads or updates records refuses a state that does not
    exist (a mistyped paths.state would otherwise report an empty, brand-new database)."""
    settings = ctx.obj.settings
    if existing and not settings.paths.state.exists():
        raise ConfigError(
            f"the state database {settings.paths.state} (paths.state) does not exist: check "
            "paths.state and --config; `ingest`, `flush` and `run` create it"
        )
    core = build_core(settings, one_off=one_off)
    try:
        yield core
    finally:
        core.close()


def _chunks(items: Iterable[Incoming], size: int) -> Iterator[list[Incoming]]:
    chunk: list[Incoming] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class IngestTally:
    def __init__(self) -> None:
        self.outcomes: Counter[str] = Counter()
        self.read = self.invalid = self.unusable = self.warned = 0
        self.problems: list[str] = []
        self.files: list[str] = []

    def add(self, item: Incoming, result: IngestResult) -> None:
        self.read += 1
        self.outcomes[result.outcome] += 1
        self.warned += bool(result.warnings)
        if result.errors:
            if result.status is None:
                self.unusable += 1
            else:
                self.invalid += 1
            if len(self.problems) < SHOWN_PROBLEMS:
                reasons = "; ".join(f"{p.field}: {p.message}" for p in result.errors[:3])
                self.problems.append(f"  {item.source} {result.record_id or '-'} {reasons}")

    def lines(self) -> list[str]:
        ok = self.read - self.invalid - self.unusable
        detail = ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items()))
        out = [
            *self.files,
            f"{self.read} events read ({detail})",
            f"  accepted: {ok} (with warnings: {self.warned})",
            f"  invalid:  {self.invalid} (kept as invalid records, outstanding until fixed)",
            f"  unusable: {self.unusable} (no usable record_id: kept in the unusable log)",
        ]
        if self.problems:
            out.append("first problems:")
            out.extend(self.problems)
        return out


def _open(name: str) -> io.BufferedReader:
    if name == "-":
        return sys.stdin.buffer  # type: ignore[return-value]
    try:
        return open(name, "rb")
    except OSError as exc:
        raise click.ClickException(f"cannot read {name}: {exc.strerror}") from None


def _encoding(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if value == AUTO:
        return value
    try:
        return codecs.lookup(value).name
    except LookupError:
        raise click.BadParameter(
            f"{value!r} is not an encoding Python knows (try utf-8, cp1252, latin-1)"
        ) from None


def _stop(tally: IngestTally, name: str, reason: Exception) -> NoReturn:
    """A storage fault: what was committed is printed, then the reason, and exit 1."""
    click.echo("\n".join(tally.lines()))
    click.echo(f"{name}: stopped by the error below; every event counted above is stored")
    click.echo(f"error: ingest stopped: {_reason(reason)}", err=True)
    sys.exit(1)


def _reason(exc: Exception) -> str:
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror or exc}{where}"
    return str(exc)


@click.command()
@click.argument("files", nargs=-1, required=True)
@click.option(
    "--encoding",
    default=AUTO,
    show_default=True,
    callback=_encoding,
    help="CSV encoding: auto (UTF-8, with or without BOM, else Windows-1252) or a codec name.",
)
@click.pass_context
def ingest(ctx: click.Context, files: tuple[str, ...], encoding: str) -> None:
    """Read JSONL or CSV events (`-` for stdin) into the state; batches are cut by `flush`."""
    tally = IngestTally()
    with core_from(ctx) as core:
        for name in files:
            try:
                _ingest_file(core, name, encoding, tally)
            except (StoreError, OSError) as exc:
                _stop(tally, name, exc)
    click.echo("\n".join(tally.lines()))


def _ingest_file(core: Core, name: str, encoding: str, tally: IngestTally) -> None:
    stream = _open(name)
    try:
        size = Path(name).stat().st_size if name != "-" else 0
        show = sys.stderr.isatty() and size > 5_000_000
        events = open_events(stream, name, encoding)
        tally.files.append(f"{name}: {events.described}")
        with click.progressbar(length=size, label=name, file=sys.stderr, hidden=not show) as bar:
            for chunk in _chunks(events.events, CHUNK):
                for item, result in zip(chunk, core.ingestor.ingest(chunk), strict=True):
                    tally.add(item, result)
                if show:
                    bar.update(stream.tell() - bar.pos)
    finally:
        if name != "-":
            stream.close()


@click.command()
@click.option("--force", is_flag=True, help="Cut every pending record now, whatever is due.")
@click.pass_context
def flush(ctx: click.Context, force: bool) -> None:
    """Cut the batches that are due and write them to the outbox, XSD-checked."""
    report = FlushReport()
    fault: Exception | None = None
    with core_from(ctx, one_off=True) as core:
        try:
            core.flusher.cut(report, force=force)
        except (StoreError, OSError) as exc:
            report.cut.clear()  # the cut's transaction was rolled back
            fault = exc
        if fault is None:
            try:
                core.flusher.write_unwritten(report)
            except (StoreError, OSError) as exc:
                fault = exc
    _print_flush(report, nothing=fault is None)
    if fault is not None:
        click.echo(f"error: flush stopped: {_reason(fault)}", err=True)
        sys.exit(1)
    if not report.ok:
        sys.exit(1)


def _print_flush(report: FlushReport, *, nothing: bool) -> None:
    for batch in report.cut:
        click.echo(
            f"cut {batch.batch_id} ({batch.certifier}, {batch.passages} passages): {batch.reason}"
        )
    for written in report.written:
        click.echo(f"wrote {written.path} ({written.passages} passages, {written.bytes} bytes)")
    for note in report.notes:
        click.echo(f"note: {note}")
    for failed in report.failed:
        click.echo(f"FAILED {failed.batch_id} ({failed.certifier}): {failed.error}", err=True)
    if nothing and not (report.cut or report.written or report.failed):
        click.echo("nothing due")


TABLE_COLUMNS = (
    "certifier",
    "record_id",
    "status",
    "delivered_on",
    "deadline",
    "days_left",
    "batch_id",
    "flags",
)


def _flags(row: dict[str, Any]) -> str:
    flags = [f"{len(row['errors'])} error(s)"] if row["errors"] else []
    flags += ["correction_pending"] if row["correction_pending"] else []
    flags += ["revocation_pending"] if row["revocation_pending"] else []
    return ", ".join(flags)


def _table(rows: list[dict[str, Any]]) -> str:
    cells = [
        [
            str(r[c] if c != "flags" else _flags(r)) if (c == "flags" or r[c] is not None) else "-"
            for c in TABLE_COLUMNS
        ]
        for r in rows
    ]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(TABLE_COLUMNS)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(TABLE_COLUMNS, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(line.rstrip() for line in lines)


def _csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=queries.OUTSTANDING_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {
                **row,
                "errors": json.dumps(row["errors"], ensure_ascii=False),
                "warnings": json.dumps(row["warnings"], ensure_ascii=False),
            }
        )
    return out.getvalue()


@click.command()
@click.option("--certifier", help="Only this certifier's records.")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(values(RecordStatus)),
    help="Only these statuses.",
)
@click.option("--due-within", type=click.IntRange(min=0), help="Keep days_left <= DAYS.")
@click.option("--overdue", is_flag=True, help="Only records past their deadline.")
@click.option(
    "--as-of",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Compute days_left as of this day (default: today in Europe/Paris).",
)
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table")
@click.pass_context
def outstanding(
    ctx: click.Context,
    certifier: str | None,
    statuses: tuple[str, ...],
    due_within: int | None,
    overdue: bool,
    as_of: Any,
    fmt: str,
) -> None:
    """List outstanding records, the nearest deadline first."""
    with core_from(ctx, existing=True) as core:
        day: date = as_of.date() if as_of else paris_today(core.clock)
        with core.store.reading() as reader:
            rows = reader.outstanding(
                queries.OutstandingQuery(
                    as_of=day,
                    certifier=certifier,
                    statuses=statuses,
                    due_within=due_within,
                    overdue=overdue,
                )
            )
    if fmt == "json":
        click.echo(
            json.dumps(
                [{k: r[k] for k in queries.OUTSTANDING_FIELDS} for r in rows],
                ensure_ascii=False,
                indent=1,
            )
        )
    elif fmt == "csv":
        click.echo(_csv(rows), nl=False)
    else:
        click.echo(_table(rows) if rows else "no outstanding record")
        if rows:
            click.echo(f"{len(rows)} outstanding record(s) as of {day}")


@click.command()
@click.option("--as-of", type=click.DateTime(formats=["%Y-%m-%d"]))
@click.pass_context
def summary(ctx: click.Context, as_of: Any) -> None:
    """Counts per status and certifier, at risk, overdue, next deadlines (JSON)."""
    with core_from(ctx, existing=True) as core:
        day: date = as_of.date() if as_of else paris_today(core.clock)
        with core.store.reading() as reader:
            result = reader.summary(day, core.settings.batching.margin_days)
    click.echo(json.dumps(result, ensure_ascii=False, indent=1))


@click.command()
@click.argument("batch_ids", nargs=-1, required=True)
@click.pass_context
def deposited(ctx: click.Context, batch_ids: tuple[str, ...]) -> None:
    """Record that these batch files were uploaded to the CDC portal."""
    with core_from(ctx, existing=True) as core:
        for line in core.feedback.deposited(batch_ids):
            click.echo(line)


@click.command("import-report")
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False, exists=True)
)
@click.pass_context
def import_report(ctx: click.Context, files: tuple[Path, ...]) -> None:
    """Apply CDC processing reports (accusés de traitement) to the records.

    Each FILE is a report downloaded from the CDC portal. A file that cannot be applied is
    reported and the others are still applied (exit 1 when any failed).
    """
    failed = 0
    with core_from(ctx, existing=True) as core:
        for path in files:
            try:
                result = core.feedback.import_report(path)
            except StoreError:
                raise
            except AccrochageError as exc:
                failed += 1
                click.echo(f"error: {path.name}: {exc}", err=True)
                continue
            click.echo(
                f"{path.name}: batch {result.batch_id or 'unknown'}: "
                f"{len(result.accepted)} accepted, {len(result.rejected)} rejected, "
                f"{len(result.unchanged)} unchanged"
            )
            if result.file_error:
                click.echo(f"  whole file rejected: {result.file_error}")
            for label, ids in (
                ("unknown idTechnique", result.unknown_ids),
                ("not mentioned, status kept", result.not_mentioned),
            ):
                if ids:
                    click.echo(
                        f"  {label} ({len(ids)}): {', '.join(ids[:20])}"
                        + (" ..." if len(ids) > 20 else "")
                    )
            for note in result.notes:
                click.echo(f"  note: {note}")
    if failed:
        sys.exit(1)


@click.command()
@click.argument("record_ids", nargs=-1, required=True)
@click.pass_context
def retry(ctx: click.Context, record_ids: tuple[str, ...]) -> None:
    """Put rejected records back to pending, without new content."""
    with core_from(ctx, existing=True) as core:
        for line in core.feedback.retry(record_ids):
            click.echo(line)


def register(group: click.Group) -> None:
    for command in (ingest, flush, outstanding, summary, deposited, import_report, retry):
        group.add_command(command)
