"""The free space events leave on the state's disk (`state.keep_free_bytes`).

Storing events is the only write that an outsider drives without bound: a platform that
sends without end fills the disk, and then the batch files due at the CDC, the reports read
back and the corrections can no longer be written, so deadlines pass for every certifier.
Below the space kept, events are refused (or, from a log, wait) while everything else still
writes. Below twice that, events over HTTP or from files that would store errors are refused
already, and valid ones stored: one platform's junk does not take the room of another's
events (`invalid_refused`).
"""

from __future__ import annotations

import logging

from accrochage.errors import StorageLowError
from accrochage.models.problems import Problem
from accrochage.models.record import Change
from accrochage.models.vocabulary import Outcome
from accrochage.state.base import StoreLocation
from accrochage.streams.incoming import NO_ROOM, IngestResult
from accrochage.streams.log_lines import LinesEvery

MIB = 1024 * 1024
log = logging.getLogger("accrochage.ingest")


def in_mib(size: int) -> str:
    return f"{size / MIB:,.0f} MiB" if size >= MIB else f"{size:,} bytes"


def storage_low(free: int | None, keep_free: int) -> StorageLowError | None:
    """The refusal of events when `free` bytes are below `keep_free`; None when there is room
    (or the free space is unknown: the write itself then says what is wrong)."""
    if free is None or free >= keep_free:
        return None
    situation = (
        f"the disk holding the state has {in_mib(free)} free, less than "
        f"state.keep_free_bytes ({in_mib(keep_free)}), kept for the batch files, the CDC's "
        "reports and the corrections: events are not stored until there is more (free space "
        "on that disk, or lower state.keep_free_bytes)"
    )
    low = StorageLowError(f"{situation}; nothing of these events was stored, send them again")
    low.situation = situation
    return low


def events_refused(location: StoreLocation, keep_free: int) -> StorageLowError | None:
    """Why events are refused now, when the state's disk has less than `keep_free` bytes
    free; None when there is room (or nothing is kept: the disk is not even asked)."""
    if keep_free <= 0:
        return None
    return storage_low(location.free_bytes(), keep_free)


INVALID_KEPT_ABOVE = 2
"""Invalid and unusable events are stored while the disk has more than this many times
`state.keep_free_bytes` free (where `doctor` starts warning)."""
NOT_KEPT = (
    "not stored: the service's storage is low, and until its operator frees room it keeps "
    "only valid events (storage_low); fix the errors above and send it again, or send it "
    "again later"
)
"""What a platform is told of an invalid or unusable event refused for room: nothing of the
operator's disk, what it can do."""


def invalid_refused(location: StoreLocation, keep_free: int) -> str | None:
    """Why invalid and unusable events are refused now (the operator's words), or None.

    What a broken or hostile platform sends (a loop of malformed events, another
    certifier's record ids) is kept for the operator to read, and that takes room: before
    the disk is down to the space kept, where every platform's events are refused, those
    events are refused first, so that one platform's junk never costs another's valid events
    their room."""
    if keep_free <= 0:
        return None
    return _invalid_refused(location.free_bytes(), keep_free)


def _invalid_refused(free: int | None, keep_free: int) -> str | None:
    line = INVALID_KEPT_ABOVE * keep_free
    if free is None or free >= line:
        return None
    return (
        f"the disk holding the state has {in_mib(free)} free, less than twice "
        f"state.keep_free_bytes ({in_mib(line)}): invalid and unusable events are refused "
        "(507 to their sender, nothing stored), valid ones stored; free space on that disk "
        "(`accrochage doctor` says how much `compact` gives back)"
    )


def stores_errors(result: IngestResult, change: Change | None) -> bool:
    """Whether storing this event keeps errors: an invalid record or correction, or the
    unusable log (None: the event changes no record). The same invalid event again stores
    nothing more."""
    if not result.errors:
        return False
    return change is None or change.outcome is not Outcome.UNCHANGED


def not_kept(result: IngestResult) -> IngestResult:
    """`result`'s event refused for room: its errors (what to fix), and why nothing of it
    was stored. An event its sender may not send is answered so (403) all the same: that
    is what the sender must know; it is only not kept in the unusable log."""
    if result.outcome is Outcome.FORBIDDEN:
        return result
    problem = Problem("event", NOT_KEPT)
    return IngestResult(
        result.record_id,
        Outcome.FAILED,
        None,
        [*result.errors, problem],
        result.warnings,
        failed_status=NO_ROOM,
    )


class RefusedForRoom:
    """The operator's line for invalid events refused for room: one every `EVERY` seconds at
    most, saying how many (a line per group filled the log of the disk that is short)."""

    EVERY = 10.0

    def __init__(self) -> None:
        self._lines = LinesEvery(self.EVERY)

    def refused(self, count: int, why: str) -> None:
        said = self._lines.due("refused", count)
        if said is not None:
            log.warning("%d invalid or unusable event(s) not stored: %s", said, why)


def check_room(location: StoreLocation, keep_free: int) -> str | None:
    """Raise `StorageLowError` when the state's disk has less than `keep_free` bytes free;
    otherwise why invalid and unusable events are refused (`invalid_refused`), or None. The
    disk is asked once for both."""
    if keep_free <= 0:
        return None
    free = location.free_bytes()
    low = storage_low(free, keep_free)
    if low is not None:
        raise low
    return _invalid_refused(free, keep_free)
