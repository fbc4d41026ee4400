"""An event that repeats a stored content in other words is that content, not a correction.

The content's hash is taken from what the platform sent, as it sent it: cheap, on every
event. Two writings of one content (a default left out, a score as a number) differ there;
only then, on the rare event whose hash matches neither content the record holds, the stored
content is read and both are compared field by field (`same_meaning`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from accrochage.models.decode import Decoded, Kind
from accrochage.models.event import DeliveredEvent, event_from_content, same_meaning
from accrochage.models.record import Change, Record
from accrochage.state.base import Transaction

StoredText = Callable[[str, int], str]
"""A content version's stored text, by record id and version."""


def stored_text(tx: Transaction, changes: list[Change]) -> StoredText:
    """Reads the contents stored in `tx`, and those `changes` will store with it (a group
    may hold two events of one record: the first's content is not saved yet)."""

    def text(record_id: str, version: int) -> str:
        for change in reversed(changes):
            content = change.content
            if content is not None and (content.record_id, content.version) == (
                record_id,
                version,
            ):
                return content.payload
        return tx.content(record_id, version).payload

    return text


def as_stored(read: StoredText, decoded: Decoded, current: Record | None) -> Decoded:
    """`decoded`, or, when it says what the record's content (or its stored correction) says,
    that content: its stored text and hash, so that the record's life sees a repetition and a
    version stored anyway (a record valid again) keeps a content consistent with its hash."""
    if (
        current is None
        or decoded.record_id is None
        or decoded.content_hash in (current.content_hash, current.correction_hash)
    ):
        return decoded
    event = _event_of(decoded)
    if event is None:
        return decoded
    held = [(current.version, current.content_hash)]
    if current.correction_version is not None and current.correction_hash is not None:
        held.append((current.correction_version, current.correction_hash))
    for version, digest in held:
        stored = read(decoded.record_id, version)
        if same_meaning(event, stored):
            return replace(decoded, content=stored, content_hash=digest)
    return decoded


def said_by(stored: str, decoded: Decoded) -> bool:
    """Whether `decoded` says what the stored content text `stored` says, field by field."""
    event = _event_of(decoded)
    return event is not None and same_meaning(event, stored)


def _event_of(decoded: Decoded) -> DeliveredEvent | None:
    """The event `decoded` holds; decoded in another process (a decode process, the HTTP
    service's serving process), only its content crossed (`decoding.lean`): read again from
    it, on this rare path only. Without it every writing of a content the writer process
    stored was taken for a correction."""
    if isinstance(decoded.event, DeliveredEvent):
        return decoded.event
    if decoded.kind is not Kind.DELIVERED or decoded.content is None:
        return None
    try:
        return event_from_content(decoded.content, decoded.event_id)
    except ValueError:  # pydantic's ValidationError included
        return None
