"""What the flusher does for records the CDC holds, or may soon hold (CONTRACT §9).

- **Superseded files.** A CREATION file written but never deposited, holding a record that was
  corrected or revoked since, is replaced before anyone uploads it: the batch becomes
  `superseded`, its file moves to `superseded/`, and its records are cut again (the corrected
  one with its correction, a revoked one withdrawn). Sending a file we know to be out of date
  would only start a suppression the day its report comes. If the file was uploaded anyway
  (without `accrochage deposited`), its report is still applied to the content it carried.
- **Superseded SUPPRESSION files.** A SUPPRESSION file never deposited that holds a record
  whose correction was taken back (the content the CDC holds sent again) is replaced the same
  way: that record keeps what the CDC holds, the others are cut again.
- **Suppressions** (schema 1.1.5): accepted records that were revoked or corrected are cut into
  SUPPRESSION batches (`suppression_cut.py`).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from accrochage.models.batch import (
    BatchInfo,
)
from accrochage.models.vocabulary import SUPERSEDABLE, BatchState, CdcAction
from accrochage.models.withdrawal import (
    apply_superseded,
    apply_suppression_superseded,
    superseded_plain,
)
from accrochage.sinks.base import BatchSink
from accrochage.state.base import Transaction
from accrochage.streams.redecode import Decodes

SupersededMove = tuple[Path, Path]


class Superseded(NamedTuple):
    done: bool
    """Superseded now (it was still to be)."""
    move: SupersededMove | None
    """The move of its file to make once committed, if it has one."""
    whole: bool = True
    """Every member gone back; False: plain members left to `return_members` (`plain_limit`)."""


def supersede_if_due(
    tx: Transaction,
    batch_id: str,
    sink: BatchSink,
    decode: Decodes,
    now: datetime,
    states: tuple[BatchState, ...] = SUPERSEDABLE,
    cause: str | None = None,
    plain_limit: int = -1,
) -> Superseded:
    """`batch_id`, listed by `tx.to_supersede()` (the out-of-date files never deposited, oldest
    first) in an earlier transaction, superseded if it is
    still never deposited (an operator may have recorded its deposit meanwhile). A
    transaction a batch: a mass correction may supersede hundreds, a tenth of a second each.
    `states`: those it may be superseded in (a header changed supersedes a batch not written
    yet too); `cause`: why, when not one of its records (its members' history says it);
    `plain_limit`: as for `return_members`."""
    info = tx.batch(batch_id)
    if info is None or info.state not in states:
        return Superseded(False, None)
    whole = return_members(tx, info, decode, now, cause, plain_limit)
    target = None
    if info.file_path is not None:
        target = sink.place(info.certifier, info.file_name, BatchState.SUPERSEDED)
    tx.batch_superseded(batch_id, target)
    move = None if info.file_path is None or target is None else (info.file_path, target)
    return Superseded(True, move, whole)


def supersede_batch(
    tx: Transaction,
    batch_id: str,
    sink: BatchSink,
    decode: Decodes,
    now: datetime,
    cause: str | None = None,
) -> SupersededMove | None:
    """One batch never deposited superseded: each member goes back to be cut again (see
    `apply_superseded`). The move of its file to make once committed, if it has one."""
    return supersede_if_due(tx, batch_id, sink, decode, now, tuple(BatchState), cause).move


def return_members(
    tx: Transaction,
    info: BatchInfo,
    decode: Decodes,
    now: datetime,
    cause: str | None = None,
    plain_limit: int = -1,
) -> bool:
    """The members of `info`, a batch superseded or being, back to be cut again: those that
    wait for nothing by one statement (`superseded_plain`), the others (revoked, corrected)
    through `apply_superseded`. `plain_limit`: at most so many plain members go back in
    this transaction (-1: all), the others left batched in it (`streams/supersede_due.py`
    returns them in transactions of their own); whether none is left."""
    batch_id = info.batch_id
    if info.action is CdcAction.CREATION:
        written = info.file_path is not None
        plain = superseded_plain(batch_id, now, written=written, cause=cause)
        returned = tx.return_plain(plain, info.cut_at or now, plain_limit)
        if 0 <= plain_limit <= returned:
            return False
    changes = []
    for record in tx.records_in_batch(batch_id):  # the plain members returned: the others
        if info.action is CdcAction.SUPPRESSION:
            change = apply_suppression_superseded(record, batch_id, now, info.cut_at)
        else:
            correction = None
            if record.correction_version is not None and not record.revocation_pending:
                correction = decode(tx, record.record_id, record.correction_version)
            change = apply_superseded(
                record,
                batch_id,
                now,
                correction,
                info.cut_at,
                written=info.file_path is not None,
                cause=cause,
            )
        if change.changed:
            changes.append(change)
    tx.save(changes)
    return True
