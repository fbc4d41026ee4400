"""What the operator is told of each item an operation was asked to apply (`accrochage
retry`, `exclude`, `include`, `deposited`, `support-applied`): done or refused, and why."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from accrochage.errors import StorageCorruptError, StoreError
from accrochage.models.record import IDENTITY_REASONS, Record
from accrochage.models.vocabulary import RecordStatus

IDENTITY_WARNING = (
    "warning: the CDC rejected its identity and it is unchanged; the CDC matches a holder on "
    "birth name, first names, birth date and place (or the NIR): send a corrected event, or "
    "this retry will be rejected again"
)


@dataclass(frozen=True, slots=True)
class ItemOutcome:
    item: str
    done: bool
    message: str

    def __str__(self) -> str:
        return f"{self.item}: {self.message}"


def refused(item: str, message: str) -> ItemOutcome:
    return ItemOutcome(item, False, message)


def not_applied(items: Sequence[str], exc: StoreError) -> list[ItemOutcome]:
    """The items a storage failure left, the first with its reason. A damaged state is not
    a refusal of these items: it is raised (the command exits 2, saying what to restore)."""
    if isinstance(exc, StorageCorruptError):
        raise exc
    return [
        refused(item, f"not applied: {exc}" if n == 0 else "not applied (see above)")
        for n, item in enumerate(items)
    ]


def with_failed_batch(outcome: ItemOutcome, was: Record | None) -> ItemOutcome:
    if was is None or not outcome.done or was.batch_id is None:
        return outcome
    return ItemOutcome(
        outcome.item,
        True,
        f"{outcome.message}; its batch {was.batch_id[:8]}, whose file failed, is superseded "
        "(its other records are cut again)",
    )


def said_done(before: Record, after: Record) -> str:
    cut_again = after.status is RecordStatus.ACCEPTED and after.pending_since is not None
    if before.suppression_rejected and not after.suppression_rejected and cut_again:
        return "its SUPPRESSION is cut again with the next file (`flush --force`: now)"
    if before.status is after.status and before.correction_version is not None:
        return f"{after.status}, its correction is the content the CDC holds now"
    message = f"{after.status} (was {before.status})"
    if after.status is RecordStatus.PENDING and before.cdc_reason in IDENTITY_REASONS:
        message += f"; {IDENTITY_WARNING}"
    return message
