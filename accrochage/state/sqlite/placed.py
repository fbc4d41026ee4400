"""The released files the state places in the outbox: their paths alone, and the batches of
some of them, read for the files the batch cut's tick must look at (`streams/outbox_watch.py`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from accrochage.models.batch import ReleasedFile
from accrochage.models.vocabulary import BatchState
from accrochage.state.base import ReleasedBatch
from accrochage.state.sqlite.rows import frozen_batch_from, in_chunks, placeholders

_ORDER = "ORDER BY created_at, batch_id"
_IN_THE_OUTBOX = "file_path IS NOT NULL AND archived_at IS NULL"
"""A file the outbox holds: released, and not archived away since (m300)."""


def placed_files(conn: sqlite3.Connection, states: Sequence[BatchState]) -> list[tuple[str, str]]:
    """(batch id, file path) of the batches in `states` with a file, oldest first: two
    columns, no batch built (a tick reads them all)."""
    wanted = [BatchState(s).value for s in states]
    return [
        (batch_id, path)
        for batch_id, path in conn.execute(
            f"SELECT batch_id, file_path FROM batches WHERE state IN ({placeholders(wanted)}) "
            f"AND {_IN_THE_OUTBOX} {_ORDER}",
            wanted,
        )
    ]


def released_batches(
    conn: sqlite3.Connection, states: Sequence[BatchState], batch_ids: Sequence[str] | None
) -> list[ReleasedBatch]:
    """The batches in `states` with a file in the outbox (those of `batch_ids` only, when
    given), oldest first."""
    wanted = [BatchState(s).value for s in states]
    if not wanted:
        return []
    select = f"SELECT * FROM batches WHERE state IN ({placeholders(wanted)}) AND {_IN_THE_OUTBOX}"
    if batch_ids is None:
        rows = list(conn.execute(f"{select} {_ORDER}", wanted))
    else:
        rows = []
        for chunk in in_chunks(batch_ids):
            query = f"{select} AND batch_id IN ({placeholders(chunk)})"
            rows += conn.execute(query, [*wanted, *chunk]).fetchall()
        rows.sort(key=lambda row: (row["created_at"], row["batch_id"]))
    return [
        ReleasedBatch(
            frozen_batch_from(row),
            BatchState(row["state"]),
            ReleasedFile(Path(row["file_path"]), row["passages"], row["bytes"], row["sha256"]),
        )
        for row in rows
    ]
