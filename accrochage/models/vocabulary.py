"""Every vocabulary of the product, defined once.

Settings, click choices, the HTTP API, the store and the sinks all take their words from here;
a new schema version, status or batch state is added in this file first.
"""

from __future__ import annotations

from enum import StrEnum

CDC_MAX_PASSAGES = 200_000
"""The most passages the CDC takes in one file (SPEC.md, size and volume)."""


class SchemaVersion(StrEnum):
    """CDC XSD versions the tracker can write (SPEC.md §3)."""

    V1_1_2 = "1.1.2"
    V1_1_5 = "1.1.5"


CURRENT_SCHEMA = SchemaVersion.V1_1_5
"""The CDC's current kit: the version written when the configuration names none."""


class RecordStatus(StrEnum):
    """A record's place in its life (DESIGN.md, "The record's life")."""

    INVALID = "invalid"
    PENDING = "pending"
    BATCHED = "batched"
    DEPOSITED = "deposited"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    EXCLUDED = "excluded"
    """Taken out of the obligation by the operator, with a reason (`include` restores it)."""


class BatchState(StrEnum):
    """A batch from its cut to the deposit of its file."""

    CUT = "cut"
    """Frozen in the state, its file not written yet (written at the next flush)."""
    WRITTEN = "written"
    """Its file is released in the outbox, XSD-valid."""
    FAILED = "failed"
    """Writing its file failed (XSD, disk); tried again (`streams/failed_retries.py`)."""
    DEPOSITED = "deposited"
    """The operator declared the file uploaded to the CDC portal."""
    REPORTED = "reported"
    """A CDC report was imported for it (records it did not name keep their status)."""
    SUPERSEDED = "superseded"
    """Never to be uploaded: its content was replaced before any deposit."""


class CdcAction(StrEnum):
    """`flux/action` of schema 1.1.5: one flux creates or deletes, never both."""

    CREATION = "CREATION"
    SUPPRESSION = "SUPPRESSION"


class CdcReason(StrEnum):
    """The class of a CDC rejection message (CONTRACT §9): what the operator must fix."""

    IDENTITY_NOT_FOUND = "identity_not_found"
    """No holder matches: the identity data (names, birth date and place, NIR) must change."""
    IDENTITY_AMBIGUOUS = "identity_ambiguous"
    """Several holders match: more identity data is needed."""
    ALREADY_EXISTS = "already_exists"
    """The CDC holds the passage already: for a CREATION, an acceptance."""
    FILE_REJECTED = "file_rejected"
    """The whole file was refused (its schema, its header)."""
    OTHER = "other"


class SupportWork(StrEnum):
    """What a record the CDC holds under another idTechnique waits for its support to do."""

    CORRECTION = "correction"
    WITHDRAWAL = "withdrawal"


class RequestStatus(StrEnum):
    """A correction request's state (CONTRACT §9, décret 2024-1236)."""

    OPEN = "open"
    ANSWERED = "answered"
    """Closed by the operator: the request was unfounded (the answer says why)."""
    CORRECTED = "corrected"
    """Closed by corrected data: the CDC accepted it, or the operator said so."""
    CANCELLED = "cancelled"
    """Closed by the operator: it was entered by mistake (a wrong record id, a wrong day),
    and no one asked it; the answer says what was meant."""


class RequestSource(StrEnum):
    """Who asked for a correction."""

    CDC = "cdc"
    HOLDER = "holder"


class Outcome(StrEnum):
    """What an event did, as its sender is answered (CONTRACT §3: `outcome`), and `MOVED`:
    a cut, a deposit, a report outcome or a retry changed a record's status."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    CORRECTION_STORED = "correction_stored"
    WITHDRAWN = "withdrawn"
    REVOCATION_FLAGGED = "revocation_flagged"
    REFUSED = "refused"
    UNUSABLE = "unusable"
    """The event can be no record: it is kept in the unusable log."""
    FORBIDDEN = "forbidden"
    """Its sender may not send it (`models/scope.py`): its record untouched, the event kept
    in the unusable log."""
    FAILED = "failed"
    """Its own transaction failed: nothing of it was stored."""
    MOVED = "moved"


EVENT_ANSWERS = tuple(o for o in Outcome if o is not Outcome.MOVED)
"""The outcomes an event is answered with."""


class RecordOrder(StrEnum):
    """How a listing of records is sorted, and so what its pages' cursors hold."""

    DEADLINE = "deadline"
    """The nearest deadline first (unknown ones last), then the record id: what a person
    reads. A record whose deadline moves between two pages (a correction with another
    delivery date, a correction request opened on it) may be missed or shown again by a walk
    page after page."""
    RECORD_ID = "record_id"
    """By record id alone, a key nothing changes: a walk page after page shows each record
    that stays listed throughout exactly once, whatever changes meanwhile (a platform's
    synchronisation)."""


class DepositorNature(StrEnum):
    """`natureDeposant`: who deposits the files."""

    CERTIFICATEUR = "CERTIFICATEUR"
    TIERS_CONFIANCE = "TIERS_CONFIANCE"


def values(vocabulary: type[StrEnum]) -> list[str]:
    """The words of a vocabulary, in definition order (for click choices and API errors)."""
    return [member.value for member in vocabulary]


BATCHES_TO_WRITE = (BatchState.CUT, BatchState.FAILED)
RELEASED = (BatchState.WRITTEN, BatchState.DEPOSITED, BatchState.REPORTED)
"""Batch states whose file exists: in the outbox's top folder, `deposited/` or `done/`."""
PLACED = (*RELEASED, BatchState.SUPERSEDED)
"""Batches whose file exists somewhere in the outbox (superseded ones beside the others)."""
SUPERSEDABLE = (BatchState.WRITTEN, BatchState.FAILED)
"""A file never deposited (written, or whose writing failed), that a correction replaces."""
HEADER_SUPERSEDABLE = (BatchState.CUT, *SUPERSEDABLE)
"""A CREATION batch never deposited whose header the configuration no longer gives: also one
cut and not written yet (a crash, a stop mid-cut), which the next flush would write, under
that header, among the files to upload."""
