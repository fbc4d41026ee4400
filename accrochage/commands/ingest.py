"""`accrochage ingest`: JSONL or CSV events into the state, in groups, with a summary that
says what was stored whatever stops it."""

from __future__ import annotations

import codecs
import io
import os
import signal
import stat
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import replace
from pathlib import Path
from typing import NoReturn

import click

from accrochage.app import Core
from accrochage.commands.core import core_from
from accrochage.commands.ingest_tally import IngestTally
from accrochage.commands.output import reason_of
from accrochage.errors import InputError, StoreError
from accrochage.lifeline import left_ignored
from accrochage.models.problems import escaped
from accrochage.models.scope import Scope
from accrochage.streams.decoding import DecodeFailed
from accrochage.streams.files import AUTO, open_events
from accrochage.streams.incoming import Incoming
from accrochage.streams.read_ahead import read_ahead

CHUNK = 2000
"""Events a transaction, the state to itself: fewer commits, fewer pages written again
(`bench.writes`)."""
SHARED_CHUNK = 500
"""Events a transaction while a service serves the state, another writer let in after each:
its writer, storing a platform's event, waits for one such transaction at most rather than
one of `CHUNK` (`bench.beside`: its 95th percentile 65-83 ms against 199-232, `ingest`
0.98-1.21x the time)."""


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


def open_input(name: str) -> io.BufferedReader:
    """The events' file; a folder or a device is refused before it is read (`/dev/zero` was
    read for ever). A pipe is read (`ingest <(zcat events.jsonl.gz)`), and so is `-`."""
    if name == "-":
        return sys.stdin.buffer  # type: ignore[return-value]
    shown = escaped(name)
    try:
        kind = os.stat(name).st_mode
        if stat.S_ISDIR(kind):
            raise InputError(f"cannot read {shown}: it is a folder; give the files in it")
        if stat.S_ISCHR(kind) or stat.S_ISBLK(kind):
            raise InputError(f"cannot read {shown}: it is a device, not a file of events")
        return open(name, "rb")
    except OSError as exc:
        raise InputError(f"cannot read {shown}: {exc.strerror}; check its path") from None


