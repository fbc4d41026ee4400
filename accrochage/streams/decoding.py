"""Decoding on the other cores: parse, validate and canonicalise events in worker processes.

Storing is one writer's work (one transaction at a time); decoding an event (JSON, pydantic,
the rules, the canonical content, the passage rendered in the files' schema) needs nothing of
the state but the reference data, so it runs in a pool of processes while the caller stores what was
decoded before. A group is decoded in order and comes back whole: each `Incoming` carries
its `decoded` value, a lean copy of `Decoded` (no pydantic event, only the envelope fields
storing reads), and the writer stores it as it would have decoded it itself.

A decode process reads the reference data from the state on its own and follows the
version its caller uses. A decode process that dies fails its group loudly (`DecodeFailed`):
nothing of that group is stored, and the next group starts a new pool. Below `threshold`
events, or with no process configured, events go through unchanged and are decoded where
they are stored, as before.
"""

from __future__ import annotations

import functools
import logging
import os
import pickle
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future

from accrochage.errors import AccrochageError
from accrochage.models.deadline import Clock, paris_today
from accrochage.models.decode import parse_payload
from accrochage.models.reference import Reference
from accrochage.models.registry import Registry
from accrochage.pool import HelperDied, HelperPool
from accrochage.processes import DECODING
from accrochage.refdata.memory import MemoryReference
from accrochage.sinks.profiles import SchemaProfile
from accrochage.streams.decode_worker import (
    RefdataOpener,
    decode_piece,
    start_worker,
    with_decoded,
    worker_started,
)
from accrochage.streams.decode_worker import decode_lean as decode_lean
from accrochage.streams.decode_worker import lean as lean
from accrochage.streams.incoming import Incoming, Ready

log = logging.getLogger("accrochage.decode")
PIECE = 500
"""Events per task: a larger group is split so that every decode process gets a share."""


class DecodeFailed(AccrochageError):
    """A decode process ended before answering: the group was not stored."""

    code = "decode_failed"
    status = 500


class DecodePool:
    """Decodes groups of events in `processes` worker processes (0: none, events go through)."""

    def __init__(
        self,
        registry: Registry,
        clock: Clock,
        reference: Callable[[], Reference | None],
        *,
        processes: int,
        refdata: RefdataOpener | None = None,
        threshold: int = 1,
        passages: SchemaProfile | None = None,
    ) -> None:
        """`refdata`: picklable, opens the state's reference data in a decode process.
        `threshold`: a smaller group goes through undecoded (no pool start-up).
        `passages`: the schema new files are written in; each valid delivered event's
        passage is rendered in it by the decode process, so that flush writes it as is."""
        self.registry = registry
        self.clock = clock
        self.reference = reference
        self.processes = processes
        self.refdata = refdata
        self.threshold = max(1, threshold)
        self.passages = passages
        self._pool: HelperPool | None = None
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.processes > 0

    def submit(self, items: Sequence[Incoming]) -> Future[list[Incoming]]:
        """The same events, in the same order, each with its `decoded` value (resolves once
        all are decoded); `DecodeFailed` when a decode process died on the way."""
        reference = self.reference() if self.enabled else None
        shippable = reference is None or isinstance(reference, MemoryReference)
        if not self.enabled or len(items) < self.threshold or not shippable:
            done: Future[list[Incoming]] = Future()
            done.set_running_or_notify_cancel()
            done.set_result(list(items))  # decoded where they are stored
            return done
        for item in items:
            if isinstance(item.raw, dict):
                parse_payload(item.raw)  # a decimal score as written, as decoding here does
        version = reference.version if isinstance(reference, MemoryReference) else None
        today = paris_today(self.clock)
        pool = self._running_pool()
        pieces = [items[i : i + PIECE] for i in range(0, len(items), PIECE)]
        try:
            futures = [
                pool.submit(
                    decode_piece, [item.raw for item in piece], today, version, self.passages
                )
                for piece in pieces
            ]
        except HelperDied:
            self._forget(pool)
            raise DecodeFailed(_DIED) from None
        here = functools.partial(
            decode_lean,
            registry=self.registry,
            today=today,
            reference=reference,
            passages=self.passages,
            on_error=_left_undecoded,
        )
        return self._joined(pieces, futures, pool, here)

    def decode(self, items: Sequence[Incoming]) -> list[Incoming]:
        return self.submit(items).result()

    def start(self) -> None:
        """Start the decode processes now (a service, at its start): the first group then
        does not wait for them, nor does whoever submits it (an event loop)."""
        if not self.enabled:
            return
        pool = self._running_pool()
        try:
            # Answered once a helper has read the reference data (its initializer).
            for started in [pool.submit(worker_started) for _ in range(self.processes)]:
                started.result()
        except Exception as exc:  # the first group tries again, or the writer decodes it
            self._forget(pool)
            log.error("the decode processes did not start (%s)", type(exc).__name__)

    def _joined(
        self,
        pieces: list[Sequence[Incoming]],
        futures: list[Future[list[Ready | None]]],
        pool: HelperPool,
        here: Callable[[Sequence[Incoming]], list[Incoming]],
    ) -> Future[list[Incoming]]:
        """The pieces' events decoded, in order, once every piece is. A piece that could not
        cross to its decode process (an event nested deeper than pickling goes) is decoded
        `here` instead: one such event fails alone, never its group."""
        done: Future[list[Incoming]] = Future()
        done.set_running_or_notify_cancel()
        remaining = [len(futures)]
        lock = threading.Lock()

        def finish(_: Future[list[Ready | None]]) -> None:
            with lock:
                remaining[0] -= 1
                if remaining[0]:
                    return
            # Each future holds this callback, whose closure held the futures: a cycle that
            # kept every group (events, decoded forms, passages) alive until a full
            # collection of the cyclic GC, which then traversed them all.
            finished, futures[:] = futures[:], []
            decoded: list[Incoming] = []
            try:
                for piece, future in zip(pieces, finished, strict=True):
                    try:
                        readies = future.result()
                    except (RecursionError, pickle.PicklingError):
                        decoded += here(piece)
                        continue
                    decoded += [with_decoded(i, r) for i, r in zip(piece, readies, strict=True)]
            except HelperDied:
                self._forget(pool)
                done.set_exception(DecodeFailed(_DIED))
                return
            except BaseException as exc:
                done.set_exception(exc)
                return
            done.set_result(decoded)

        for future in futures:
            future.add_done_callback(finish)
        return done

    def _running_pool(self) -> HelperPool:
        with self._lock:
            if self._pool is None:
                self._pool = HelperPool(
                    self.processes,
                    initializer=start_worker,
                    initargs=(os.getpid(), self.registry, self.refdata),
                    name="decode",
                    preload=DECODING,
                )
            return self._pool

    def _forget(self, pool: HelperPool) -> None:
        """A broken pool is dropped (it ended its other processes itself) and shut down: the
        next group starts a new one."""
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.shutdown()

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(cancel_futures=True)


def _left_undecoded(exc: Exception) -> None:
    log.warning("an event is left for the writer to decode (%s)", type(exc).__name__)


_DIED = (
    "a decode process ended before answering (killed, or out of memory); the events of "
    "this group were not stored: send them again"
)
