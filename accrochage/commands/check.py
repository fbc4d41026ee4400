"""`accrochage check`: validate events as `ingest` would, without storing anything."""

from __future__ import annotations

import json
import sys
import textwrap

import click

from accrochage.app import open_store
from accrochage.commands.ingest import CHUNK, chunks, encoding_option, open_input, say_unread
from accrochage.errors import InputError
from accrochage.models.deadline import Clock, SystemClock
from accrochage.models.problems import escaped
from accrochage.models.reference import Reference
from accrochage.models.registry import Registry
from accrochage.refdata.memory import ReferenceHolder
from accrochage.settings.registry import registry_from
from accrochage.state.base import Store
from accrochage.streams.check import STATE_RULES, CheckResult, check
from accrochage.streams.files import open_events


@click.command("check")
@click.argument("files", nargs=-1, required=True)
@encoding_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.pass_context
def check_events(ctx: click.Context, files: tuple[str, ...], encoding: str, fmt: str) -> None:
    """Validate JSONL or CSV events (`-` for stdin) without storing them; exit 1 on any error.

    For exam platforms and operators preparing a file: the answers are those `ingest` would
    give. The rules that need the state (a record id used by another certifier, a revocation
    names a stored record) run when the state at paths.state exists, and are named as skipped
    otherwise.
    """
    settings = ctx.obj.settings
    registry, clock = registry_from(settings), SystemClock()
    store: Store | None = (
        open_store(settings, read_only=True) if settings.paths.state.exists() else None
    )
    reference = ReferenceHolder(store.refdata()).current() if store is not None else None
    told = _JsonAnswers() if fmt == "json" else _TextAnswers()
    unread: list[InputError] = []
    try:
        for name in files:
            try:
                _check_file(name, encoding, registry, clock, store, reference, told)
            except InputError as problem:  # this file, not the next
                unread.append(problem)
    except BaseException:  # a storage fault, Ctrl-C: the files not read are said too
        say_unread(unread)
        raise
    finally:
        if store is not None:
            store.close()
    told.end(skipped=store is None)
    say_unread(unread)
    if unread or told.invalid:
        sys.exit(1)


def _check_file(
    name: str,
    encoding: str,
    registry: Registry,
    clock: Clock,
    store: Store | None,
    reference: Reference | None,
    told: _Answers,
) -> None:
    """The answers of one file's events, told as they come: those before a part of the file
    that cannot be read are told too (as `ingest` stores them)."""
    stream = open_input(name)
    try:
        events = open_events(stream, escaped(name), encoding)
        for chunk in chunks(events.events, CHUNK):
            answers = check(chunk, registry, clock, store, reference)
            for item, answer in zip(chunk, answers, strict=True):
                told.add(item.source, answer)
    finally:
        if name != "-":
            stream.close()


class _Answers:
    """Each answer written as it comes, never all held: a platform checks a file of 100,000
    events (held, their answers took 240 MiB as JSON)."""

    def __init__(self) -> None:
        self.checked = self.invalid = self.warned = 0

    def add(self, source: str | None, answer: CheckResult) -> None:
        self.checked += 1
        self.invalid += not answer.valid
        self.warned += answer.valid and bool(answer.warnings)  # "N valid (W with warnings)"
        self.tell(source, answer)

    def tell(self, source: str | None, answer: CheckResult) -> None:
        raise NotImplementedError

    def end(self, *, skipped: bool) -> None:
        raise NotImplementedError


class _TextAnswers(_Answers):
    def tell(self, source: str | None, answer: CheckResult) -> None:
        # Warnings too: counted and never shown, "1 with warnings" left the platform to
        # guess which event and what (a birth commune code the CDC's identity check rejects).
        for problem in answer.errors:
            click.echo(f"{source} {answer.record_id or '-'} {problem.field}: {problem.message}")
        for problem in answer.warnings:
            click.echo(
                f"{source} {answer.record_id or '-'} warning: {problem.field}: {problem.message}"
            )

    def end(self, *, skipped: bool) -> None:
        click.echo(
            f"{self.checked} events checked: {self.checked - self.invalid} valid "
            f"({self.warned} with warnings), {self.invalid} with errors; nothing stored"
        )
        if skipped:
            click.echo(f"skipped (no state at paths.state): {', '.join(STATE_RULES)}")


class _JsonAnswers(_Answers):
    """One JSON array, as `json.dumps(answers, indent=1)` writes it; a run stopped by a fault
    leaves it unclosed, never a whole-looking array of part of the answers."""

    def tell(self, source: str | None, answer: CheckResult) -> None:
        item = json.dumps(answer.as_dict() | {"source": source}, indent=1)
        lead = "[\n" if self.checked == 1 else ",\n"
        click.echo(lead + textwrap.indent(item, " "), nl=False)

    def end(self, *, skipped: bool) -> None:
        click.echo("\n]" if self.checked else "[]")


def register(group: click.Group) -> None:
    group.add_command(check_events)
