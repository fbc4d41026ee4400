"""What a decode process runs, and the lean decoded value both sides of the pool share.

A decode process starts by reading the reference data from the state on its own
(`start_worker`), follows the version its caller uses, and decodes pieces of groups
(`decode_piece`) into lean values: `Decoded` without the pydantic event, keeping only the
envelope fields storing reads, cheap to send back. `streams/decoding.py` holds the pool that
hands it the pieces and joins the answers in order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from accrochage import heap
from accrochage.lifeline import exit_with, ignore_interrupt
from accrochage.models.reference import Reference
from accrochage.models.registry import Registry
from accrochage.refdata.memory import ReferenceHolder
from accrochage.sinks.profiles import SchemaProfile
from accrochage.state.base import RefdataStorage
from accrochage.streams.incoming import Incoming, Ready, decode_ready, with_read_problems

KEPT_PAYLOAD = ("occurred_at", "source", "reason", "certifier")
"""What storing reads of the payload (the envelope's texts, a revocation's reason, whether
the event names its certifier)."""

RefdataOpener = Callable[[], RefdataStorage | None]


def lean(ready: Ready) -> Ready:
    """The decoded value without what storing does not read: cheap to send between processes.
    Trimmed in place: the value was just decoded, no one else holds it."""
    decoded, _ = ready
    payload = decoded.payload
    if payload is not None:
        # Texts only: any other value of these fields is refused by validation, and a value
        # nested hundreds deep would not even cross to another process.
        decoded.payload = {k: v for k in KEPT_PAYLOAD if isinstance(v := payload.get(k), str)}
    decoded.event = None
    return ready


@dataclass(slots=True)
class _Worker:
    registry: Registry
    holder: ReferenceHolder | None


_WORKER: _Worker | None = None


def start_worker(parent: int, registry: Registry, refdata: RefdataOpener | None) -> None:
    ignore_interrupt()
    exit_with(parent)
    global _WORKER
    storage = refdata() if refdata is not None else None
    _WORKER = _Worker(registry, ReferenceHolder(storage) if storage is not None else None)
    heap.settle()


def _worker_reference(worker: _Worker, version: int | None) -> Reference | None:
    """The reference data of `version` (the caller's), or a newer one; None: not applied."""
    if version is None or worker.holder is None:
        return None
    if worker.holder.version != version:
        worker.holder.refresh()
    return worker.holder.current()


def decode_lean(
    items: Sequence[Incoming],
    registry: Registry,
    today: date,
    reference: Reference | None,
    passages: SchemaProfile | None = None,
    on_error: Callable[[Exception], None] | None = None,
) -> list[Incoming]:
    """Each event with its lean `decoded` value (its passage rendered in `passages`), or as
    it came when decoding it raised (`on_error` is told): it is decoded again where it is
    stored, and fails alone there."""
    raws = [item.raw for item in items]
    readies = _lean_readies(raws, registry, today, reference, passages, on_error)
    return [with_decoded(item, ready) for item, ready in zip(items, readies, strict=True)]


def _lean_readies(
    raws: Sequence[bytes | str | dict[str, Any]],
    registry: Registry,
    today: date,
    reference: Reference | None,
    passages: SchemaProfile | None,
    on_error: Callable[[Exception], None] | None = None,
) -> list[Ready | None]:
    out: list[Ready | None] = []
    for raw in raws:
        try:
            ready = lean(decode_ready(raw, registry, today, reference, passages))
        except Exception as exc:
            if on_error is not None:
                on_error(exc)
            out.append(None)
            continue
        out.append(ready)
    return out


def decode_piece(
    raws: Sequence[bytes | str | dict[str, Any]],
    today: date,
    version: int | None,
    passages: SchemaProfile | None = None,
) -> list[Ready | None]:
    """In a decode process: the lean decoded value of each raw event (`decode_lean`), None
    for one left as it came; the caller adds the problems found reading them
    (`with_decoded`)."""
    worker = _WORKER
    assert worker is not None, "a decode process starts with start_worker"
    reference = _worker_reference(worker, version)
    return _lean_readies(raws, worker.registry, today, reference, passages)


def worker_started() -> bool:
    return _WORKER is not None


def with_decoded(item: Incoming, ready: Ready | None) -> Incoming:
    if ready is None:
        return item
    return replace(item, decoded=with_read_problems(item, ready))
