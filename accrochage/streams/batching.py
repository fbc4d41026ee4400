"""The batching policy: when a certifier is due, how its pending records are cut into files.

Pure functions: no store, no clock, no XML (sizes come in as numbers).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from accrochage.models.batch import Member, PendingStats
from accrochage.models.deadline import days_left

Forced = bool | frozenset[str]
"""What `flush --force` cuts now whatever is due: every certifier's records (True), none
(False), or those of the certifiers named (`--certifier`)."""


def is_forced(force: Forced, certifier: str) -> bool:
    return force is True or (isinstance(force, frozenset) and certifier in force)


@dataclass(frozen=True, slots=True)
class BatchLimits:
    max_records: int
    max_file_bytes: int
    max_delay: timedelta
    margin_days: int


def aged_at(stats: PendingStats, limits: BatchLimits) -> datetime:
    """When the age rule (`max_delay`) makes these records due, whatever else does sooner."""
    return stats.oldest_pending_since + limits.max_delay


def due_reason(
    stats: PendingStats,
    now: datetime,
    today: date,
    limits: BatchLimits,
    waiting: str = "pending record",
) -> str | None:
    """Why this certifier must be cut now, or None when it can wait. `waiting`: what the
    records wait as (a SUPPRESSION's are no pending records)."""
    if stats.count >= limits.max_records:
        return f"{stats.count} {waiting}s reach max_records ({limits.max_records})"
    if now >= aged_at(stats, limits):
        return f"the oldest {waiting} has waited {limits.max_delay} (max_delay)"
    if stats.earliest_deadline is not None:
        left = days_left(stats.earliest_deadline, today)
        if left <= limits.margin_days:
            return f"a {waiting} has {left} day(s) left (deadline margin {limits.margin_days})"
    return None


def split(
    members: Iterable[Member], limits: BatchLimits, envelope_bytes: int, per_code_bytes: int
) -> list[list[Member]]:
    """Consecutive files of at most `max_records` passages and `max_file_bytes` bytes.

    `members` come sorted by (code, record_id); each file keeps that order. A file spends
    `envelope_bytes`, plus `per_code_bytes` for each code block it opens, besides its
    passages. Raises ValueError when one passage alone does not fit in a file.
    """
    max_records, max_bytes = limits.max_records, limits.max_file_bytes
    files: list[list[Member]] = []
    current: list[Member] = []
    size = envelope_bytes
    for member in members:
        added = member.xml_bytes
        if not current or current[-1].code != member.code:
            added += per_code_bytes
        if current and (len(current) >= max_records or size + added > max_bytes):
            files.append(current)
            current, size = [], envelope_bytes
            added = member.xml_bytes + per_code_bytes
        if size + added > max_bytes:
            raise ValueError(
                f"record {member.record_id} alone ({member.xml_bytes} bytes) exceeds "
                f"max_file_bytes ({max_bytes})"
            )
        current.append(member)
        size += added
    if current:
        files.append(current)
    return files


def files_for(
    members: list[Member],
    limits: BatchLimits,
    envelope_bytes: int,
    per_code_bytes: int,
    exact_size: Callable[[Member], int],
) -> list[list[Member]]:
    """The files of `members`, from the size bounds stored at ingest, or from each passage's
    exact size (`exact_size` renders it) when the bounds cannot place a passage or would
    make more files than `max_records` alone (a large max_records, a small max_file_bytes).
    """
    try:
        files = split(members, limits, envelope_bytes, per_code_bytes)
        if len(files) <= -(-len(members) // limits.max_records):
            return files
    except ValueError:
        pass
    exact = [Member(m.record_id, m.version, m.code, exact_size(m)) for m in members]
    return split(exact, limits, envelope_bytes, per_code_bytes)
