"""Commands over the state: ingest, flush, outstanding, summary, deposited, import-report, retry."""

from __future__ import annotations

import codecs
import io
import json
import signal
import sys
import threading
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any, NoReturn

import click

from accrochage.app import Core, refdata_warnings
from accrochage.commands.core import core_from
from accrochage.commands.options import DAY
from accrochage.commands.output import table
from accrochage.errors import AccrochageError, InputError, StoreError
from accrochage.models.cdc import ADVICE
from accrochage.models.deadline import paris_today
from accrochage.models.record import Outcome
from accrochage.models.vocabulary import CdcAction, CdcReason, RecordStatus, values
from accrochage.streams.decoding import DecodeFailed
from accrochage.streams.files import AUTO, open_events
from accrochage.streams.flush_report import CutBatch, FailedBatch, FlushReport, WrittenBatch
from accrochage.streams.ingest import Incoming, IngestResult
from accrochage.streams.summary import as_configured

CHUNK = 2000
SHOWN_PROBLEMS = 20


def chunks(items: Iterable[Incoming], size: int) -> Iterator[list[Incoming]]:
    """`items` in lists of `size`. A file that stops being readable midway (`InputError`)
    gives the events read before it first, so that they are stored before the error stops
    the file."""
    chunk: list[Incoming] = []
    try:
        for item in items:
            chunk.append(item)
            if len(chunk) >= size:
                yield chunk
                chunk = []
    except InputError:
        if chunk:
            yield chunk
        raise
    if chunk:
        yield chunk


class IngestTally:
    def __init__(self) -> None:
        self.outcomes: Counter[str] = Counter()
        self.read = self.invalid = self.refused = self.unusable = self.warned = 0
        self.problems: list[str] = []
        self.files: list[str] = []

    def add(self, item: Incoming, result: IngestResult) -> None:
        self.read += 1
        self.outcomes[result.outcome] += 1
        self.warned += bool(result.warnings)
        if result.errors:
            if result.outcome == Outcome.REFUSED:
                self.refused += 1
            elif result.status is None:
                self.unusable += 1
            else:
                self.invalid += 1
            if len(self.problems) < SHOWN_PROBLEMS:
                reasons = "; ".join(f"{p.field}: {p.message}" for p in result.errors[:3])
                if len(result.errors) > 3:
                    reasons += f" (+{len(result.errors) - 3} more: accrochage show ID)"
                self.problems.append(f"  {item.source} {result.record_id or '-'} {reasons}")

    def lines(self) -> list[str]:
        failed = self.invalid + self.refused + self.unusable
        detail = ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items()))
        out = [
            *self.files,
            f"{self.read} events read" + (f" ({detail})" if detail else ""),
            f"  accepted: {self.read - failed} (with warnings: {self.warned})",
            f"  invalid:  {self.invalid} (kept as invalid records, outstanding until fixed)",
        ]
        if self.refused:
            out.append(
                f"  refused:  {self.refused} (applied to no record: kept in the unusable log)"
            )
        out.append(f"  unusable: {self.unusable} (no usable record: kept in the unusable log)")
        if self.problems:
            out.append("first problems:")
            out.extend(self.problems)
            hidden = failed - len(self.problems)
            if hidden > 0:
                out.append(
                    f"  ... and {hidden} more: accrochage records --status invalid, "
                    "accrochage unusable"
                )
        return out


def open_input(name: str) -> io.BufferedReader:
    if name == "-":
        return sys.stdin.buffer  # type: ignore[return-value]
    try:
        return open(name, "rb")
    except OSError as exc:
        raise InputError(f"cannot read {name}: {exc.strerror}; check its path") from None


def _encoding(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if value == AUTO:
        return value
    try:
        return codecs.lookup(value).name
    except LookupError:
        raise click.BadParameter(
            f"{value!r} is not an encoding Python knows (try utf-8, cp1252, latin-1)"
        ) from None


encoding_option = click.option(
    "--encoding",
    default=AUTO,
    show_default=True,
    callback=_encoding,
    help="CSV encoding: auto (UTF-8, with or without BOM, else Windows-1252) or a codec name.",
)


def _stop(tally: IngestTally, name: str, reason: BaseException) -> NoReturn:
    """A storage fault, an unreadable file or Ctrl-C: what was committed is printed, then
    why it stopped; exit 1 (130 for Ctrl-C, as a shell reports SIGINT)."""
    click.echo("\n".join(tally.lines()))
    if isinstance(reason, KeyboardInterrupt):
        click.echo(
            f"{name}: interrupted (Ctrl-C); every event counted above is stored, the rest was "
            "not read: ingest the file again to read it (what is stored comes back unchanged)"
        )
        sys.exit(130)
    click.echo(f"{name}: stopped by the error below; every event counted above is stored")
    click.echo(f"error: ingest stopped: {_reason(reason)}", err=True)
    sys.exit(1)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror or exc}{where}"
    return str(exc)


