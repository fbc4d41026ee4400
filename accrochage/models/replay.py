"""An event the record took already, sent again, changes nothing, whatever came after it.

Content alone cannot tell a replay from a decision. Sent again after a correction, a first
content would be taken for a correction back to it (and, once the record is in a batch, would
take the stored correction back); sent again after the operator's `reinstate`, a revocation
would revoke again. A platform replays after an outage, an HTTP client retries a request the
tracker had answered, an operator ingests yesterday's file a second time: none of these may
undo what came later. An event carries its `event_id`, unique per emission (CONTRACT): the
same event (its id, and for a delivery its content) already applied to the record is a
replay. A new decision is a new emission, with a new `event_id`.

The store answers whether the record took the event (`Replay`); this module says, without
reading anything, when the question is worth asking (never on the hot path of a new record
or of a content the record holds already), and which events the store must remember beyond
the content versions it keeps anyway (`to_remember`).
"""

from __future__ import annotations

from dataclasses import dataclass

from accrochage.models.decode import Decoded, Kind
from accrochage.models.record import Change, Record, Status
from accrochage.models.revocation import belongs_elsewhere
from accrochage.models.vocabulary import Outcome


@dataclass(frozen=True, slots=True)
class Replay:
    """What to look for in the record's past: a content version `event_id` stored, or a
    delivery it remembers, saying what `decoded` says; or the revocation `event_id` was
    (`revocation`)."""

    record_id: str
    event_id: str
    revocation: bool


def replay_to_look_for(current: Record | None, decoded: Decoded) -> Replay | None:
    """The replay `decoded` may be, when being one would change what it does to `current`:
    an event of the record's own certifier that would otherwise change the record."""
    if current is None or decoded.record_id is None or decoded.event_id is None:
        return None
    if belongs_elsewhere(current, decoded.certifier):
        return None
    if decoded.kind is Kind.REVOKED:
        if current.status is Status.WITHDRAWN or current.revocation_pending:
            return None  # revoked already: unchanged without asking
        return Replay(decoded.record_id, decoded.event_id, revocation=True)
    if decoded.kind is not Kind.DELIVERED or decoded.content_hash is None:
        return None
    if decoded.content_hash == _last_word(current):
        return None  # the record holds it: unchanged (or, invalid, valid again) as before
    return Replay(decoded.record_id, decoded.event_id, revocation=False)


def _last_word(record: Record) -> str:
    """The hash of the content the record will hold: its stored correction, if any."""
    if record.correction_version is not None and record.correction_hash is not None:
        return record.correction_hash
    return record.content_hash


@dataclass(frozen=True, slots=True)
class TakenEvent:
    """An event a record took that no content version of it keeps: a revocation
    (`content_hash` None), or a delivery that changed it without storing a version."""

    record_id: str
    event_id: str
    content_hash: str | None


REVOCATION_TAKEN = frozenset({Outcome.WITHDRAWN, Outcome.REVOCATION_FLAGGED, Outcome.UNCHANGED})


def to_remember(current: Record | None, decoded: Decoded, change: Change) -> TakenEvent | None:
    """What the state must remember of `decoded` to know it again when it is replayed: a
    revocation the record took, answered `unchanged` too (revoked already: replayed after
    `reinstate`, a second emission must not revoke again either); a delivery that took a
    stored correction back (it stores no version, and replayed after a new correction it
    would take that one back)."""
    if current is None or decoded.record_id is None or decoded.event_id is None:
        return None
    if decoded.kind is Kind.REVOKED and change.outcome in REVOCATION_TAKEN:
        return TakenEvent(decoded.record_id, decoded.event_id, None)
    took_back = change.record is not None and change.content is None
    if decoded.kind is Kind.DELIVERED and took_back and decoded.content_hash is not None:
        return TakenEvent(decoded.record_id, decoded.event_id, decoded.content_hash)
    return None