def _encoding(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """A codec that decodes bytes to text: `base64`, `zlib` or `rot13` are codecs too, and
    reading a file with one ended `ingest` with a traceback (LookupError)."""
    if value == AUTO:
        return value
    try:
        name = codecs.lookup(value).name
        with suppress(UnicodeDecodeError):  # utf-16: one byte is no text
            b"a".decode(name)
    except (LookupError, UnicodeError):  # unknown, not a text encoding, or `undefined`
        raise click.BadParameter(
            f"{value!r} is not a text encoding Python knows (try utf-8, cp1252, latin-1)"
        ) from None
    return name


encoding_option = click.option(
    "--encoding",
    default=AUTO,
    show_default=True,
    callback=_encoding,
    help="auto: UTF-8 with or without a BOM, UTF-16/32 with a BOM, else (CSV) Windows-1252; "
    "or a codec name.",
)


def _stop(
    tally: IngestTally, name: str, reason: BaseException, unread: list[InputError]
) -> NoReturn:
    """A storage fault, a decode process lost or Ctrl-C: what was committed is printed, the
    files that could not be read before it, then why it stopped; exit 1 (130 for Ctrl-C, as a
    shell reports SIGINT)."""
    click.echo("\n".join(tally.lines()))
    say_unread(unread)
    if isinstance(reason, KeyboardInterrupt):
        click.echo(
            f"{name}: interrupted (Ctrl-C); every event counted above is stored, the rest was "
            "not read: ingest the file again to read it (what is stored comes back unchanged)"
        )
        sys.exit(130)
    click.echo(f"{name}: stopped by the error below; every event counted above is stored")
    click.echo(f"error: ingest stopped: {reason_of(reason)}", err=True)
    sys.exit(1)


@click.command()
@click.argument("files", nargs=-1, required=True)
@encoding_option
@click.option(
    "--certifier",
    "certifiers",
    multiple=True,
    metavar="KEY",
    help="The files come from these certifiers' platforms (repeat for several): an event "
    "for another certifier, or naming another's record, is refused and kept in the unusable "
    "log, as a scoped ingest token's.",
)
@click.pass_context
def ingest(
    ctx: click.Context, files: tuple[str, ...], encoding: str, certifiers: tuple[str, ...]
) -> None:
    """Read JSONL or CSV events (`-` for stdin) into the state; batches are cut by `flush`."""
    tally = IngestTally()
    unread: list[InputError] = []
    scope = scope_of(ctx, certifiers)
    with core_from(ctx, one_off=True) as core:  # a small file is decoded in this process
        for name in files:
            try:
                _ingest_file(core, name, encoding, tally, scope)
            except InputError as unreadable:  # this file (what it gave is stored), not the next
                unread.append(unreadable)
            except (StoreError, OSError, DecodeFailed, KeyboardInterrupt) as exc:
                _stop(tally, escaped(name), exc, unread)
    click.echo("\n".join(tally.lines()))
    say_unread(unread)
    if unread or tally.not_stored:
        sys.exit(1)


def say_unread(unread: list[InputError]) -> None:
    for problem in unread:
        click.echo(f"error: {problem}", err=True)


def scope_of(ctx: click.Context, certifiers: tuple[str, ...]) -> Scope:
    """The certifiers `--certifier` names (None: any); an unknown key is a usage error."""
    if not certifiers:
        return None
    keys = [c.key for c in ctx.obj.settings.certifiers]
    unknown = sorted(set(certifiers) - set(keys))
    if unknown:
        raise click.BadParameter(
            f"{', '.join(unknown)}: not a configured certifier key (configured: {', '.join(keys)})",
            param_hint="--certifier",
        )
    return frozenset(certifiers)


def _ingest_file(core: Core, name: str, encoding: str, tally: IngestTally, scope: Scope) -> None:
    stream = open_input(name)
    shown = escaped(name)  # a file name is printed and kept as its events' source
    try:
        size = Path(name).stat().st_size if name != "-" else 0
        show = sys.stderr.isatty() and size > 0  # a bar on a terminal, for any file
        events = open_events(stream, shown, encoding)
        tally.files.append(f"{shown}: {events.described}")
        scoped = (replace(e, scope=scope) for e in events.events) if scope else events.events
        with click.progressbar(length=size, label=shown, file=sys.stderr, hidden=not show) as bar:
            served = core.store.location.served_by() is not None  # looked at once a file
            for chunk in _decoded(core, chunks(scoped, SHARED_CHUNK if served else CHUNK)):
                with _counted_whole():
                    for item, result in zip(chunk, core.ingestor.ingest(chunk), strict=True):
                        tally.add(item, result)
                if served:
                    core.store.let_writers_in()
                if show:
                    bar.update(stream.tell() - bar.pos)
    finally:
        if name != "-":
            stream.close()


@contextmanager
def _counted_whole() -> Iterator[None]:
    """A Ctrl-C while a group is stored and counted waits for the count: raised between a
    commit and its count, it would leave stored events out of the summary. Elsewhere (reading,
    decoding) it interrupts at once. Ignored when the command was started with SIGINT ignored
    (a script's background command, which its Ctrl-C reaches too): caught here, it stopped
    the ingest."""
    if threading.current_thread() is not threading.main_thread() or signal.SIGINT in left_ignored():
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
    few chunks ahead of the one being stored, read in a thread of their own (`read_ahead`:
    an input that stalls never holds back what was read); as they are without decode
    processes."""
    decoder = core.decoder
    if decoder is None:
        yield from groups
        return
    yield from read_ahead(groups, decoder.submit, limit=2 * decoder.processes)


def register(group: click.Group) -> None:
    group.add_command(ingest)
