"""Correction requests by hand (CONTRACT §9): open one, list them, answer one.

The law (décret 2024-1236) gives a certifier 3 months from a request, by the CDC or a holder,
to send corrected data or say why the request is unfounded. The operator opens the request
here; the CDC's acceptance of corrected data closes it by itself (the feedback loop calls
`Transaction.close_correction_requests`), or the operator answers it. The request's note is
the operator's text and may name a person: it is stored and shown, never logged.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime

from accrochage.errors import BadParameter, FieldError
from accrochage.models.corrections import (
    AnswerKind,
    CorrectionRequest,
    RequestNotFound,
    ahead_of_paris,
    answer,
    open_request,
    to_json,
)
from accrochage.models.deadline import Clock, paris_today
from accrochage.models.problems import Problem
from accrochage.models.record import Change, HistoryEntry, Record
from accrochage.models.vocabulary import Outcome, RequestSource
from accrochage.state.base import JsonRow, Store, Transaction
from accrochage.state.queries import RequestKey


@dataclass(frozen=True, slots=True)
class Opened:
    """A request just opened, and whether the tracker knows its record yet."""

    request: CorrectionRequest
    record_known: bool
    json: JsonRow
    already: bool = False
    """The same request was open already (entered twice): that one, nothing added."""
    delivered_after: date | None = None
    """The record's delivery day, when it is after the day the request was received: a
    mistyped day (its deadline counts from it), or a request about that very date."""

    def warnings(self) -> list[Problem]:
        """What looks mistyped in the request as entered, said to whoever entered it (the
        command's stderr, the route's answer): the request is opened all the same."""
        said: list[Problem] = []
        request = self.request
        if not self.record_known:
            said.append(
                Problem(
                    "record_id",
                    f"the tracker does not know record {request.record_id} yet: the request "
                    "attaches to it when its event arrives (check the id if it should be "
                    "known)",
                )
            )
        if ahead_of_paris(request):
            said.append(
                Problem(
                    "received_on",
                    f"the request is dated {request.received_on}, tomorrow in Paris: right "
                    "where that day has come already (an overseas certifier), else check the "
                    f"day it was received (its deadline, {request.deadline}, counts from it)",
                )
            )
        if self.delivered_after is not None:
            said.append(
                Problem(
                    "received_on",
                    f"the request is dated {request.received_on}, before record "
                    f"{request.record_id} was delivered ({self.delivered_after}): check the "
                    f"day it was received (its deadline, {request.deadline}, counts from it)",
                )
            )
        return said


class Corrections:
    def __init__(
        self, store: Store, clock: Clock, margin_days: int, certifiers: Iterable[str]
    ) -> None:
        self.store = store
        self.clock = clock
        self.margin_days = margin_days
        self.certifiers = tuple(certifiers)

    def _now(self) -> datetime:
        return self.clock.now().replace(microsecond=0)

    def add(
        self,
        record_id: str,
        received_on: date,
        *,
        source: RequestSource | str = RequestSource.CDC,
        certifier: str | None = None,
        note: str | None = None,
    ) -> Opened:
        """Open a request; a record id the tracker does not know yet is accepted (older
        data): the request attaches to the record when it arrives."""
        source = _source(source)
        if certifier is not None and certifier not in self.certifiers:
            raise FieldError(
                "certifier",
                f"unknown certifier {certifier[:100]!r}: give a configured key "
                f"({', '.join(self.certifiers) or 'none configured'}), or leave it out to use "
                "the record's",
            )
        request = open_request(
            record_id, received_on, self._now(), source=source, certifier=certifier, note=note
        )
        with self.store.transaction() as tx:
            record = tx.records([request.record_id]).get(request.record_id)
            if record is not None and certifier is not None and record.certifier != certifier:
                raise FieldError(
                    "certifier",
                    f"record {request.record_id} belongs to {record.certifier or 'no certifier'}, "
                    f"not {certifier}: leave the certifier out, or check the record id",
                )
            if record is not None:  # its certifier is the record's: named or not, one request
                request = replace(request, certifier=None)
            same = tx.open_request_like(request)
            if same is None:
                tx.add_correction_request(replace(request, held_hash=_held_hash(tx, record)))
        kept = same or request
        shown = record.certifier if record is not None else None
        today = paris_today(self.clock)
        delivered = record.delivered_on if record is not None else None
        return Opened(
            kept,
            record is not None,
            to_json(kept, shown, today, self.margin_days),
            already=same is not None,
            delivered_after=delivered if delivered and delivered > kept.received_on else None,
        )

    def list(
        self,
        *,
        open_only: bool = False,
        as_of: date | None = None,
        limit: int | None = None,
        after: RequestKey | None = None,
        certifier: str | None = None,
    ) -> list[JsonRow]:
        """CONTRACT §9's objects: open requests first by deadline, then the closed ones;
        `after`: those after a page's last request; `certifier`: those it owes."""
        day = as_of or paris_today(self.clock)
        with self.store.reading() as reader:
            return reader.correction_requests(
                open_only=open_only,
                as_of=day,
                margin_days=self.margin_days,
                limit=limit,
                after=after,
                certifier=certifier,
            )

    def answer(
        self,
        request_id: str,
        *,
        unfounded: str | None = None,
        corrected: bool = False,
        cancelled: str | None = None,
    ) -> JsonRow:
        """Close a request by hand: unfounded (with the reason), corrected, or cancelled (it
        was entered by mistake: what was meant), exactly one."""
        given = [unfounded is not None, bool(corrected), cancelled is not None]
        if sum(given) != 1:
            raise BadParameter(
                "answer with exactly one of: unfounded (the reason the data is right as sent), "
                "corrected, or cancelled (the request was entered by mistake: what was meant)"
            )
        kind = (
            AnswerKind.CORRECTED
            if corrected
            else AnswerKind.UNFOUNDED
            if unfounded is not None
            else AnswerKind.CANCELLED
        )
        text = unfounded if kind is AnswerKind.UNFOUNDED else cancelled
        with self.store.transaction() as tx:
            found = tx.correction_request(request_id)
            if found is None:
                raise RequestNotFound(
                    f"no correction request {request_id[:100]!r}: see "
                    "`accrochage correction-request list`"
                )
            now = self._now()
            done = answer(found, kind, text, now)
            tx.answer_correction_request(done)
            record = tx.records([done.record_id]).get(done.record_id)
            if found.is_open and record is not None:
                tx.save([Change(Outcome.UNCHANGED, history=_answered_entry(record, done, now))])
        shown = record.certifier if record is not None else None
        return to_json(done, shown, paris_today(self.clock), self.margin_days)


def _answered_entry(record: Record, done: CorrectionRequest, at: datetime) -> HistoryEntry:
    """The record's history line for a request closed by hand, as one closed by the CDC's
    acceptance has: its evidence tells when it was answered. The unfounded reason is the
    operator's free text (it may name the person): the request keeps it, the line does not."""
    how = {
        AnswerKind.UNFOUNDED: "unfounded, answered by the operator",
        AnswerKind.CANCELLED: "cancelled by the operator, entered by mistake",
    }.get(done.answer_kind or AnswerKind.CORRECTED, done.answer_text)
    return HistoryEntry(
        record.record_id,
        at,
        record.status,
        record.status,
        f"correction request {done.request_id} closed: {how}",
    )


def _held_hash(tx: Transaction, record: Record | None) -> str | None:
    """The hash of the content the CDC holds for `record` now (None: none, or not known)."""
    if record is None or record.accepted_batch_id is None:
        return None
    return tx.carried_hash(record.accepted_batch_id, record.record_id)


def _source(value: RequestSource | str) -> RequestSource:
    try:
        return RequestSource(value)
    except ValueError:
        allowed = ", ".join(s.value for s in RequestSource)
        raise FieldError("source", f"source must be one of {allowed}") from None