@click.command()
@click.argument("files", nargs=-1, required=True)
@encoding_option
@click.pass_context
def ingest(ctx: click.Context, files: tuple[str, ...], encoding: str) -> None:
    """Read JSONL or CSV events (`-` for stdin) into the state; batches are cut by `flush`."""
    tally = IngestTally()
    with core_from(ctx, one_off=True) as core:  # a small file is decoded in this process
        for name in files:
            try:
                _ingest_file(core, name, encoding, tally)
            except (StoreError, OSError, DecodeFailed, InputError, KeyboardInterrupt) as exc:
                _stop(tally, name, exc)
    click.echo("\n".join(tally.lines()))


def _ingest_file(core: Core, name: str, encoding: str, tally: IngestTally) -> None:
    stream = open_input(name)
    try:
        size = Path(name).stat().st_size if name != "-" else 0
        show = sys.stderr.isatty() and size > 0  # a bar on a terminal, for any file
        events = open_events(stream, name, encoding)
        tally.files.append(f"{name}: {events.described}")
        with click.progressbar(length=size, label=name, file=sys.stderr, hidden=not show) as bar:
            for chunk in _decoded(core, chunks(events.events, CHUNK)):
                with _counted_whole():
                    for item, result in zip(chunk, core.ingestor.ingest(chunk), strict=True):
                        tally.add(item, result)
                if show:
                    bar.update(stream.tell() - bar.pos)
    finally:
        if name != "-":
            stream.close()


