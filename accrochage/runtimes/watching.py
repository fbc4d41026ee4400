"""What the services watch and whom they warn, built from the settings: the watch job
(metrics, alert rules) and the alert delivery job, for both runtimes."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from accrochage.app import Core
from accrochage.state.base import AlertState
from accrochage.streams.alerts import FIRING, Alerting, active, severity_of
from accrochage.streams.receivers import Alertmanager, Deliverer, Receiver, Webhook, delivery_job
from accrochage.streams.scheduler import Job
from accrochage.streams.watch import Watch, watch_job


def watch_for(core: Core) -> Watch:
    """The watch job's numbers feed the metrics and the alert rules, in that order."""
    settings = core.settings
    certifiers = [c.key for c in settings.certifiers]
    return Watch(
        core.store,
        core.clock,
        margin_days=settings.batching.margin_days,
        certifiers=certifiers,
        unreported_after=settings.alerts.unreported_after,
        listeners=[
            partial(core.metrics.watched, certifiers=certifiers),
            Alerting(core.store, certifiers).listener,
        ],
        heard_by_all=core.metrics.watch_heard,
    )


def receivers_for(core: Core) -> list[Receiver]:
    alerts = core.settings.alerts
    receivers: list[Receiver] = [
        Webhook(url.get_secret_value(), alerts.repeat) for url in alerts.webhooks
    ]
    if alertmanager := alerts.alertmanager.get_secret_value():
        receivers.append(Alertmanager(alertmanager))
    return receivers


def deliverer_for(core: Core, watch: Watch, extra: Sequence[Receiver] = ()) -> Deliverer:
    """Sends once `watch` has evaluated the rules on the state as it is in this process."""
    receivers = [*receivers_for(core), *extra]
    core.metrics.alert_receivers(r.name for r in receivers)
    return Deliverer(
        core.store,
        core.clock,
        receivers,
        ready=lambda: watch.heard,
        counted=core.metrics.count_alert_delivery,
    )


def watching_jobs(core: Core, extra: Sequence[Receiver] = ()) -> list[Job]:
    tick = core.settings.batching.tick.total_seconds()
    watch = watch_for(core)
    return [watch_job(watch, tick), delivery_job(deliverer_for(core, watch, extra), tick)]


def firing_now(core: Core) -> list[AlertState]:
    """The alerts the rules fire on the state now (since when: as the services recorded it)."""
    watch = watch_for(core)
    now = core.clock.now()
    firing = active(watch.observe(), watch.certifiers)
    with core.store.reading() as reader:
        known = {(s.alertname, s.certifier): s for s in reader.alert_states()}
    out = []
    for (alertname, certifier), n in sorted(firing.items()):
        stored = known.get((alertname, certifier))
        since = stored.starts_at if stored is not None and stored.status == FIRING else now
        out.append(AlertState(alertname, certifier, severity_of(alertname), FIRING, n, since))
    return out
