"""`accrochage doctor`'s checks of the state itself: whether it can be made where the
configuration puts it, its integrity, size and schema, who may read its files, who writes
it now."""

from __future__ import annotations

import os
from pathlib import Path

from accrochage.private_files import open_to_others
from accrochage.settings import Settings
from accrochage.state.base import Store
from accrochage.streams.doctor_files import outbox_unusable
from accrochage.streams.findings import Finding, Level
from accrochage.streams.lost_state import first_outbox_file
from accrochage.streams.schema_choice import unchosen_schema

LOG_GROWN_BYTES = 256 * 1024 * 1024
"""A `-wal` larger than this has not started over for long (about 45 MiB in steady use, cut
back to 64 MiB after a large transaction); monitoring/rules.yml's alert uses the same."""


def unmade_findings(settings: Settings) -> list[Finding]:
    """Before the first command creates them, whether the state and the outbox can be made
    where the configuration puts them: "no state yet" alone let a first day's doctor pass
    while every `ingest`, `flush` and `run` would then fail to create them."""
    findings = []
    state = Path(os.path.realpath(settings.paths.state))
    existing = next(p for p in state.parents if p.exists())
    if not (existing.is_dir() and os.access(existing, os.W_OK | os.X_OK)):
        findings.append(
            Finding(
                "state",
                Level.WARNING,
                f"paths.state {settings.paths.state} cannot be created by this user ({existing} "
                "is not a folder it may write): create its folder, or set paths.state",
                action=True,
            )
        )
    unusable = outbox_unusable(settings.paths.outbox, writer=True)
    if unusable is not None:
        findings.append(Finding("outbox", *unusable, action=True))
    orphan = orphan_outbox_finding(settings)
    return findings if orphan is None else [*findings, orphan]


def orphan_outbox_finding(settings: Settings) -> Finding | None:
    """An outbox holding files while no state exists: the state was lost (or paths.state
    moved). "No state yet" alone let the next `ingest`, `flush` or service start create an
    empty state that knows none of those files, deposited or not, instead of a restore."""
    outbox = settings.paths.outbox
    first = first_outbox_file(outbox)
    if first is None:
        return None
    return Finding(
        "state",
        Level.ERROR,
        f"no state at {settings.paths.state} (paths.state), yet the outbox {outbox} holds "
        f"files a state wrote (first: {first.relative_to(outbox)}): if the state was lost, "
        "restore its last backup (`accrochage restore BACKUP`, then the steps it prints) "
        "before any `ingest`, `flush` or `run`, which would create an empty state that knows "
        "none of these files; if it is elsewhere, set paths.state",
        action=True,
    )


def state_findings(settings: Settings, store: Store) -> list[Finding]:
    with store.reading() as reader:
        health = reader.health()
        written = reader.schema_versions_written()
    last = health.migrations[-1] if health.migrations else "none"
    findings = [
        Finding(
            "state",
            Level.OK,
            f"{settings.paths.state}: integrity check (quick_check) ok, "
            f"{health.bytes / 1e6:.1f} MB ({health.free_bytes / 1e6:.1f} MB of it free pages "
            f"that `compact` gives back to the disk), {len(health.migrations)} migration(s) "
            f"applied (last {last})",
        )
    ]
    findings += privacy_findings(settings.paths.state)
    unchosen = unchosen_schema(settings, written)
    if unchosen is not None:
        findings.append(Finding("schema", Level.ERROR, unchosen))
    elif written:
        shown = ", ".join(sorted(written))
        findings.append(Finding("schema", Level.OK, f"the state holds files of schema {shown}"))
    return findings


def privacy_findings(state: Path) -> list[Finding]:
    """The state's files that every user of the machine may read: they hold personal data
    (a state created before `private_files`, or copied under a loose umask)."""
    ends = ("", "-wal", "-shm")
    state = Path(os.path.realpath(state))  # SQLite's files are beside the file itself
    exposed = [
        f"{state.name}{end}"
        for end in ends
        if (path := state.with_name(state.name + end)).exists() and open_to_others(path)
    ]
    if not exposed:
        return []
    return [
        Finding(
            "state",
            Level.WARNING,
            f"{', '.join(exposed)} in {state.parent} may be read by every user of this machine, "
            "and the state holds personal data: `chmod o-rwx` them (new states are created "
            "readable by their owner and group only)",
            action=True,
        )
    ]


def log_findings(settings: Settings, store: Store) -> list[Finding]:
    """A write-ahead log that has not started over for long: a reader keeps old pages, and
    every write makes it longer on the state's disk (`AccrochageStateLogGrowing` says it too,
    from `accrochage_state_wal_bytes`). The processes that have the state open are named by
    pid, never by their command line."""
    size = store.location.log_bytes()
    if size is None or size <= LOG_GROWN_BYTES:
        return []
    grown = f"the state's write-ahead log is {size / 1e6:.0f} MB (about 45 in steady use)"
    found = store.location.openers()
    if found == []:
        return [
            Finding(
                "state",
                Level.OK,
                f"{grown}, and no other process has the state open now: the next write starts "
                "it over and cuts it back",
            )
        ]
    if found is None:
        state = Path(os.path.realpath(settings.paths.state))
        who = f"`fuser -v {state.with_name(state.name + '-shm')}` lists the processes"
    else:
        pids = ", ".join(str(p) for p in found)
        who = f"processes {pids} have the state open (`ps -o args= -p PID` shows each)"
    return [
        Finding(
            "state",
            Level.WARNING,
            f"{grown}: a process keeps reading an old snapshot of the state (a backup under "
            "way, a long export, a command stopped with Ctrl-Z), so it cannot start over and "
            f"every write makes it longer; {who}: let the one that is not the service finish, "
            "or end it",
            action=True,
        )
    ]


def writer_findings(store: Store) -> list[Finding]:
    """Who holds the state's write lock, when someone does: a stopped command holds every
    writer behind it (the service answers `state_busy`), and says nothing itself."""
    found = store.write_holder()
    if found is None:
        return []
    who = f"process {found.pid}" if found.pid is not None else "a writer"
    if found.stopped:
        return [
            Finding(
                "state",
                Level.ERROR,
                f"{who} holds the state's write lock and is stopped (Ctrl-Z?): every writer "
                "(the service, ingest, flush, a Kafka worker) waits for it, then gives up "
                "with state_busy after state.lock_wait; resume it (`fg` in its terminal, or "
                f"`kill -CONT {found.pid}`) or end it",
            )
        ]
    return [
        Finding(
            "state",
            Level.OK,
            f"{who} is writing the state now (a command, the service or a worker): other "
            "writers wait for it, up to state.lock_wait",
        )
    ]
