"""The record's life (DESIGN.md): statuses, and what one event does to one record.

Pure functions over plain row dicts: the store reads the current row, asks `apply_*` what
changes, and writes the answer in the same transaction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from accrochage.models.deadline import deadline_for
from accrochage.models.decode import Decoded
from accrochage.models.problems import Problem, problems_as_dicts

Row = dict[str, Any]


class Status(StrEnum):
    INVALID = "invalid"
    PENDING = "pending"
    BATCHED = "batched"
    DEPOSITED = "deposited"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


NEVER_SENT = frozenset({Status.INVALID, Status.PENDING, Status.REJECTED})
IN_A_BATCH = frozenset({Status.BATCHED, Status.DEPOSITED, Status.ACCEPTED})


class Outcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    CORRECTION_STORED = "correction_stored"
    WITHDRAWN = "withdrawn"
    REVOCATION_FLAGGED = "revocation_flagged"
    REFUSED = "refused"


@dataclass(slots=True)
class Change:
    outcome: Outcome
    record: Row | None = None
    content: Row | None = None
    history: Row | None = None
    errors: list[Problem] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.record is not None


def is_outstanding(status: str, correction: bool, revocation: bool) -> bool:
    if status in (Status.ACCEPTED, Status.WITHDRAWN):
        return correction or revocation
    return True


def history_row(
    record_id: str,
    at: str,
    before: str | None,
    after: str,
    reason: str,
    batch_id: str | None = None,
    report: str | None = None,
) -> Row:
    return {
        "record_id": record_id,
        "at": at,
        "from_status": before,
        "to_status": after,
        "reason": reason,
        "batch_id": batch_id,
        "report": report,
    }


def _content_row(decoded: Decoded, version: int, now: str, source: str | None) -> Row:
    return {
        "record_id": decoded.record_id,
        "version": version,
        "content_hash": decoded.content_hash,
        "event_id": decoded.event_id,
        "payload": decoded.content,
        "occurred_at": _envelope_text(decoded, "occurred_at"),
        "emitted_by": _envelope_text(decoded, "source"),
        "received_at": now,
        "source": source,
    }


def _envelope_text(decoded: Decoded, name: str) -> str | None:
    value = (decoded.payload or {}).get(name)
    return value[:255] if isinstance(value, str) else None


def _problems_json(problems: list[Problem]) -> str:
    return json.dumps(problems_as_dicts(problems), ensure_ascii=False) if problems else "[]"


def _fields_from(decoded: Decoded, xml_bytes: int | None) -> Row:
    """What a record row says of its current content."""
    deadline = deadline_for(decoded.delivered_on) if decoded.delivered_on else None
    return {
        "certifier": decoded.certifier,
        "code": decoded.code,
        "content_hash": decoded.content_hash,
        "delivered_on": decoded.delivered_on.isoformat() if decoded.delivered_on else None,
        "deadline": deadline.isoformat() if deadline else None,
        "errors": _problems_json(decoded.errors),
        "warnings": _problems_json(decoded.warnings),
        "xml_bytes": xml_bytes,
    }


def apply_delivered(
    current: Row | None, decoded: Decoded, now: str, source: str | None, xml_bytes: int | None
) -> Change:
    """A `certification.delivered` event against the record it names (or none yet)."""
    assert decoded.record_id is not None
    status = Status.PENDING if decoded.valid else Status.INVALID
    if current is None:
        record = {
            "record_id": decoded.record_id,
            **_fields_from(decoded, xml_bytes),
            "status": status,
            "outstanding": 1,
            "version": 1,
            "batch_id": None,
            "pending_since": now if status is Status.PENDING else None,
            "correction_version": None,
            "revocation_pending": 0,
            "cdc_message": None,
            "created_at": now,
            "updated_at": now,
        }
        reason = "event received" if decoded.valid else "event received with errors"
        return Change(
            Outcome.CREATED,
            record,
            _content_row(decoded, 1, now, source),
            history_row(decoded.record_id, now, None, status, reason),
        )
    if _belongs_elsewhere(current, decoded):
        return Change(
            Outcome.REFUSED,
            errors=[
                Problem(
                    "record_id",
                    f"{decoded.record_id} is already a record of certifier "
                    f"{current['certifier']!r}; "
                    "record ids are unique across the tracker (the CDC idTechnique)",
                )
            ],
        )
    revalidated = current["status"] == Status.INVALID and decoded.valid
    before = Status(current["status"])
    # A stored correction only counts as the current content while the record is in a batch:
    # once rejected (or never sent), sending it again must re-queue it like any correction.
    same = decoded.content_hash == current["content_hash"] or (
        before in IN_A_BATCH and decoded.content_hash == current.get("correction_hash")
    )
    if same and not revalidated:
        return Change(Outcome.UNCHANGED)
    version = int(current["max_version"]) + 1
    content = _content_row(decoded, version, now, source)
    if before in IN_A_BATCH:
        record = {**current, "correction_version": version, "outstanding": 1, "updated_at": now}
        reason = "correction received after the batch was cut: kept for the correction path"
        return Change(
            Outcome.CORRECTION_STORED,
            record,
            content,
            history_row(decoded.record_id, now, before, before, reason),
        )
    was_waiting = before is Status.PENDING and status is Status.PENDING
    record = {
        **current,
        **_fields_from(decoded, xml_bytes),
        "status": status,
        "outstanding": 1,
        "version": version,
        "batch_id": None,
        "correction_version": None,  # the new content supersedes any stored correction
        "cdc_message": None,
        "updated_at": now,
        "pending_since": current["pending_since"]
        if was_waiting
        else (now if status is Status.PENDING else None),
    }
    reason = "correction received" if decoded.valid else "correction received with errors"
    return Change(
        Outcome.UPDATED,
        record,
        content,
        history_row(decoded.record_id, now, before, status, reason),
    )


def _belongs_elsewhere(current: Row, decoded: Decoded) -> bool:
    return (
        current["certifier"] is not None
        and decoded.certifier is not None
        and current["certifier"] != decoded.certifier
    )


def apply_revoked(current: Row | None, decoded: Decoded, now: str) -> Change:
    assert decoded.record_id is not None
    if current is None:
        return Change(
            Outcome.REFUSED,
            errors=[
                Problem(
                    "record_id",
                    f"no record {decoded.record_id} to revoke; send the revocation after "
                    "the certification.delivered event",
                )
            ],
        )
    if _belongs_elsewhere(current, decoded):
        return Change(
            Outcome.REFUSED,
            errors=[
                Problem(
                    "certifier", f"record {decoded.record_id} belongs to {current['certifier']!r}"
                )
            ],
        )
    before = Status(current["status"])
    if before is Status.WITHDRAWN or current["revocation_pending"]:
        return Change(Outcome.UNCHANGED)
    reason = "revoked" + (
        f": {decoded.payload.get('reason')}"
        if decoded.payload and decoded.payload.get("reason")
        else ""
    )
    if before in NEVER_SENT:
        record = {
            **current,
            "status": Status.WITHDRAWN,
            "updated_at": now,
            "outstanding": int(
                is_outstanding(Status.WITHDRAWN, current["correction_version"] is not None, False)
            ),
            "pending_since": None,
        }
        return Change(
            Outcome.WITHDRAWN,
            record,
            None,
            history_row(decoded.record_id, now, before, Status.WITHDRAWN, reason),
        )
    record = {**current, "revocation_pending": 1, "outstanding": 1, "updated_at": now}
    return Change(
        Outcome.REVOCATION_FLAGGED,
        record,
        None,
        history_row(
            decoded.record_id,
            now,
            before,
            before,
            reason + " after the batch was cut: flagged for SUPPRESSION",
        ),
    )
