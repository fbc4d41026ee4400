"""`accrochage doctor`: what an operator should know about an installation, checked at once.

Each check gives typed findings (`ok`, `warning`, `error`); the command prints them and exits
1 when one needs the operator (`needs_operator`): every error, and the warnings marked
`action` — something the operator can and should do now (get the official XSD, reload old
reference data, see to a firing alert). A warning without `action` only informs (no state
yet, optional reference data never configured). Messages carry versions, paths, counts and
dates only: never a record's content.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from accrochage.errors import AccrochageError, StateNeedsMigration, StorageCorruptError
from accrochage.models.deadline import Clock, paris_today
from accrochage.models.vocabulary import RecordStatus
from accrochage.refdata.load import source_warnings
from accrochage.settings import Settings
from accrochage.state.base import AlertState, Observation, Store
from accrochage.streams.alerts import active, annotations_of, see_for, severity_of
from accrochage.streams.doctor_config import (
    certifier_findings,
    config_findings,
    header_findings,
    schema_finding,
    token_findings,
    xsd_finding,
)
from accrochage.streams.doctor_files import (
    files_finding,
    held_elsewhere_findings,
    left_out_findings,
    outbox_findings,
    refused_after_acceptance_findings,
    requests_of_another_certifier_findings,
    room_findings,
)
from accrochage.streams.doctor_state import (
    log_findings,
    state_findings,
    unmade_findings,
    writer_findings,
)
from accrochage.streams.findings import Finding, Level, needs_operator
from accrochage.streams.lost_state import no_state
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
    if no_state(state):
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
        findings += log_findings(settings, store)
        findings += room_findings(settings, store)
        findings += refdata_findings(settings, store, clock)
        observation = _watch(settings, store, clock).observe()
        findings += alert_findings(settings, observation)
        findings += unconfigured_findings(settings, observation)
        findings.append(files_finding(observation))
        findings += outbox_findings(settings, store)
        findings += header_findings(settings, store)
        findings += left_out_findings(store)
        findings += held_elsewhere_findings(store)
        findings += refused_after_acceptance_findings(store)
        findings += requests_of_another_certifier_findings(store)
    finally:
        store.close()
    return findings


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


_UNSENT = frozenset({RecordStatus.INVALID, RecordStatus.PENDING, RecordStatus.REJECTED})
"""Outstanding records in no file the CDC may hold: a certifier's configuration writes them."""
_IN_FILES = frozenset({RecordStatus.BATCHED, RecordStatus.DEPOSITED})
"""Outstanding records in a file written already, with its certifier's identifiers frozen."""


def unconfigured_findings(settings: Settings, observation: Observation) -> list[Finding]:
    """Records of a certifier the configuration no longer has (removed, or its key renamed):
    no new file is written for them, and the listings fold them into `?`. Those in a file
    written before are told apart: that file can still be deposited and its report imported,
    and `exclude` refuses them (the CDC may hold them), so telling that no file was written
    for them and to exclude them sent the operator nowhere."""
    keys = {c.key for c in settings.certifiers}
    unsent: dict[str, int] = {}
    in_files: dict[str, int] = {}
    for (certifier, status), n in observation.records.items():
        if certifier is None or certifier in keys:
            continue
        if status in _UNSENT:
            unsent[certifier] = unsent.get(certifier, 0) + n
        elif status in _IN_FILES:
            in_files[certifier] = in_files.get(certifier, 0) + n
    findings = []
    if unsent:
        findings.append(
            Finding(
                "certifiers",
                Level.WARNING,
                "records of certifiers the configuration does not have wait for the CDC: "
                f"{_counted(unsent)}; no file is written for them: put their [[certifiers]] "
                "section back (the same key), or take them out with `accrochage exclude ID... "
                "--reason TEXT`",
                action=True,
            )
        )
    if in_files:
        findings.append(
            Finding(
                "certifiers",
                Level.WARNING,
                "records of certifiers the configuration does not have are in files written "
                f"for them before it left them out: {_counted(in_files)}; those files keep the "
                "identifiers they were written with: deposit the ones still to upload and "
                "import their reports as for any file (`accrochage batches --certifier KEY`); "
                "a record corrected or rejected there waits for the certifier's section to be "
                "put back",
                action=True,
            )
        )
    return findings


def _counted(counts: dict[str, int]) -> str:
    return ", ".join(f"{key} ({n})" for key, n in sorted(counts.items()))


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
                f"{alertname} ({severity}): {summary}; see {see_for(alertname, certifier)}",
                action=True,
            )
        )
    return findings
