"""Where a partition is resumed when the offset the state stored is outside its log
(`seeking.py`): past its end, the log is not the one the state read; below its start, the
topic's retention deleted events before they were read."""

from __future__ import annotations

import logging
from collections.abc import Callable

from faust.types import TP

log = logging.getLogger("accrochage.kafka")

Replaced = Callable[[TP, str, int], int]
"""The offset to resume a partition whose log was replaced (why, its start): or it raises."""


def within(tp: TP, offset: int, bounds: tuple[int, int] | None, replaced: Replaced) -> int:
    """`offset`, or where to resume instead; `bounds`: the partition's first and next
    offsets (None: the broker could not say, the stored offset is used as it is)."""
    if bounds is None:
        return offset
    start, end = bounds
    where = f"{tp.topic}[{tp.partition}]"
    if offset > end:
        return replaced(
            tp,
            f"the state stored {where} up to offset {offset}, but the partition ends at "
            f"{end}: the topic was deleted and created again, or the broker lost data",
            start,
        )
    if offset < start:
        log.error(
            "%s: offsets %d to %d were deleted by the topic's retention before the worker "
            "read them: those events never reached the state; have them sent again",
            where,
            offset,
            start - 1,
        )
        return start
    return offset
