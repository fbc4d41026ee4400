"""The statements of the CDC loop (CONTRACT §9): suppressions, superseded files, sendings."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from accrochage.models.batch import FrozenBatch, Member, SentAs, Suppressible
from accrochage.models.registry import Certifier, Emitter
from accrochage.models.vocabulary import (
    HEADER_SUPERSEDABLE,
    SUPERSEDABLE,
    BatchState,
    CdcAction,
    RecordStatus,
    SchemaVersion,
    SupportWork,
)
from accrochage.models.withdrawal import Sending
from accrochage.state.sqlite.rows import frozen_batch_from

_TO_WITHDRAW = """r.status = 'accepted'
  AND (r.correction_version IS NOT NULL OR r.revocation_pending = 1)
  AND (r.revocation_pending = 1 OR r.correction_valid = 1)
  AND r.suppression_rejected = 0
  AND r.cdc_held_as IS NULL
  AND r.batch_id = r.accepted_batch_id"""
"""An accepted record `r` that a SUPPRESSION must withdraw and that none carries yet."""

_SUPPRESSIBLE = f"""
SELECT r.record_id, r.certifier, r.pending_since, r.updated_at, r.xml_bytes,
       m.version, m.code, b.emitter_id_client, b.nature, b.certifier_id_client, b.id_contrat,
       b.schema_version
FROM records r
JOIN batch_members m ON m.batch_id = r.accepted_batch_id AND m.record_id = r.record_id
JOIN batches b ON b.batch_id = r.accepted_batch_id
WHERE {_TO_WITHDRAW}
ORDER BY r.certifier, m.code, r.record_id
"""

_TAKE_SUPPRESSIBLE = f"""
UPDATE records SET batch_id = ?, pending_since = NULL, updated_at = ?
WHERE rowid IN (
  SELECT r.rowid FROM json_each(?) AS planned CROSS JOIN records AS r
  ON r.record_id = planned.value ->> 0
  JOIN batch_members m ON m.batch_id = r.accepted_batch_id AND m.record_id = r.record_id
  WHERE m.version = planned.value ->> 1 AND {_TO_WITHDRAW}
)
RETURNING record_id, revocation_pending
"""
"""The planned members, one JSON array of `[record_id, version]`, still to withdraw with the
version their CREATION sent: moved into the SUPPRESSION batch, where they stay `accepted`."""


def suppressible(conn: sqlite3.Connection) -> list[Suppressible]:
    found = []
    for row in conn.execute(_SUPPRESSIBLE):
        since = row["pending_since"] or row["updated_at"]
        sent_as = SentAs(
            Emitter(row["emitter_id_client"], row["nature"]),
            Certifier(row["certifier"], row["certifier_id_client"], row["id_contrat"], frozenset()),
            SchemaVersion(row["schema_version"]),
        )
        found.append(
            Suppressible(
                row["certifier"],
                Member(row["record_id"], row["version"], row["code"], row["xml_bytes"] or 0),
                sent_as,
                datetime.fromisoformat(since),
            )
        )
    return found


HELD_ELSEWHERE = """
(correction_version IS NOT NULL OR revocation_pending = 1)
  AND status = 'accepted' AND cdc_held_as IS NOT NULL
  AND (revocation_pending = 1 OR correction_valid = 1)
  AND (batch_id IS accepted_batch_id OR suppression_rejected = 1)
"""
"""The records of `held_elsewhere`, read through `records_flagged` (a partial index): the
flagged records are few."""
_HELD_ELSEWHERE = (
    "SELECT record_id, certifier, cdc_held_as, revocation_pending FROM records "
    f"WHERE {HELD_ELSEWHERE} ORDER BY certifier, record_id"
)


def held_elsewhere(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Accepted records the CDC holds under another idTechnique that wait for a correction
    or a withdrawal the CDC's support must apply (no SUPPRESSION is cut for them): a valid
    correction, and no SUPPRESSION cut before (by an earlier version) still in flight."""
    return [
        {
            "record_id": row["record_id"],
            "certifier": row["certifier"],
            "cdc_held_as": row["cdc_held_as"],
            "waits_for": (
                SupportWork.WITHDRAWAL if row["revocation_pending"] else SupportWork.CORRECTION
            ).value,
        }
        for row in conn.execute(_HELD_ELSEWHERE)
    ]