@contextmanager
def _counted_whole() -> Iterator[None]:
    """A Ctrl-C while a group is stored and counted waits for the count: raised between a
    commit and its count, it would leave stored events out of the summary. Elsewhere (reading,
    decoding) it interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _: held.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous or signal.default_int_handler)
    if held:
        raise KeyboardInterrupt


def _decoded(core: Core, groups: Iterator[list[Incoming]]) -> Iterator[list[Incoming]]:
    """The chunks in order, decoded by the decode processes (`ingest.decode_processes`) a
    few chunks ahead of the one being stored; as they are without decode processes."""
    if core.decoder is None:
        yield from groups
        return
    ahead: deque[Future[list[Incoming]]] = deque()
    limit = 2 * core.decoder.processes + 1
    unreadable: InputError | None = None
    try:
        try:
            for group in groups:
                ahead.append(core.decoder.submit(group))
                if len(ahead) > limit:
                    yield ahead.popleft().result()
        except InputError as exc:  # the file stops being readable: what was read is stored
            unreadable = exc
        while ahead:
            yield ahead.popleft().result()
        if unreadable is not None:
            raise unreadable
    finally:
        for pending in ahead:
            pending.cancel()


@click.command()
@click.option("--force", is_flag=True, help="Cut every pending record now, whatever is due.")
@click.pass_context
def flush(ctx: click.Context, force: bool) -> None:
    """Cut the batches that are due and write them to the outbox, XSD-checked.

    Each file is printed as it is written; a file missing from the outbox for a batch still
    to deposit is written again, byte for byte.
    """
    report = FlushReport(on_file=_print_file, on_cut=_print_cut)
    fault: BaseException | None = None
    with core_from(ctx, one_off=True) as core:
        try:
            plan = core.flusher.plan(report, force=force)
            for batch_id in report.superseded:
                click.echo(
                    f"superseded {batch_id}: a record changed before its file was deposited; "
                    "the file moved to superseded/ (do not upload it); its records are cut "
                    "again when due (they keep their age: `flush --force` cuts them now)"
                )
            core.flusher.write_planned(plan, report)
            core.flusher.rewrite_missing(report)
        except (StoreError, OSError, KeyboardInterrupt) as exc:
            fault = exc  # `report.cut` holds only the batches whose transaction committed
    for note in report.notes:
        click.echo(f"note: {note}")
    if fault is None and not (report.cut or report.written or report.failed):
        click.echo("nothing due")
    if isinstance(fault, KeyboardInterrupt):
        click.echo(
            "interrupted (Ctrl-C): every file printed above is written and recorded. Others may "
            "be in the outbox without being recorded yet: run `accrochage flush` before "
            "depositing any other file; it records or writes every batch cut, with the same "
            "names and bytes"
        )
        sys.exit(130)
    if fault is not None:
        click.echo(f"error: flush stopped: {_reason(fault)}", err=True)
        sys.exit(1)
    if not report.ok:
        sys.exit(1)


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


@click.command()
@click.option(
    "--as-of",
    type=DAY,
    help="Count at risk and overdue as of this day (default: today in Europe/Paris).",
)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.pass_context
def summary(ctx: click.Context, as_of: Any, fmt: str) -> None:
    """Records per certifier and status, at risk, overdue, next deadlines, batches."""
    with core_from(ctx, existing=True) as core:
        day: date = as_of or paris_today(core.clock)
        with core.store.reading() as reader:
            result = reader.summary(day, core.settings.batching.margin_days)
        result = as_configured(result, core.registry.certifiers)
        result["refdata_warnings"] = refdata_warnings(core, day)
    if fmt == "json":
        click.echo(json.dumps(result, ensure_ascii=False, indent=1))
    else:
        click.echo(summary_text(result))


def summary_text(result: dict[str, Any]) -> str:
    margin = result["deadline_margin_days"]
    lines = [
        f"as of {result['as_of']}: {result['records']} records, {result['outstanding']} "
        f"outstanding, {result['at_risk']} at risk (deadline within {margin} days), "
        f"{result['overdue']} overdue",
        "",
    ]
    statuses = [s for s in values(RecordStatus) if s in result["by_status"]]
    rows = [
        {"certifier": key, **counts, "total": sum(counts.values())}
        for key, counts in sorted(result["by_certifier"].items())
    ]
    columns = ["certifier", *statuses, "total"]
    if rows:
        lines.append(table(rows, columns, lambda row, column: str(row.get(column, 0))))
    shown = result["next_deadlines"]
    if shown:
        lines += ["", "next deadlines (all: accrochage outstanding):"]
        lines += [
            f"  {d['deadline']}  {d['days_left']:>4} days  {d['urgency']:<8} "
            f"{d['certifier']} {d['record_id']}"
            for d in shown
        ]
    batches = ", ".join(f"{state} {count}" for state, count in result["batches"].items())
    lines += ["", f"batches: {batches or 'none'} (accrochage batches)"]
    requests = result.get("correction_requests")
    if requests and requests["open"]:
        lines.append(
            f"correction requests: {requests['open']} open, {requests['at_risk']} at risk, "
            f"{requests['overdue']} overdue (accrochage correction-request list --open)"
        )
    lines += [f"warning: {warning}" for warning in result.get("refdata_warnings", [])]
    if result["unusable_events"]:
        lines.append(
            f"unusable events: {result['unusable_events']} (no usable record, or applied to "
            "none: accrochage unusable)"
        )
    return "\n".join(lines)


@click.command("import-report")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
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
            withdrawal = result.action == CdcAction.SUPPRESSION
            click.echo(
                f"{path.name}: {'SUPPRESSION ' if withdrawal else ''}batch "
                f"{result.batch_id or 'unknown'}: "
                f"{len(result.accepted)} accepted, {len(result.rejected)} rejected, "
                f"{len(result.unchanged)} unchanged"
            )
            if result.file_error:
                click.echo(f"  whole file rejected: {result.file_error}")
            for label, ids in (
                ("unknown idTechnique", result.unknown_ids),
                ("records the batch did not carry, left as they are", result.elsewhere),
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
    groups: dict[str, list[dict[str, str | None]]] = {}
    for rejection in rejections:
        groups.setdefault(rejection["cdc_reason"] or CdcReason.OTHER.value, []).append(rejection)
    for reason, items in sorted(groups.items()):
        advice = ADVICE[CdcReason(reason)].replace("--batch REF", f"--batch {batch}")
        click.echo(f"  rejected, {reason} ({len(items)}): {advice}")
        for item in items[:SHOWN_PER_REASON]:
            taken_over = item.get("status") == RecordStatus.PENDING  # its stored correction
            after = " (its stored correction is pending: it goes in the next file)"
            click.echo(f"    {item['record_id']}: {item['message']}{after if taken_over else ''}")
        if len(items) > SHOWN_PER_REASON:
            click.echo(
                f"    ... and {len(items) - SHOWN_PER_REASON} more: "
                f"accrochage records --status rejected --reason {reason}"
            )
    if groups:
        click.echo(
            "  next: fix the data and send corrected events, or `accrochage retry --batch "
            f"{batch}` when the cause was on the CDC's side"
        )


def echo_refused_suppressions(rejections: list[dict[str, str | None]]) -> None:
    for item in rejections[:SHOWN_PER_REASON]:
        click.echo(f"  suppression refused, {item['record_id']}: {item['message']}")
    if len(rejections) > SHOWN_PER_REASON:
        click.echo(f"    ... and {len(rejections) - SHOWN_PER_REASON} more")
    if rejections:
        ids = " ".join(str(item["record_id"]) for item in rejections[:3])
        more = " ..." if len(rejections) > 3 else ""
        click.echo(
            "  next: the CDC still holds these passages; once the cause is fixed, "
            f"`accrochage retry {ids}{more}` (or --all-rejected) cuts their SUPPRESSION again"
        )


def register(group: click.Group) -> None:
    for command in (ingest, flush, summary, import_report):
        group.add_command(command)
