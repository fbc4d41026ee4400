"""Unusable events the operator dealt with: dismissed with a note, kept, out of the listings
and of the summary's count. Before, every unusable event stayed listed and counted for ever,
those sent again fixed among them: the count said nothing of what was left to do."""

from __future__ import annotations

from collections.abc import Sequence

from accrochage.errors import StoreError
from accrochage.models.deadline import Clock
from accrochage.state.base import Store
from accrochage.streams.item_outcomes import ItemOutcome, not_applied, refused


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
