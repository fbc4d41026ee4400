"""Unusable events the operator dealt with: dismissed with a note, kept, out of the listings
and of the summary's count. Before, every unusable event stayed listed and counted for ever,
those sent again fixed among them: the count said nothing of what was left to do.

A dismissed event's raw input (it may name a person) is forgotten once it was dismissed for
`state.forget_dismissed_after`: the services do it once a day, `accrochage forget-dismissed`
at once. Before, it stayed in the state for as long as the state.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from accrochage.errors import StoreError
from accrochage.models.deadline import Clock
from accrochage.settings.durations import show
from accrochage.state.base import Store
from accrochage.streams.item_outcomes import ItemOutcome, not_applied, refused
from accrochage.streams.scheduler import Job, OnceADay

log = logging.getLogger("accrochage.unusable")


def dismiss_unusable(
    store: Store, clock: Clock, refs: Sequence[str], note: str
) -> list[ItemOutcome]:
    """Each ref (an id `accrochage unusable` lists) answered on its own: dismissed, or not
    an id of the unusable log."""
    ids: dict[str, int] = {}
    outcomes: list[ItemOutcome] = []
    for ref in refs:
        if ref.isascii() and ref.isdigit() and len(ref) < 19:
            ids[ref] = int(ref)
        else:
            outcomes.append(refused(ref, "not an id of the unusable log (accrochage unusable)"))
    if not ids:
        return outcomes
    try:
        with store.transaction() as tx:
            found = set(tx.dismiss_unusable(list(ids.values()), note, clock.now()))
    except StoreError as exc:
        return outcomes + not_applied(list(ids), exc)
    for ref, unusable_id in ids.items():
        if unusable_id in found:
            outcomes.append(ItemOutcome(ref, True, "dismissed (kept: unusable --all)"))
        else:
            outcomes.append(refused(ref, "no unusable event has this id (accrochage unusable)"))
    return outcomes


def dismiss_open(
    store: Store, clock: Clock, certifier: str | None, note: str, sender: str | None = None
) -> int:
    """Every unusable event not dealt with yet (those naming `certifier`, and those `sender`
    sent, when given) dismissed at once: a platform's flood, which listing ids by the
    thousand served badly."""
    with store.transaction() as tx:
        return tx.dismiss_open_unusable(certifier, note, clock.now(), sender=sender)


def forget_dismissed(store: Store, clock: Clock, dismissed_before: datetime) -> int:
    """Forget the raw input of the unusable events dismissed before `dismissed_before`; how
    many were forgotten now (those forgotten before are not counted again)."""
    with store.transaction() as tx:
        return tx.forget_dismissed_unusable(dismissed_before, clock.now())


class ForgetDismissed(OnceADay):
    """Once a Paris day, the first time at start: the raw input of the unusable events
    dismissed for longer than `after` forgotten, by the services' scheduler."""

    def __init__(self, store: Store, clock: Clock, after: timedelta) -> None:
        super().__init__(clock)
        self._store = store
        self._after = after

    def work(self) -> None:
        forgotten = forget_dismissed(self._store, self._clock, self._clock.now() - self._after)
        if forgotten:
            log.info(
                "the raw input of %d unusable event(s) dismissed more than %s ago forgotten "
                "(state.forget_dismissed_after)",
                forgotten,
                show(self._after),
            )


def forget_job(store: Store, clock: Clock, after: timedelta, every: float) -> Job:
    """`every`: seconds between two looks at the date (the forgetting runs once a day)."""
    return Job("dismissed input forgotten", every, ForgetDismissed(store, clock, after).run)
