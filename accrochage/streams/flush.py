"""The flusher: which certifiers are due, how their pending records are cut, what was written.

Policy only. A batch is frozen in the store when it is cut (id, timestamp, emitter and
certifier identifiers, schema version, members and the content version of each); the sink
writes it from that alone, so a batch cut before a crash is written again at the next flush
with the same name and the same bytes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from itertools import chain

from accrochage import failpoints
from accrochage.errors import StorageCorruptError, StorageFullError, StoreError
from accrochage.models.batch import FrozenBatch
from accrochage.models.deadline import Clock, paris_today
from accrochage.models.registry import Registry
from accrochage.models.vocabulary import SchemaVersion
from accrochage.sinks.base import BatchSink, Outcome, WriteFailed
from accrochage.sinks.profiles import profile_for
from accrochage.state.base import Store
from accrochage.streams.batching import BatchLimits, Forced
from accrochage.streams.cut_group import cut_group
from accrochage.streams.failed_retries import FailedRetries
from accrochage.streams.flush_plan import Plan, Planner
from accrochage.streams.flush_report import (
    CutBatch,
    FailedBatch,
    FlushReport,
    WrittenBatch,
)
from accrochage.streams.header_check import HeaderCheck
from accrochage.streams.late_copy import late_copy, put_late_copy
from accrochage.streams.metrics import Metrics
from accrochage.streams.outbox_watch import FolderWatch
from accrochage.streams.put_back import put_back_missing
from accrochage.streams.redecode import Decodes
from accrochage.streams.supersede_due import supersede_due
from accrochage.streams.suppression_cut import cut_suppression, plan_suppressions

PASSAGE_SWEEP_SECONDS = 600
"""How often written passages are looked for among every pending record (those of records
corrected or revoked while pending); at each write, only the written batches' are dropped."""
FORGET_PER_TRANSACTION = 10_000
"""Members whose prepared passages one transaction drops at most, in whole batches (10 at the
default size: about 0.2 s at 1,000,000 records), but a larger batch alone (200,000 passages:
about 0.3 s, where 10 such batches held the write lock about 3 s)."""


def forget_groups(written: Sequence[WrittenBatch], members: int) -> Iterator[list[str]]:
    """The written batches' ids, in order, in groups of at most `members` members together, or
    of one batch alone when it holds more."""
    group: list[str] = []
    count = 0
    for batch in written:
        if group and count + batch.passages > members:
            yield group
            group, count = [], 0
        group.append(batch.batch_id)
        count += batch.passages
    if group:
        yield group


