"""`accrochage doctor`: what an operator should know about an installation, checked at once.

Each check gives typed findings (`ok`, `warning`, `error`); the command prints them and exits
1 when one needs the operator (`needs_operator`): every error, and the warnings marked
`action` — something the operator can and should do now (get the official XSD, reload old
reference data, see to a firing alert). A warning without `action` only informs (no state
yet, optional reference data never configured). Messages carry versions, paths, counts and
dates only: never a record's content.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from accrochage.errors import AccrochageError, StateNeedsMigration, StorageCorruptError
from accrochage.models.deadline import Clock, paris_today
from accrochage.models.vocabulary import RecordStatus
from accrochage.private_files import open_to_others
from accrochage.refdata.load import source_warnings
from accrochage.settings import Settings
from accrochage.state.base import AlertState, Observation, Store
from accrochage.streams.alerts import active, annotations_of, see_for, severity_of
from accrochage.streams.doctor_config import (
    certifier_findings,
    config_findings,
    schema_finding,
    token_findings,
    xsd_finding,
)
from accrochage.streams.doctor_files import (
    files_finding,
    held_elsewhere_findings,
    left_out_findings,
    outbox_findings,
    outbox_unusable,
    refused_after_acceptance_findings,
    requests_of_another_certifier_findings,
    room_findings,
)
from accrochage.streams.findings import Finding, Level, needs_operator
from accrochage.streams.schema_choice import unchosen_schema
from accrochage.streams.watch import Watch

_NEVER = datetime(1970, 1, 1, tzinfo=UTC)
"""An alert's start, unused by its summary."""
__all__ = ["Finding", "Level", "diagnose", "needs_operator"]


def diagnose(
    settings: Settings,
    clock: Clock,
    open_store: Callable[[], Store],
    config: Path | None = None,
) -> list[Finding]:
    """Every check; `open_store` opens the state checking its integrity (`quick_check`);
    `config`: the configuration file the settings were read from."""
    chosen = schema_finding(settings)
    findings = [chosen, xsd_finding(settings), *token_findings(settings)]
    findings += config_findings(config) if config is not None else []
    findings += certifier_findings(settings)
    state = settings.paths.state
    if not state.exists():
        findings.append(
            Finding(
                "state",
                Level.WARNING,
                f"no state at {state} (paths.state) yet: `ingest`, `flush` and `run` create "
                "it; if one should exist, check paths.state and --config",
            )
        )
        return findings + unmade_findings(settings)
    try:
        store = open_store()
    except StorageCorruptError as exc:
        return [*findings, Finding("state", Level.ERROR, str(exc))]
    except StateNeedsMigration as exc:  # doctor, a reader, leaves the upgrade to a writer
        return [*findings, Finding("state", Level.WARNING, str(exc), action=True)]
    except AccrochageError as exc:
        return [*findings, Finding("state", Level.ERROR, f"the state cannot be opened: {exc}")]
    try:
        held = state_findings(settings, store)
        if any(f.check == "schema" and f.level is Level.ERROR for f in held):
            findings.remove(chosen)  # an "ok" beside the error that says it is not
        findings += held
        findings += writer_findings(store)
        findings += room_findings(settings, store)
        findings += refdata_findings(settings, store, clock)
        observation = _watch(settings, store, clock).observe()
        findings += alert_findings(settings, observation)
        findings += unconfigured_findings(settings, observation)
        findings.append(files_finding(observation))
        findings += outbox_findings(settings, store)
        findings += left_out_findings(store)
        findings += held_elsewhere_findings(store)
        findings += refused_after_acceptance_findings(store)
        findings += requests_of_another_certifier_findings(store)
    finally:
        store.close()
    return findings


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
    return findings


# -- the API's tokens -----------------------------------------------------------------------


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


# -- reference data ---------------------------------------------------------------------------


def refdata_findings(settings: Settings, store: Store, clock: Clock) -> list[Finding]:
    configured = settings.refdata
    sources = store.refdata().sources()
    findings = [
        Finding("refdata", Level.WARNING, warning, action=True)
        for warning in source_warnings(sources, paris_today(clock), configured.max_age)
    ]
    loaded = {s.kind for s in sources}
    wanted = {kind for kind, path in (("rncp", configured.rncp), ("cog", configured.cog)) if path}
    for kind in sorted(wanted - loaded):
        findings.append(
            Finding(
                "refdata",
                Level.WARNING,
                f"refdata.{kind} is set but nothing of it is loaded: run `accrochage refdata "
                "load` (its rules are not applied until then)",
                action=True,
            )
        )
    if not sources and not wanted:
        findings.append(
            Finding(
                "refdata",
                Level.WARNING,
                "no reference data loaded: the RNCP/RS and COG rules are not applied "
                "(optional: set refdata.rncp / refdata.cog and run `accrochage refdata load`)",
            )
        )
    if sources and not findings:
        kinds = ", ".join(sorted(loaded))
        findings.append(
            Finding("refdata", Level.OK, f"reference data loaded ({kinds}), none too old")
        )
    return findings


# -- alerts and files -------------------------------------------------------------------------


def _watch(settings: Settings, store: Store, clock: Clock) -> Watch:
    return Watch(
        store,
        clock,
        margin_days=settings.batching.margin_days,
        certifiers=[c.key for c in settings.certifiers],
        unreported_after=settings.alerts.unreported_after,
    )


_WAITING = frozenset(
    {
        RecordStatus.INVALID,
        RecordStatus.PENDING,
        RecordStatus.BATCHED,
        RecordStatus.DEPOSITED,
        RecordStatus.REJECTED,
    }
)
"""Statuses of a record its certifier still owes the CDC."""


def unconfigured_findings(settings: Settings, observation: Observation) -> list[Finding]:
    """Records of a certifier the configuration no longer has (removed, or its key renamed):
    no file is written for them, and the listings fold them into `?`."""
    keys = {c.key for c in settings.certifiers}
    waiting: dict[str, int] = {}
    for (certifier, status), n in observation.records.items():
        if certifier is not None and certifier not in keys and status in _WAITING:
            waiting[certifier] = waiting.get(certifier, 0) + n
    if not waiting:
        return []
    said = ", ".join(f"{key} ({n})" for key, n in sorted(waiting.items()))
    return [
        Finding(
            "certifiers",
            Level.WARNING,
            f"records of certifiers the configuration does not have wait for the CDC: {said}; "
            "no file is written for them: put their [[certifiers]] section back (the same "
            "key), or take them out with `accrochage exclude ID... --reason TEXT`",
            action=True,
        )
    ]


def alert_findings(settings: Settings, observation: Observation) -> list[Finding]:
    certifiers = [c.key for c in settings.certifiers]
    firing = active(observation, certifiers)
    if not firing:
        return [Finding("alerts", Level.OK, "no alert firing")]
    findings = []
    for (alertname, certifier), n in sorted(firing.items()):
        severity = severity_of(alertname)
        shown = AlertState(alertname, certifier, severity, "firing", n, _NEVER)
        summary = annotations_of(shown)["summary"]
        level = Level.ERROR if severity == "critical" else Level.WARNING
        findings.append(
            Finding(
                "alerts",
                level,
                f"{alertname} ({severity}): {summary}; see {see_for(alertname)}",
                action=True,
            )
        )
    return findings
