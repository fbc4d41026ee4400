"""Where a record's evidence lies (`accrochage evidence`): its batches, the reports naming it."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

from accrochage.models.vocabulary import BatchState, CdcAction
from accrochage.state.sqlite.rows import archived_from
from accrochage.state.values import CarryingBatch, EvidenceSources, ReportNaming

OUTCOME_LISTS = (
    ("accepted", "accepted"),
    ("rejected", "rejected"),
    ("unchanged", "unchanged"),
    ("unknown_ids", "unknown"),
)
"""The lists of an import's stored summary that name records, and what each says of them."""


def evidence_sources(conn: sqlite3.Connection, record_id: str) -> EvidenceSources:
    carrying = tuple(
        CarryingBatch(
            batch_id=row["batch_id"],
            certifier=row["certifier"],
            action=CdcAction(row["action"]),
            state=BatchState(row["state"]),
            schema_version=row["schema_version"],
            created_at=datetime.fromisoformat(row["created_at"]),
            file_name=row["file_name"],
            file_path=Path(row["file_path"]) if row["file_path"] else None,
            sha256=row["sha256"],
            size=row["bytes"],
            archived=archived_from(row),
        )
        for row in conn.execute(
            "SELECT * FROM batches WHERE batch_id IN "
            "(SELECT batch_id FROM batch_members WHERE record_id = ?) "
            "ORDER BY julianday(created_at), batch_id",
            (record_id,),
        )
    )
    batch_ids = {b.batch_id for b in carrying}
    # A cheap filter (the id as its summary spells it, or a batch that carried it), then
    # the exact reading of each candidate's summary.
    needle = json.dumps(record_id, ensure_ascii=False)
    candidates = conn.execute(
        "SELECT sha256, file_name, batch_id, imported_at, summary FROM reports "
        "WHERE instr(summary, ?) > 0 OR batch_id IN "
        "(SELECT batch_id FROM batch_members WHERE record_id = ?) "
        "ORDER BY imported_at, sha256",
        (needle, record_id),
    )
    reports = []
    for row in candidates:
        summary = json.loads(row["summary"])
        outcome = _outcome(summary, record_id, row["batch_id"] in batch_ids)
        if outcome is None:
            continue
        kept = summary.get("kept_as")
        reports.append(
            ReportNaming(
                sha256=row["sha256"],
                name=str(summary.get("file") or row["file_name"] or row["sha256"]),
                nom_fichier=row["file_name"],
                batch_id=row["batch_id"],
                imported_at=datetime.fromisoformat(row["imported_at"]),
                outcome=outcome,
                kept_as=Path(kept) if kept else None,
            )
        )
    return EvidenceSources(carrying, tuple(reports))


def _outcome(summary: dict[str, Any], record_id: str, carried: bool) -> str | None:
    for key, outcome in OUTCOME_LISTS:
        if record_id in summary.get(key, ()):
            return outcome
    if carried and summary.get("file_error"):
        return "file_rejected"
    return None
