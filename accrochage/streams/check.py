"""Validate events without storing them: what an exam platform asks before it sends.

The same decoding and validation as ingestion; the rules that need the state (a record id
already used by another certifier, a revocation's record) run when a store is given, and so
do a scoped ingest token's limits (`models/scope.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from accrochage.models.deadline import Clock, paris_today
from accrochage.models.decode import Kind, decode
from accrochage.models.problems import Problem, problems_as_dicts
from accrochage.models.reference import Reference
from accrochage.models.registry import Registry
from accrochage.models.revocation import no_record_to_revoke
from accrochage.models.scope import IdHolder, out_of_scope, takes_id
from accrochage.state.base import Store
from accrochage.streams.incoming import Incoming, with_read_problems

STATE_RULES = ("record_id used by another certifier", "a revocation names a stored record")


@dataclass(slots=True)
class CheckResult:
    record_id: str | None
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    forbidden: bool = False
    """Refused to its sender's scoped token (its errors are that refusal alone)."""

    @property
    def valid(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict[str, Any]:
        return {
            "record_id": self.record_id,
            "valid": self.valid,
            "errors": problems_as_dicts(self.errors),
            "warnings": problems_as_dicts(self.warnings),
        }


def check(
    items: Sequence[Incoming],
    registry: Registry,
    clock: Clock,
    store: Store | None,
    reference: Reference | None = None,
) -> list[CheckResult]:
    """Each event's findings, as `ingest` would store them; nothing is written.

    `reference`: the loaded reference data, whose rules then run as they do at ingestion.
    """
    today = paris_today(clock)
    decoded = [
        with_read_problems(item, (decode(item.raw, registry, today, reference), None))[0]
        for item in items
    ]
    holders: dict[str, IdHolder] = {}
    if store is not None:
        ids = [d.record_id for d in decoded if d.record_id is not None]
        with store.reading() as reader:
            holders = reader.record_holders(ids)
    results = []
    delivered: set[str] = set()  # a revocation may follow its record's event in the same input
    for item, one in zip(items, decoded, strict=True):
        errors = list(one.errors)
        if (
            store is not None
            and one.kind is Kind.REVOKED
            and one.record_id is not None
            and not errors
            and one.record_id not in holders
            and one.record_id not in delivered
        ):
            errors.append(no_record_to_revoke(one.record_id))
        if one.kind is Kind.DELIVERED and one.record_id is not None:
            delivered.add(one.record_id)
        holder = holders.get(one.record_id or "")
        owner = holder.certifier if holder is not None else None
        yields = holder is not None and holder.yields
        taken = takes_id(yields, one)
        forbidden = None
        if one.record_id is not None:
            stored = holder is not None
            forbidden = out_of_scope(item.scope, one, stored=stored, owner=owner, yields=yields)
        if forbidden is not None:
            errors = [forbidden]  # its other errors may name certifiers
        elif (
            owner is not None and one.certifier is not None and owner != one.certifier and not taken
        ):
            errors.append(
                Problem(
                    "record_id",
                    f"{one.record_id} is already a record of certifier {owner!r}; record ids "
                    "are unique across the tracker (the CDC idTechnique)",
                )
            )
        results.append(
            CheckResult(one.record_id, errors, list(one.warnings), forbidden is not None)
        )
    return results
