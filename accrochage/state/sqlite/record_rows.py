"""A record's row: `records`' columns, a `Record` written as their values and read back."""

from __future__ import annotations

import functools
import json
import operator
import sqlite3
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any

from accrochage.models.problems import Problem
from accrochage.models.record import Record
from accrochage.models.vocabulary import CdcReason, RecordStatus
from accrochage.state.sqlite.rows import stamp

RECORD_COLUMNS = (
    "record_id",
    "certifier",
    "code",
    "status",
    "outstanding",
    "version",
    "content_hash",
    "delivered_on",
    "deadline",
    "errors",
    "warnings",
    "xml_bytes",
    "batch_id",
    "pending_since",
    "correction_version",
    "revocation_pending",
    "cdc_message",
    "created_at",
    "updated_at",
    "cdc_reason",
    "excluded_from",
    "accepted_batch_id",
    "suppression_rejected",
    "correction_valid",
    "identity_rejections",
    "delivery_met",
    "cdc_held_as",
    "ever_valid",
    "correction_errors",
)


def _day(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def problems_json(problems: Sequence[Problem]) -> str:
    if not problems:
        return "[]"
    return json.dumps([p.as_dict() for p in problems], ensure_ascii=False)


def _problems(text: str) -> tuple[Problem, ...]:
    if text == "[]":
        return ()
    return tuple(Problem(p["field"], p["message"]) for p in json.loads(text))


def record_values(record: Record) -> tuple[Any, ...]:
    return (
        record.record_id,
        record.certifier,
        record.code,
        record.status.value,
        int(record.outstanding),
        record.version,
        record.content_hash,
        _day(record.delivered_on),
        _day(record.deadline),
        problems_json(record.errors),
        problems_json(record.warnings),
        record.xml_bytes,
        record.batch_id,
        stamp(record.pending_since) if record.pending_since else None,
        record.correction_version,
        int(record.revocation_pending),
        record.cdc_message,
        stamp(record.created_at),
        stamp(record.updated_at),
        record.cdc_reason.value if record.cdc_reason is not None else None,
        record.excluded_from.value if record.excluded_from is not None else None,
        record.accepted_batch_id,
        int(record.suppression_rejected),
        None if record.correction_valid is None else int(record.correction_valid),
        record.identity_rejections,
        int(record.delivery_met),
        record.cdc_held_as,
        int(record.ever_valid),
        problems_json(record.correction_errors) if record.correction_errors else None,
    )


_VERSIONS = ("max_version", "correction_hash")
"""The columns `WITH_VERSIONS` adds to a `records` row (`state/sqlite/pending.py`)."""


@functools.lru_cache(maxsize=32)
def _record_getter(columns: tuple[str, ...]) -> Callable[[sqlite3.Row], tuple[Any, ...]]:
    """The values of a row of `columns`, in `RECORD_COLUMNS`' order, then `_VERSIONS`' (the
    record's version and None for those a row does not have). By position, once a query's
    columns are known: read by name, a row's 31 lookups were half of `record_from`'s time
    (about 8 µs of 17 a record)."""
    at = {name: index for index, name in enumerate(columns)}
    if all(name in at for name in _VERSIONS):
        return operator.itemgetter(*(at[name] for name in (*RECORD_COLUMNS, *_VERSIONS)))
    own = operator.itemgetter(*(at[name] for name in RECORD_COLUMNS))
    version = RECORD_COLUMNS.index("version")

    def padded(row: sqlite3.Row) -> tuple[Any, ...]:
        values = own(row)
        latest = row[at["max_version"]] if "max_version" in at else values[version]
        hashed = row[at["correction_hash"]] if "correction_hash" in at else None
        return (*values, latest, hashed)

    return padded


def record_from(row: sqlite3.Row) -> Record:
    """A record from a `records` row, with `max_version` and `correction_hash` if selected."""
    (
        record_id,
        certifier,
        code,
        status,
        _outstanding,
        version,
        content_hash,
        delivered_on,
        deadline,
        errors,
        warnings,
        xml_bytes,
        batch_id,
        pending_since,
        correction_version,
        revocation_pending,
        cdc_message,
        created_at,
        updated_at,
        cdc_reason,
        excluded_from,
        accepted_batch_id,
        suppression_rejected,
        correction_valid,
        identity_rejections,
        delivery_met,
        cdc_held_as,
        ever_valid,
        correction_errors,
        latest_version,
        correction_hash,
    ) = _record_getter(tuple(row.keys()))(row)
    return Record(
        record_id=record_id,
        certifier=certifier,
        code=code,
        status=RecordStatus(status),
        version=version,
        content_hash=content_hash,
        delivered_on=date.fromisoformat(delivered_on) if delivered_on else None,
        deadline=date.fromisoformat(deadline) if deadline else None,
        errors=_problems(errors),
        warnings=_problems(warnings),
        xml_bytes=xml_bytes,
        batch_id=batch_id,
        pending_since=datetime.fromisoformat(pending_since) if pending_since else None,
        correction_version=correction_version,
        revocation_pending=bool(revocation_pending),
        cdc_message=cdc_message,
        created_at=datetime.fromisoformat(created_at),
        updated_at=datetime.fromisoformat(updated_at),
        latest_version=latest_version,
        correction_hash=correction_hash,
        cdc_reason=CdcReason(cdc_reason) if cdc_reason else None,
        excluded_from=RecordStatus(excluded_from) if excluded_from else None,
        accepted_batch_id=accepted_batch_id,
        suppression_rejected=bool(suppression_rejected),
        correction_valid=None if correction_valid is None else bool(correction_valid),
        identity_rejections=identity_rejections,
        delivery_met=bool(delivery_met),
        cdc_held_as=cdc_held_as,
        ever_valid=bool(ever_valid),
        correction_errors=_problems(correction_errors or "[]"),
    )
