"""decode -> validate -> enrich -> track, for a group of events in one transaction.

Decoding runs before the write lock is taken (here, or beforehand in decode processes:
`streams/decoding.py`); the transaction only reads the current rows, applies the record
life, writes, and (on Kafka) stores the next offsets with them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from accrochage.errors import StoreError
from accrochage.models.deadline import Clock, paris_today
from accrochage.models.decode import Decoded, Kind
from accrochage.models.lifecycle import apply_delivered
from accrochage.models.problems import Problem
from accrochage.models.record import Change, Record
from accrochage.models.reference import Reference
from accrochage.models.registry import Registry
from accrochage.models.replay import TakenEvent, replay_to_look_for, to_remember
from accrochage.models.revocation import apply_revoked
from accrochage.models.scope import out_of_scope
from accrochage.models.vocabulary import Outcome
from accrochage.state.base import Store, Transaction, UnusableEvent
from accrochage.streams.incoming import (
    NO_ROOM,
    Incoming,
    IngestResult,
    Ready,
    decode_ready,
    with_read_problems,
)
from accrochage.streams.ingest_failures import (
    partly_stored,
    set_aside,
    trace,
    unusable_event,
    where,
)
from accrochage.streams.log_source import (
    LogSource,
    dead_letter,
    key_warning,
    log_marks,
    next_offsets,
    unread,
)
from accrochage.streams.repetition import StoredText, as_stored, stored_text
from accrochage.streams.replays import Replayed, replayed
from accrochage.streams.room import (
    RefusedForRoom,
    check_room,
    invalid_refused,
    not_kept,
    stores_errors,
)
from accrochage.streams.yielded import yielded_event

log = logging.getLogger("accrochage.ingest")


def _no_reference() -> Reference | None:
    return None


class Ingestor:
    def __init__(
        self,
        store: Store,
        registry: Registry,
        clock: Clock,
        reference: Callable[[], Reference | None] | None = None,
        *,
        keep_free: int = 0,
    ) -> None:
        """`reference`: the current reference data (None: not loaded, its rules not applied);
        `keep_free`: the bytes events leave free on the state's disk (`streams/room.py`)."""
        self.store = store
        self.registry = registry
        self.clock = clock
        self.reference = reference or _no_reference
        self.keep_free = keep_free
        self._refused_for_room = RefusedForRoom()

    def _decode(self, item: Incoming) -> Ready:
        if item.decoded is not None:
            return item.decoded
        today = paris_today(self.clock)
        return with_read_problems(
            item, decode_ready(item.raw, self.registry, today, self.reference())
        )

    def ingest(self, items: Sequence[Incoming], *, keep_room: bool = True) -> list[IngestResult]:
        """`keep_room`: refused below `keep_free` (False: a group that passed it, stored one
        event at a time)."""
        why = check_room(self.store.location, self.keep_free) if keep_room else None
        return self._ingest(items, why)

    def _ingest(
        self, items: Sequence[Incoming], refusing_invalid: str | None
    ) -> list[IngestResult]:
        """`refusing_invalid`: why events that would store errors are refused now (None: they
        are stored), `streams/room.py`."""
        decoded = [self._decode(item) for item in items]
        with self.store.transaction() as tx:
            results = self._store(tx, items, decoded, keep_invalid=refusing_invalid is None)
        if refusing_invalid is not None:
            refused = sum(1 for result in results if result.failed_status == NO_ROOM)
            if refused:
                self._refused_for_room.refused(refused, refusing_invalid)
        return results

    def ingest_each(self, items: Sequence[Incoming]) -> list[IngestResult]:
        """Each event in a transaction of its own: one that fails fails alone.

        The fallback of a group transaction that failed for a reason other than the storage
        itself; an event that fails again is answered `failed` (nothing of it stored) and
        logged by its position and error class, never its content. The group passed its room
        check (`keep_free`): its events are not checked again one by one, or the disk
        crossing the line meanwhile would leave the group half stored; whether invalid events
        are refused for room is judged once for the group too.
        """
        why = invalid_refused(self.store.location, self.keep_free)
        results: list[IngestResult] = []
        for item in items:
            try:
                results.extend(self._ingest([item], why))
            except StoreError as exc:
                if results:
                    raise partly_stored(exc, len(results)) from exc
                raise
            except Exception as exc:
                log.error(
                    "an event could not be stored (%s, %s); the others were:\n%s",
                    type(exc).__name__,
                    where(item, len(results)),
                    trace(exc),
                )
                problem = Problem("event", "could not be stored; see the service log")
                results.append(IngestResult(None, Outcome.FAILED, None, [problem]))
        return results

    def ingest_each_from_log(
        self, source: LogSource, items: Sequence[Incoming]
    ) -> list[tuple[Incoming, IngestResult]]:
        """`ingest_from_log`, each event in a transaction of its own: the fallback of a group
        that failed for a reason other than the storage. An event that fails again is set
        aside in a transaction of its own: kept in the unusable log (its raw text), queued
        for the rejected topic, and its offset passed, so that the events after it are read
        (a poison message never stalls its partition). Logged by error class only."""
        stored: list[tuple[Incoming, IngestResult]] = []
        for item in items:
            try:
                stored.extend(self.ingest_from_log(source, [item], keep_room=False))
            except (StoreError, MemoryError, OSError):
                raise  # the machine's trouble, not the event's: stop, and read it again later
            except Exception as exc:
                log.error(
                    "an event of %s could not be stored (%s, %s); it is kept as unusable:\n%s",
                    source.topic,
                    type(exc).__name__,
                    where(item, len(stored)),
                    trace(exc),
                )
                stored.extend(set_aside(self.store, self.clock, source, item, type(exc).__name__))
        return stored

    def ingest_from_log(
        self, source: LogSource, items: Sequence[Incoming], *, keep_room: bool = True
    ) -> list[tuple[Incoming, IngestResult]]:
        """Ingest events read from a log; events below the stored offsets are skipped.

        The next offset of each partition is written in the same transaction as the records,
        so the state always says exactly how far each partition was read. An event decoded
        already (`Incoming.decoded`) is the same object at each try of a group that waits
        (for room, for the state): its key warning is added once, not once a try.
        """
        if keep_room:  # before decoding: a group that waits for room tries again
            check_room(self.store.location, self.keep_free)
        decoded = [self._decode(item) for item in items]
        for item, (one, _) in zip(items, decoded, strict=True):
            warning = key_warning(item.key, one.certifier, self.registry.certifiers)
            if warning is not None and warning not in one.warnings:
                one.warnings.append(warning)
        with self.store.transaction() as tx:
            kept = unread(tx.offsets(source.topic), items, decoded)
            if not kept:
                return []
            kept_items = [item for item, _ in kept]
            results = self._store(tx, kept_items, [one for _, one in kept])
            tx.save_offsets(source.topic, next_offsets(kept_items), log_marks(kept_items))
            if source.rejected_topic is not None:
                tx.queue_dead_letters(
                    [
                        dead_letter(source, item, result)
                        for item, result in zip(kept_items, results, strict=True)
                        if result.errors
                    ],
                )
        return list(zip(kept_items, results, strict=True))

    def _store(
        self,
        tx: Transaction,
        items: Sequence[Incoming],
        decoded: Sequence[Ready],
        *,
        keep_invalid: bool = True,
    ) -> list[IngestResult]:
        """`keep_invalid`: False while the disk is short (`room.invalid_refused`): an event
        that would store errors (an invalid record or correction, the unusable log) is
        refused whole, nothing of it stored, and its sender told why and what to fix."""
        now = self.clock.now().replace(microsecond=0)
        usable = [d.record_id for d, _ in decoded if d.record_id is not None]
        records = tx.records(usable)
        changes: list[Change] = []
        unusable: list[UnusableEvent] = []
        results = []
        taken: list[TakenEvent] = []
        read = stored_text(tx, changes)
        took = replayed(tx, changes, taken, read)
        for item, (one, size) in zip(items, decoded, strict=True):
            current = records.get(one.record_id) if one.record_id is not None else None
            result, change = self._apply(read, took, one, size, records, now, item)
            if not keep_invalid and stores_errors(result, change):
                results.append(not_kept(result))  # a forbidden one stays 403, unkept
                continue
            if change is not None:
                remembered = to_remember(current, one, change)
                if remembered is not None:
                    taken.append(remembered)
            if change is not None and change.record is not None:
                records[change.record.record_id] = change.record
                changes.append(change)
            if change is None or change.outcome is Outcome.REFUSED:
                unusable.append(unusable_event(item, one, result.errors, now))
            elif change.yielded is not None:
                unusable.append(yielded_event(read, change.yielded, one.certifier, now))
            results.append(result)
        tx.save(changes)
        tx.remember_events(taken)
        tx.log_unusable(unusable)
        return results

    def _apply(
        self,
        read: StoredText,
        took: Replayed,
        decoded: Decoded,
        size: int | None,
        records: dict[str, Record],
        now: datetime,
        item: Incoming,
    ) -> tuple[IngestResult, Change | None]:
        if decoded.kind is Kind.UNUSABLE or decoded.record_id is None:
            return IngestResult(decoded.record_id, Outcome.UNUSABLE, None, decoded.errors), None
        current = records.get(decoded.record_id)
        owner = current.certifier if current is not None else None
        forbidden = out_of_scope(
            item.scope,
            decoded,
            stored=current is not None,
            owner=owner,
            yields=current is not None and current.yields_id,
        )
        if forbidden is not None:  # the HTTP service logs it, naming the token (`refused`)
            # Its other errors may name certifiers (an unknown key, a code's certifiers).
            return IngestResult(decoded.record_id, Outcome.FORBIDDEN, None, [forbidden]), None
        if decoded.kind is Kind.REVOKED and decoded.errors:
            return IngestResult(decoded.record_id, Outcome.UNUSABLE, None, decoded.errors), None
        replay = replay_to_look_for(current, decoded)
        if replay is not None and current is not None and took(replay, decoded):
            result = IngestResult(
                decoded.record_id, Outcome.UNCHANGED, current.status, [], decoded.warnings
            )
            return result, Change(Outcome.UNCHANGED)
        if decoded.kind is Kind.REVOKED:
            change = apply_revoked(current, decoded, now)
        else:
            decoded = as_stored(read, decoded, current)
            change = apply_delivered(current, decoded, now, item.source, size)
        # A refused event touched no record: the status of the one it named (another
        # certifier's, say) is not its answer.
        record = None if change.outcome is Outcome.REFUSED else change.record or current
        status = record.status if record else None
        # Unchanged with errors (an event_id left out, say): nothing changed, and the sender
        # is told what is wrong with its event, as for any other.
        errors = change.errors or decoded.errors
        result = IngestResult(decoded.record_id, change.outcome, status, errors, decoded.warnings)
        return result, change