class Flusher:
    def __init__(
        self,
        store: Store,
        sink: BatchSink,
        registry: Registry,
        clock: Clock,
        limits: BatchLimits,
        schema_version: SchemaVersion,
        decode: Decodes,
        metrics: Metrics,
    ) -> None:
        self.store = store
        self.sink = sink
        self.registry = registry
        self.clock = clock
        self.limits = limits
        self.schema_version = schema_version
        self.decode = decode
        """Decodes a stored correction again, the day it replaces a record's content."""
        self.metrics = metrics
        self._swept_at: float | None = None
        self._headers = HeaderCheck()
        self.retries = FailedRetries()
        self.folders = FolderWatch()
        """The outbox folders whose placed files were all found: looked in again once changed."""
        self._stopping = threading.Event()
        self.storage_error: StoreError | None = None
        """Why the last flush could not store (a full disk, a damaged state); None once one
        did: a service's health says so even when no event arrives to fail."""

    @property
    def _planner(self) -> Planner:
        """Of the flusher's parts as they are now (a test, a command may swap its sink)."""
        return Planner(self.registry, self.sink, self.limits, self.schema_version)

    def flush(
        self,
        *,
        force: Forced = False,
        report: FlushReport | None = None,
        stopping: threading.Event | None = None,
    ) -> FlushReport:
        """`stopping`: set when the service stops; no batch is cut after the one being cut (a
        backlog's flush cuts hundreds), what was cut is written whole, and the rest waits,
        pending, for the next start."""
        report = report if report is not None else FlushReport()
        self._stopping = stopping or threading.Event()
        try:
            self.cut_and_write(report, force=force)
            if not self._stopping.is_set():
                self.rewrite_missing(report)
        except (StorageFullError, StorageCorruptError) as exc:
            self.storage_error = exc
            raise
        finally:
            stopped, self._stopping = self._stopping.is_set(), threading.Event()
        self.storage_error = None
        if not stopped:  # the gauge says a flush ran to its end
            self.metrics.flushed(self.clock.now())
        return report

    def cut_and_write(self, report: FlushReport, *, force: Forced = False) -> None:
        """Cut what is due and write every batch still to write, each file written (by the
        sink's processes) while the next batch is cut.

        Batches cut earlier and not written (a crash, a failed file) go first. A failure to
        cut stops the cutting, not the writing of what was cut; it is raised afterwards.
        """
        self.write_planned(self.plan(report, force=force), report)

    def write_planned(self, plan: Plan, report: FlushReport) -> None:
        """Cut what `plan` says and write every batch still to write (see `cut_and_write`)."""
        with self.store.cutting(), self.store.reading() as reader:
            waiting, again = self.retries.to_try(reader.batches_to_write())
        fault: list[BaseException] = []
        batches = chain(waiting, self._cut_planned(plan, report, fault), again)
        passages = sum(b.passages for b in (*waiting, *again))
        passages += sum(len(g.members) for g in plan.groups)
        try:
            for batch, outcome in self.sink.write_many(batches, passages=passages):
                self._record(batch, outcome, report)
        finally:  # a sink that failed midway (a render process died): what it wrote counts
            if report.written:
                self._forget_passages(report.written)
        if fault:
            raise fault[0]

    def _forget_passages(self, written: Sequence[WrittenBatch]) -> None:
        """Drop the prepared passages of the batches written, about `FORGET_PER_TRANSACTION`
        members a transaction (a backlog's first flush reads their hundreds of thousands of
        members: in one transaction, a minute at 5,000,000 records in which no one else could
        write); then, when due, the sweep for the others left behind, in a transaction of its
        own."""
        for group in forget_groups(written, FORGET_PER_TRANSACTION):
            with self.store.transaction() as tx:
                tx.forget_sent_passages(group)
        if self._sweep_due():
            with self.store.transaction() as tx:
                tx.forget_sent_passages([], sweep=True)
            self._swept_at = time.monotonic()

    def cut(self, report: FlushReport, *, force: Forced = False) -> None:
        """Cut what is due, without writing (see `plan`)."""
        plan = self.plan(report, force=force)
        for _ in self._cut_planned(plan, report, None):
            pass

    def plan(self, report: FlushReport, *, force: Forced = False) -> Plan:
        """Supersede what changed, cut the suppressions, and plan the creations due.

        Cutting is done in short transactions: the writer (the HTTP service's, the Kafka
        worker's) waits at most one batch's worth of statements, whatever the backlog. The
        plan (who is due, which members, how they split) is read first, by a reader (reading
        every pending record takes no write lock); each batch is then cut in its own
        transaction (a large one in parts of their own: `streams/cut_group.py`), keeping only
        the members still pending with the content version planned (a correction or
        revocation stored meanwhile is cut at the next tick).
        `report.cut` lists only what was committed.
        """
        now = self.clock.now().replace(microsecond=0)
        today = paris_today(self.clock)
        supersede_due(self.store, self.sink, self.registry, self.decode, self._headers, report, now)
        if profile_for(self.schema_version).action is not None:
            self._cut_suppressions(report, now, today, force)
        if self._stopping.is_set():
            return Plan(now, [])
        with self.store.reading() as reader:
            groups = self._planner.groups_due(reader, now, today, force, report)
        return Plan(now, groups)

    def _cut_suppressions(
        self, report: FlushReport, now: datetime, today: date, force: Forced
    ) -> None:
        """Cut the SUPPRESSION files due, planned by a reader, each in its own transactions
        (`streams/suppression_cut.py`); their files are written with the batches to write."""
        with self.store.reading() as reader:
            plan = plan_suppressions(
                reader,
                self.sink,
                self.limits,
                self.schema_version,
                lambda key: self.registry.get(key) is not None,
                now,
                today,
                force=force,
                on_wait=report.withdrawals_wait,
            )
        report.notes += plan.notes
        for planned in plan.files:
            if self._stopping.is_set():
                break
            batch = cut_suppression(
                self.store, self.sink, self.schema_version, planned, now, self._stopping
            )
            if batch is not None:
                report.add_cut(CutBatch.of(batch, planned.reason))

    def _sweep_due(self) -> bool:
        """True at most every `PASSAGE_SWEEP_SECONDS` (from the last sweep committed): a sweep
        reads every pending record."""
        now = time.monotonic()
        return self._swept_at is None or now - self._swept_at >= PASSAGE_SWEEP_SECONDS

    def _cut_planned(
        self, plan: Plan, report: FlushReport, fault: list[BaseException] | None
    ) -> Iterator[FrozenBatch]:
        """Each planned batch, once cut; with `fault`, a failure to cut ends the batches
        there and is kept in it, to be raised once what was cut is written."""
        try:
            for group in plan.groups:
                if self._stopping.is_set():
                    break
                batch = cut_group(self.store, self._planner, group, plan.now, self._stopping)
                if batch is not None:
                    report.add_cut(CutBatch.of(batch, group.reason))
                    yield batch
            failpoints.reached("flush:cut")
        except (StoreError, OSError) as exc:
            if fault is None:
                raise
            fault.append(exc)

    def write_unwritten(self, report: FlushReport) -> None:
        """Hand every batch cut but not written (or failed) to the sink; record each outcome."""
        self.write_planned(Plan(self.clock.now(), []), report)

    def rewrite_missing(self, report: FlushReport) -> None:
        """Put back in place every released file missing where the state says it is
        (`streams/put_back.put_back_missing`)."""
        put_back_missing(self.store, self.sink, report, self.metrics, self.folders)

    def _record(self, batch: FrozenBatch, outcome: Outcome, report: FlushReport) -> None:
        key = batch.certifier.key
        if isinstance(outcome, WriteFailed):
            with self.store.transaction() as tx:
                recorded = tx.batch_failed(batch.batch_id, outcome.error)
            if outcome.lasting:
                self.retries.failed(batch.batch_id, outcome.error)
            if recorded:
                self.metrics.count_batch_write(False)
                report.add_failed(FailedBatch(batch.batch_id, key, outcome.error))
            return
        self.retries.written(batch.batch_id)
        with self.store.transaction() as tx:
            recorded = tx.batch_written(batch.batch_id, outcome, self.clock.now())
            late = None if recorded else late_copy(tx, self.sink, batch, outcome)
        if late is not None:
            put_late_copy(self.sink, batch, outcome, late, report)
        if not recorded:
            return
        self.metrics.count_batch_write(True)
        report.add_written(
            WrittenBatch(
                batch.batch_id, key, outcome.path, outcome.passages, outcome.size, outcome.sha256
            )
        )

    def close(self) -> None:
        self.sink.close()
