"""The free space events leave on the state's disk (`state.keep_free_bytes`).

Storing events is the only write that an outsider drives without bound: a platform that
sends without end fills the disk, and then the batch files due at the CDC, the reports read
back and the corrections can no longer be written, so deadlines pass for every certifier.
Below the space kept, events are refused (or, from a log, wait) while everything else still
writes.
"""

from __future__ import annotations

from accrochage.errors import StorageLowError
from accrochage.state.base import StoreLocation

MIB = 1024 * 1024


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


def check_room(location: StoreLocation, keep_free: int) -> None:
    """Raise `StorageLowError` when the state's disk has less than `keep_free` bytes free."""
    low = events_refused(location, keep_free)
    if low is not None:
        raise low
