"""Alert rules (CONTRACT §10), evaluated from the watch job's observation, their state kept in
the store.

One alert per (alertname, certifier); `certifier` is a configured key or `?`. Evaluating
changes only the `alerts` table (firing, resolved); sending is `streams/receivers.py`'s job,
which compares what each receiver last got with that table. So a restart forgets nothing
(the table says what fires) and repeats nothing (the deliveries say what was sent).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from accrochage.models.vocabulary import BatchState
from accrochage.state.base import AlertState, Observation, Store
from accrochage.streams.state_metrics import UNKNOWN, by_label

log = logging.getLogger("accrochage.alerts")
FIRING = "firing"
RESOLVED = "resolved"
ZERO_TIME = "0001-01-01T00:00:00Z"
"""`endsAt` of a firing alert in Alertmanager's webhook (it has no end yet)."""


@dataclass(frozen=True, slots=True)
class Rule:
    alertname: str
    severity: str
    summary: str
    """The annotation, with `{n}` the count and `{certifier}`: counts only, never a person."""
    see: str = "`accrochage outstanding{scope}`"
    """The command that lists what fires it (`doctor` names it), `{scope}` its
    `--certifier` option: a trusted third party's forty alerts named one listing each."""


AT_RISK = Rule(
    "AccrochageRecordsAtRisk",
    "warning",
    "{n} outstanding record(s) of {certifier} are due within the deadline margin, overdue, "
    "or due on a day unknown (their delivery date cannot be read)",
)
OVERDUE = Rule(
    "AccrochageRecordsOverdue", "critical", "{n} record(s) of {certifier} are past the deadline"
)
BATCH_FAILED = Rule(
    "AccrochageBatchFailed",
    "critical",
    "{n} batch file(s) of {certifier} could not be written",
    "`accrochage batches --state failed{scope}` and `accrochage flush`",
)
UNREPORTED = Rule(
    "AccrochageBatchUnreported",
    "warning",
    "{n} file(s) of {certifier} written long ago still have no CDC report imported",
    "`accrochage batches --state written{scope}`, `accrochage batches --state deposited{scope}` "
    "and "
    "`accrochage import-report`",
)
CORRECTION_AT_RISK = Rule(
    "AccrochageCorrectionRequestAtRisk",
    "warning",
    "{n} open correction request(s) of {certifier} are due within the margin or overdue",
    "`accrochage correction-request list --open{scope}`",
)
RULES = (AT_RISK, OVERDUE, BATCH_FAILED, UNREPORTED, CORRECTION_AT_RISK)
_BY_NAME = {rule.alertname: rule for rule in RULES}


def active(observation: Observation, certifiers: Iterable[str]) -> dict[tuple[str, str], int]:
    """(alertname, certifier) -> the count that makes it fire, for every alert that fires."""
    keys = tuple(certifiers)
    due = dict(observation.at_risk)
    for certifier, n in observation.overdue.items():  # at risk keeps firing past the deadline
        due[certifier] = due.get(certifier, 0) + n
    failed: dict[str | None, int] = {}
    for (certifier, state), n in observation.batches.items():
        if state == BatchState.FAILED:
            failed[certifier] = failed.get(certifier, 0) + n
    counts: dict[Rule, Mapping[str | None, int]] = {
        AT_RISK: due,
        OVERDUE: observation.overdue,
        BATCH_FAILED: failed,
        UNREPORTED: {k: v for k, v in observation.unreported.items()},
        CORRECTION_AT_RISK: observation.correction_requests_at_risk or {},
    }
    out: dict[tuple[str, str], int] = {}
    for rule, per_certifier in counts.items():
        for certifier, n in by_label(per_certifier, keys).items():
            if n > 0:
                out[(rule.alertname, certifier)] = n
    return out


class Alerting:
    """Evaluates the rules on each observation and records the changes in the store."""

    def __init__(self, store: Store, certifiers: Iterable[str]) -> None:
        self.store = store
        self.certifiers = tuple(certifiers)

    def evaluate(self, observation: Observation, now: datetime) -> list[AlertState]:
        """Update the alerts table; return the alerts whose status changed."""
        firing = active(observation, self.certifiers)
        changed: list[AlertState] = []
        counts: list[AlertState] = []
        with self.store.reading() as reader:  # one watch job per state: no other writer
            known = {(s.alertname, s.certifier): s for s in reader.alert_states()}
        for key, n in firing.items():
            state = known.get(key)
            if state is None or state.status != FIRING:
                rule = _BY_NAME[key[0]]
                changed.append(AlertState(key[0], key[1], rule.severity, FIRING, n, now))
            elif state.value != n:
                counts.append(replace(state, value=n))
        for key, state in known.items():
            if state.status == FIRING and key not in firing:
                changed.append(replace(state, status=RESOLVED, ends_at=now))
        if changed or counts:  # a write only when something moved
            with self.store.transaction() as tx:
                tx.save_alert_states([*changed, *counts])
        for state in changed:
            log.info("alert %s %s (certifier %s)", state.alertname, state.status, state.certifier)
        return changed

    def listener(self, observation: Observation, now: datetime) -> None:
        self.evaluate(observation, now)


def see_for(alertname: str, certifier: str) -> str:
    """The listing of what fires `alertname` for `certifier` (a configured key; `?`, the
    certifiers taken out of the configuration, has no option to name them)."""
    scope = "" if certifier == UNKNOWN else f" --certifier {certifier}"
    return _BY_NAME[alertname].see.format(scope=scope)


def severity_of(alertname: str) -> str:
    return _BY_NAME[alertname].severity


def labels(state: AlertState) -> dict[str, str]:
    return {"alertname": state.alertname, "certifier": state.certifier, "severity": state.severity}


def fingerprint(state: AlertState) -> str:
    text = json.dumps(labels(state), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def annotations_of(state: AlertState) -> dict[str, str]:
    rule = _BY_NAME.get(state.alertname)
    summary = rule.summary if rule else "{n} item(s) of {certifier} need attention"
    return {"summary": summary.format(n=state.value, certifier=state.certifier)}


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def alert_object(state: AlertState) -> dict[str, Any]:
    """The alert as Alertmanager puts it in `alerts[]` of its webhook."""
    return {
        "status": state.status,
        "labels": labels(state),
        "annotations": annotations_of(state),
        "startsAt": _iso(state.starts_at),
        "endsAt": _iso(state.ends_at) if state.ends_at is not None else ZERO_TIME,
        "generatorURL": "",
        "fingerprint": fingerprint(state),
    }


def webhook_body(state: AlertState, receiver: str = "accrochage") -> dict[str, Any]:
    """Alertmanager's webhook payload (version 4), one group holding this one alert."""
    group = {"alertname": state.alertname, "certifier": state.certifier}
    return {
        "version": "4",
        "groupKey": "{}:" + "{" + ",".join(f'{k}="{v}"' for k, v in group.items()) + "}",
        "truncatedAlerts": 0,
        "status": state.status,
        "receiver": receiver,
        "groupLabels": group,
        "commonLabels": labels(state),
        "commonAnnotations": annotations_of(state),
        "externalURL": "",
        "alerts": [alert_object(state)],
    }
