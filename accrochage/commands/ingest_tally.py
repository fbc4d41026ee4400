"""What `accrochage ingest` says it did: events read, stored (accepted, invalid, unusable,
refused, not theirs) and not stored, and the first problems with their `file:line`."""

from __future__ import annotations

from collections import Counter

from accrochage.models.vocabulary import Outcome, RecordStatus
from accrochage.streams.incoming import Incoming, IngestResult

SHOWN_PROBLEMS = 20


class IngestTally:
    def __init__(self) -> None:
        self.outcomes: Counter[str] = Counter()
        self.read = self.invalid = self.refused = self.unusable = self.warned = 0
        self.forbidden = 0
        self.not_stored = 0
        """Events nothing of which was stored: their own transaction failed, or they were
        invalid while the state's disk is short (`streams/room.py`)."""
        self.invalid_corrections = 0
        """Corrections with errors stored beside a record in a batch (its status unchanged)."""
        self.invalid_now = 0
        """Events with errors whose content is the record's as stored, valid then: the record
        keeps its status (the configuration or the reference data changed since)."""
        self.problems: list[str] = []
        self.files: list[str] = []

    def add(self, item: Incoming, result: IngestResult) -> None:
        self.read += 1
        self.outcomes[result.outcome] += 1
        # "accepted: N (with warnings: W)": W counts accepted events only, not invalid ones.
        self.warned += bool(result.warnings) and not result.errors
        if result.errors:
            if not result.stored:
                self.not_stored += 1
            elif result.outcome == Outcome.REFUSED:
                self.refused += 1
            elif result.outcome == Outcome.FORBIDDEN:
                self.forbidden += 1
            elif result.status is None:
                self.unusable += 1
            elif result.outcome == Outcome.CORRECTION_STORED:
                self.invalid_corrections += 1
            elif result.outcome == Outcome.UNCHANGED and result.status != RecordStatus.INVALID:
                self.invalid_now += 1
            else:
                self.invalid += 1
            if len(self.problems) < SHOWN_PROBLEMS:
                reasons = "; ".join(f"{p.field}: {p.message}" for p in result.errors[:3])
                if len(result.errors) > 3:
                    # A stored record lists them all; an event kept as unusable, its log.
                    where = (
                        f"accrochage show {result.record_id}"
                        if result.record_id is not None and result.status is not None
                        else "accrochage unusable --format json"
                    )
                    reasons += f" (+{len(result.errors) - 3} more: {where})"
                self.problems.append(f"  {item.source} {result.record_id or '-'} {reasons}")

    def lines(self) -> list[str]:
        failed = (
            self.invalid
            + self.invalid_corrections
            + self.invalid_now
            + self.refused
            + self.unusable
            + self.forbidden
            + self.not_stored
        )
        detail = ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items()))
        out = [
            *self.files,
            f"{self.read} events read" + (f" ({detail})" if detail else ""),
            f"  accepted: {self.read - failed} (with warnings: {self.warned})",
            f"  invalid:  {self.invalid} (kept as invalid records, outstanding until fixed)",
        ]
        if self.invalid_corrections:
            out.append(
                f"  invalid corrections: {self.invalid_corrections} (kept beside records in a "
                "batch, not sent until a valid one follows: accrochage show ID)"
            )
        if self.invalid_now:
            out.append(
                f"  invalid now: {self.invalid_now} (the same content as stored, valid then: "
                "each record keeps its status; the configuration or the reference data changed "
                "since, see the problems below)"
            )
        if self.refused:
            out.append(
                f"  refused:  {self.refused} (applied to no record: kept in the unusable log)"
            )
        if self.forbidden:
            out.append(
                f"  not theirs: {self.forbidden} (for another certifier than --certifier names, "
                "or its record: kept in the unusable log)"
            )
        out.append(f"  unusable: {self.unusable} (no usable record: kept in the unusable log)")
        if self.not_stored:
            out.append(
                f"  NOT STORED: {self.not_stored} (nothing of them is in the state: ingest the "
                "file again once the cause below is fixed; the events stored come back "
                "unchanged)"
            )
        if self.problems:
            out.append("first problems:")
            out.extend(self.problems)
            hidden = failed - len(self.problems)
            if hidden > 0:
                out.append(
                    f"  ... and {hidden} more: accrochage records --status invalid, "
                    "accrochage unusable"
                )
        return out
