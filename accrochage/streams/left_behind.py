"""Where a released file missing from the place the state has it may be instead.

Its certifier's other folders: `deposited/` or `done/` when it was deposited after the state
last recorded it (a state restored from a backup), or any of them when its move was recorded
but not made (a kill in between, or the outbox of a version that left deposited files among
those to upload). `verify` and `flush` move it back, or say why not; never write it twice.
"""

from __future__ import annotations

import os
from pathlib import Path

from accrochage.models.batch import OUTBOX_FOLDERS, BatchInfo
from accrochage.models.vocabulary import BatchState
from accrochage.sinks.base import BatchSink
from accrochage.state.base import ReleasedBatch, Store

SENT_FOLDERS = (OUTBOX_FOLDERS[BatchState.DEPOSITED], OUTBOX_FOLDERS[BatchState.REPORTED])
"""The folders of files the CDC was given: only `deposited` and `import-report` move one there."""


def deposited_since(item: ReleasedBatch, found: Path | None) -> str | None:
    """Why a missing file, `found` elsewhere (`left_at`), is not put back: it is where only a
    later step puts it (a state restored from an older backup). A `written` batch's file in
    `deposited/` or `done/`, put back, would be uploaded twice; a `deposited` one's in `done/`
    had its report imported since, to import again. None when the file is not there."""
    if item.state not in (BatchState.WRITTEN, BatchState.DEPOSITED):
        return None
    if found is None or found.parent.name not in SENT_FOLDERS:
        return None
    if item.state is BatchState.DEPOSITED:
        if found.parent.name != OUTBOX_FOLDERS[BatchState.REPORTED]:
            return None
        return (
            f"found in {found.parent.name}/ ({found}): its CDC report was imported after the "
            "state last recorded it (a state restored from a backup?): run `accrochage "
            "import-report` again for that report (a copy of each report imported is kept "
            "in reports/ beside the state)"
        )
    return (
        f"found in {found.parent.name}/ ({found}): it was deposited after the state last "
        "recorded it (a state restored from a backup?); do not upload it again: run "
        f"`accrochage deposited {item.batch.batch_id}` (and `accrochage import-report` "
        "again for its report, if one was imported since)"
    )


def in_the_outbox(
    sink: BatchSink, certifier: str, file_name: str, recorded: Path | None
) -> Path | None:
    """Where a batch's file is in the outbox now: where the state records it, else in another
    of its certifier's folders; None: in none."""
    if recorded is not None and recorded.is_file():
        return recorded
    return sink.find(certifier, file_name)


def left_at(sink: BatchSink, item: ReleasedBatch) -> Path | None:
    """The missing file of `item` in another of its certifier's folders, or None."""
    return sink.find(item.batch.certifier.key, item.file.path.name)


def left_in_earlier_place(sink: BatchSink, batch: BatchInfo, moves: list[tuple[Path, Path]]) -> str:
    """The file of a batch already deposited, reported or superseded, still in a folder of an
    earlier state (among those to upload: a run killed between its commit and the move),
    added to `moves`; what the command says of it ("" when it is in place)."""
    recorded = batch.file_path
    if recorded is None or recorded.is_file():
        return ""
    earlier = [BatchState.WRITTEN]
    if batch.state is BatchState.REPORTED:
        earlier.append(BatchState.DEPOSITED)
    for state in earlier:
        left = sink.place(batch.certifier, batch.file_name, state)
        if left.is_file():
            moves.append((left, recorded))
            return f"; its file, left in {left.parent} by an interrupted run, moves to {recorded}"
    return ""


LEFT_STATES = {BatchState.REPORTED: "reported", BatchState.SUPERSEDED: "superseded"}
"""The states a report moves files to, each with its step's name (`BatchSink.move_recorded`)."""


def move_left_behind(store: Store, sink: BatchSink) -> list[str]:
    """A report imported again after a kill between its commit and its files' moves: every
    reported or superseded batch's file still in an earlier folder (among those to upload)
    moves where the state has it now; what the import says of each.

    Every such file, not the report's batch alone: a report matched by `--batch`, applied by
    id (the batches it settled) or that superseded files written since names them nowhere
    the run again can read. One `stat` a file in those states, on a run again only."""
    with store.reading() as reader:
        placed = reader.placed_files(tuple(LEFT_STATES))
    missing = [batch_id for batch_id, path in placed if not os.path.isfile(path)]
    if not missing:
        return []
    said: list[str] = []
    moves: dict[BatchState, list[tuple[Path, Path]]] = {state: [] for state in LEFT_STATES}
    with store.transaction() as tx:  # no other process records a move while it is judged
        for batch_id in missing:
            batch = tx.batch(batch_id)
            if batch is None or batch.state not in LEFT_STATES:
                continue
            where = left_in_earlier_place(sink, batch, moves[batch.state])
            said += [f"batch {batch_id}{where}"] if where else []
    for state, step in LEFT_STATES.items():
        if moves[state]:
            sink.move_recorded(moves[state], step)
    return said
