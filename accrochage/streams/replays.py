"""Whether a record took an event already (`models/replay.py` says when to ask): in the
state, or in what its group will store with it (a file may hold an event, its correction
and the event again)."""

from __future__ import annotations

from collections.abc import Callable

from accrochage.models.decode import Decoded
from accrochage.models.record import Change
from accrochage.models.replay import Replay, TakenEvent
from accrochage.state.base import Transaction
from accrochage.streams.repetition import StoredText, said_by

Replayed = Callable[[Replay, Decoded], bool]


def replayed(
    tx: Transaction, changes: list[Change], taken: list[TakenEvent], read: StoredText
) -> Replayed:
    """Answers `Replay` questions from `tx` and the group's `changes` and `taken` events
    not saved yet."""

    def took(replay: Replay, decoded: Decoded) -> bool:
        remembered = [
            t.content_hash
            for t in taken
            if (t.record_id, t.event_id) == (replay.record_id, replay.event_id)
        ] + tx.events_taken(replay.record_id, replay.event_id)
        if replay.revocation:
            return None in remembered
        if decoded.content_hash in remembered:
            return True
        versions = _stored_in(changes, replay) + tx.versions_stored_by(
            replay.record_id, replay.event_id
        )
        if any(digest == decoded.content_hash for _, digest in versions):
            return True
        # The same event written otherwise (a default left out, another key order) is it still.
        return any(said_by(read(replay.record_id, version), decoded) for version, _ in versions)

    return took


def _stored_in(changes: list[Change], replay: Replay) -> list[tuple[int, str]]:
    return [
        (change.content.version, change.content.content_hash)
        for change in changes
        if change.content is not None
        and change.content.record_id == replay.record_id
        and change.content.event_id == replay.event_id
    ]