_OUT_OF_DATE = (
    "SELECT b.batch_id, b.created_at FROM records r "
    "JOIN batches b ON b.batch_id = r.batch_id "
    "WHERE (r.correction_version IS NOT NULL OR r.revocation_pending = 1) AND r.status = ? "
    f"AND b.state IN ({', '.join('?' * len(SUPERSEDABLE))}) AND b.action = ? "
    "AND b.deposited_at IS NULL AND b.report_file IS NULL"
)
"""The flagged records (`records_flagged`, a partial index) of one status in batches of one
action never deposited."""


_TAKEN_BACK = (
    "SELECT b.batch_id, b.created_at FROM batches b CROSS JOIN records r INDEXED BY records_batch "
    f"WHERE b.state IN ({', '.join('?' * len(SUPERSEDABLE))}) AND b.action = ? "
    "AND b.deposited_at IS NULL AND b.report_file IS NULL "
    "AND r.batch_id = b.batch_id AND r.status = ? AND r.correction_version IS NOT NULL "
    "AND r.revocation_pending = 0 "
    "AND (SELECT c.content_hash FROM contents c WHERE c.record_id = r.record_id "
    "AND c.version = r.correction_version) = r.content_hash"
)
"""SUPPRESSION files never deposited (few: found from the batches first) holding a record
whose stored correction is the content the CDC holds. Each batch's records are read by
`records_batch`: left to the planner, `records_flagged` (status=?) was chosen, which read
every flagged accepted record of the state once per SUPPRESSION file (44 files x 8,233
records: 0.9 s at 1,000,000 records, in the write transaction of every batch-cut tick)."""


_HELD_IN_FLIGHT = (
    "SELECT b.batch_id, b.created_at FROM records r "
    "JOIN batches b ON b.batch_id = r.batch_id "
    "WHERE (r.correction_version IS NOT NULL OR r.revocation_pending = 1) AND r.status = ? "
    "AND r.cdc_held_as IS NOT NULL "
    f"AND b.state IN ({', '.join('?' * len(SUPERSEDABLE))}) AND b.action = ? "
    "AND b.deposited_at IS NULL AND b.report_file IS NULL"
)
"""SUPPRESSION files never deposited holding a record the CDC holds under another
idTechnique (cut before `cdc_held_as` existed): that passage would find nothing to delete."""


def to_supersede(conn: sqlite3.Connection) -> list[str]:
    """Files never deposited that are out of date: a CREATION file holding a record corrected
    or revoked since, a SUPPRESSION file holding a record whose correction was taken back
    (the content the CDC holds sent again: its stored correction is that content) or a record
    the CDC holds under another idTechnique."""
    states = [state.value for state in SUPERSEDABLE]
    rows = conn.execute(
        f"{_OUT_OF_DATE} UNION {_TAKEN_BACK} UNION {_HELD_IN_FLIGHT} ORDER BY 2, 1",
        (
            RecordStatus.BATCHED.value,
            *states,
            CdcAction.CREATION.value,
            *states,
            CdcAction.SUPPRESSION.value,
            RecordStatus.ACCEPTED.value,
            RecordStatus.ACCEPTED.value,
            *states,
            CdcAction.SUPPRESSION.value,
        ),
    )
    return [r[0] for r in rows]


def half_superseded(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT batch_id FROM batches b WHERE state = ? AND action = ? AND EXISTS "
        "(SELECT 1 FROM records r WHERE r.batch_id = b.batch_id AND r.status = ?) "
        "ORDER BY created_at, batch_id",
        (BatchState.SUPERSEDED.value, CdcAction.CREATION.value, RecordStatus.BATCHED.value),
    )
    return [row[0] for row in rows]


def undeposited_creations(conn: sqlite3.Connection) -> list[FrozenBatch]:
    """CREATION batches cut, written (or failed), never deposited nor reported: what their
    headers say, to compare with the configuration."""
    states = [state.value for state in HEADER_SUPERSEDABLE]
    rows = conn.execute(
        f"SELECT * FROM batches WHERE state IN ({', '.join('?' * len(states))}) "
        "AND action = ? AND deposited_at IS NULL AND report_file IS NULL "
        "ORDER BY created_at, batch_id",
        (*states, CdcAction.CREATION.value),
    )
    return [frozen_batch_from(row) for row in rows]


def refused_after_acceptance(conn: sqlite3.Connection) -> tuple[int, str | None]:
    count, first = conn.execute(
        "SELECT count(*), min(record_id) FROM records WHERE status = ? AND delivery_met = 1",
        (RecordStatus.REJECTED.value,),
    ).fetchone()
    return int(count), first


def batch_superseded(conn: sqlite3.Connection, batch_id: str, file: Path | None) -> None:
    conn.execute(
        "UPDATE batches SET state = ?, file_path = coalesce(?, file_path) WHERE batch_id = ?",
        (BatchState.SUPERSEDED.value, str(file) if file else None, batch_id),
    )


_WITHDRAWN_UNTIL = (
    "SELECT max(julianday(s.created_at)) FROM history h "
    "JOIN batches s ON s.batch_id = h.batch_id "
    "WHERE h.record_id = ? AND s.action = ? AND h.from_status = ? AND h.to_status != ?"
)
"""When the last SUPPRESSION of a record the CDC accepted was cut (a Julian day: stamps carry
their Paris offset, so they are compared as instants): every CREATION cut before it carried a
content the CDC deleted (an accepted SUPPRESSION moves the record out of
`accepted`; a refused one leaves it there)."""


def sendings(conn: sqlite3.Connection, record_id: str) -> list[Sending]:
    accepted = RecordStatus.ACCEPTED.value
    (withdrawn_until,) = conn.execute(
        _WITHDRAWN_UNTIL, (record_id, CdcAction.SUPPRESSION.value, accepted, accepted)
    ).fetchone()
    rows = conn.execute(
        "SELECT m.batch_id, m.version, c.content_hash FROM batch_members m "
        "JOIN batches b ON b.batch_id = m.batch_id "
        "JOIN contents c ON c.record_id = m.record_id AND c.version = m.version "
        "WHERE m.record_id = ? AND b.action = ? AND julianday(b.created_at) > coalesce(?, 0) "
        "AND NOT EXISTS ("
        "  SELECT 1 FROM history h WHERE h.record_id = m.record_id "
        "  AND h.batch_id = m.batch_id AND h.to_status = ?) "
        "ORDER BY julianday(b.created_at), b.batch_id",
        (record_id, CdcAction.CREATION.value, withdrawn_until, RecordStatus.REJECTED.value),
    )
    return [Sending(r[0], r[1], r[2]) for r in rows]


def take_suppressible(
    conn: sqlite3.Connection, members: Sequence[Member], batch_id: str, at: str
) -> dict[str, bool]:
    """Members of a SUPPRESSION stay `accepted`; their `batch_id` names it while in flight."""
    planned = json.dumps([[m.record_id, m.version] for m in members])
    return {
        record_id: bool(revoked)
        for record_id, revoked in conn.execute(_TAKE_SUPPRESSIBLE, (batch_id, at, planned))
    }


def carried_hash(conn: sqlite3.Connection, batch_id: str, record_id: str) -> str | None:
    row = conn.execute(
        "SELECT c.content_hash FROM batch_members m "
        "JOIN contents c ON c.record_id = m.record_id AND c.version = m.version "
        "WHERE m.batch_id = ? AND m.record_id = ?",
        (batch_id, record_id),
    ).fetchone()
    return None if row is None else str(row[0])
