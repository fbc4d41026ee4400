"""Cutting due batches (frozen in SQLite) and writing them to the outbox.

A batch is frozen when it is cut: id, timestamp, emitter and certifier identifiers, schema
version, members and the content version of each. Writing reads only that, so a batch cut
before a crash is written again at the next flush with the same name and the same bytes.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from accrochage.errors import AccrochageError
from accrochage.models.deadline import Clock, paris_today
from accrochage.models.event import DeliveredEvent
from accrochage.models.registry import Certifier, Emitter, Registry
from accrochage.settings import BatchingSettings
from accrochage.sinks.gate import schema_path
from accrochage.sinks.outbox import ReleasedFile, file_name, release
from accrochage.sinks.passage import passage_bytes
from accrochage.sinks.profiles import SchemaProfile, profile_for
from accrochage.sinks.render import FluxHeader, certification_head, envelope_bytes
from accrochage.state.lifecycle import Status, history_row
from accrochage.state.store import Store, connect
from accrochage.streams.batching import Member, PendingStats, due_reason, split
from accrochage.streams.lifeline import exit_with


@dataclass(frozen=True, slots=True)
class CutBatch:
    batch_id: str
    certifier: str
    passages: int
    reason: str


@dataclass(frozen=True, slots=True)
class WrittenBatch:
    batch_id: str
    certifier: str
    path: Path
    passages: int
    bytes: int
    sha256: str


@dataclass(frozen=True, slots=True)
class FailedBatch:
    batch_id: str
    certifier: str
    error: str


@dataclass(slots=True)
class FlushReport:
    cut: list[CutBatch] = field(default_factory=list)
    written: list[WrittenBatch] = field(default_factory=list)
    failed: list[FailedBatch] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


@dataclass(frozen=True, slots=True)
class RenderJob:
    """Everything a (possibly separate) process needs to release one frozen batch."""

    state: Path
    outbox: Path
    header: FluxHeader
    xsd: Path
    max_bytes: int


def release_batch(job: RenderJob) -> ReleasedFile:
    """Render, check and release one batch from its frozen members; runs in any process."""
    reader = connect(job.state, readonly=True)
    try:
        return release(
            job.outbox,
            job.header,
            frozen_events(reader, job.header.id_flux),
            xsd=job.xsd,
            max_bytes=job.max_bytes,
        )
    finally:
        reader.close()


def _outcome(run: Callable[[], ReleasedFile]) -> ReleasedFile | str:
    try:
        return run()
    except (AccrochageError, OSError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"


class Flusher:
    def __init__(
        self,
        store: Store,
        registry: Registry,
        clock: Clock,
        batching: BatchingSettings,
        profile: SchemaProfile,
        outbox: Path,
        xsd_override: Path | None,
        render_processes: int = 0,
    ) -> None:
        self.store = store
        self.registry = registry
        self.clock = clock
        self.batching = batching
        self.profile = profile
        self.outbox = outbox
        self.xsd_override = xsd_override
        self.render_processes = render_processes
        self.pool_threshold = 0
        """Fewer passages than this render in-process (a one-off command avoids the pool)."""
        self._pool: ProcessPoolExecutor | None = None

    def flush(self, *, force: bool = False) -> FlushReport:
        report = FlushReport()
        self.cut(report, force=force)
        self.write_unwritten(report)
        return report

    # -- cutting ---------------------------------------------------------------------------

    def cut(self, report: FlushReport, *, force: bool = False) -> None:
        now = self.clock.now().replace(microsecond=0)
        today = paris_today(self.clock)
        with self.store.write() as conn:
            for stats in _pending_stats(conn):
                certifier = self.registry.get(stats.certifier)
                if certifier is None:
                    report.notes.append(
                        f"{stats.count} pending record(s) of {stats.certifier!r}, which is no "
                        "longer configured: add it back to [[certifiers]] to send them"
                    )
                    continue
                reason = (
                    "forced"
                    if force
                    else due_reason(
                        stats,
                        now=now,
                        today=today,
                        max_records=self.batching.max_records,
                        max_delay=self.batching.max_delay,
                        margin_days=self.batching.margin_days,
                    )
                )
                if reason is not None:
                    self._cut_certifier(conn, certifier, now, reason, report)

    def _cut_certifier(
        self,
        conn: sqlite3.Connection,
        certifier: Certifier,
        now: datetime,
        reason: str,
        report: FlushReport,
    ) -> None:
        header = self._header(str(uuid.UUID(int=0)), now, certifier)
        per_code = len(certification_head(header, "RNCP", "RNCP" + "9" * 20)) + 64
        members = [
            Member(r["record_id"], r["version"], r["code"], r["xml_bytes"])
            for r in conn.execute(
                "SELECT record_id, version, code, xml_bytes FROM records "
                "WHERE status = 'pending' AND certifier = ? ORDER BY code, record_id",
                (certifier.key,),
            )
        ]
        limits = {
            "max_records": self.batching.max_records,
            "max_bytes": self.batching.max_file_bytes,
            "envelope_bytes": envelope_bytes(header, 0),
            "per_code_bytes": per_code,
        }
        groups = _split_or_none(members, limits)
        if groups is None or len(groups) > -(-len(members) // self.batching.max_records):
            groups = split(_exact_sizes(conn, members, self.profile), **limits)
        stamp = now.isoformat()
        for group in groups:
            batch = self._header(str(uuid.uuid4()), now, certifier)
            _insert_batch(conn, batch, len(group), stamp)
            conn.executemany(
                "INSERT INTO batch_members (batch_id, code, record_id, version) "
                "VALUES (?, ?, ?, ?)",
                [(batch.id_flux, m.code, m.record_id, m.version) for m in group],
            )
            conn.executemany(
                "UPDATE records SET status = 'batched', batch_id = ?, pending_since = NULL, "
                "updated_at = ? WHERE record_id = ?",
                [(batch.id_flux, stamp, m.record_id) for m in group],
            )
            Store.add_history(
                conn,
                (
                    history_row(
                        m.record_id,
                        stamp,
                        Status.PENDING,
                        Status.BATCHED,
                        f"batch cut: {reason}",
                        batch.id_flux,
                    )
                    for m in group
                ),
            )
            report.cut.append(CutBatch(batch.id_flux, certifier.key, len(group), reason))

    def _header(self, batch_id: str, now: datetime, certifier: Certifier) -> FluxHeader:
        return FluxHeader(batch_id, now, self.registry.emitter, certifier, self.profile)

    # -- writing ---------------------------------------------------------------------------

    def write_unwritten(self, report: FlushReport) -> None:
        """Render, check and release every batch cut but not written (or failed).

        Large amounts are rendered in worker processes (the second core), so that the
        process that ingests is not slowed by rendering and the XSD gate.
        """
        reader = self.store.reader()
        try:
            batches = [
                dict(r)
                for r in reader.execute(
                    "SELECT * FROM batches WHERE state IN ('cut', 'failed') "
                    "ORDER BY created_at, batch_id"
                )
            ]
        finally:
            reader.close()
        jobs = [self._job(batch) for batch in batches]
        passages = sum(int(str(b["passages"])) for b in batches)
        if self.render_processes and passages >= self.pool_threshold:
            pool = self._render_pool()
            futures = [pool.submit(release_batch, job) for job in jobs]
            for job, future in zip(jobs, futures, strict=True):
                self._record(job, _outcome(future.result), report)
        else:
            for job in jobs:
                self._record(job, _outcome(partial(release_batch, job)), report)

    def _job(self, batch: dict[str, object]) -> RenderJob:
        header = _frozen_header(batch)
        override = self.xsd_override if header.profile == self.profile else None
        return RenderJob(
            state=self.store.path,
            outbox=self.outbox,
            header=header,
            xsd=schema_path(header.profile, override),
            max_bytes=self.batching.max_file_bytes,
        )

    def _render_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            context = multiprocessing.get_context("forkserver")
            self._pool = ProcessPoolExecutor(
                self.render_processes,
                mp_context=context,
                initializer=exit_with,
                initargs=(os.getpid(),),
            )
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def _record(self, job: RenderJob, outcome: ReleasedFile | str, report: FlushReport) -> None:
        header = job.header
        batch_id = header.id_flux
        if isinstance(outcome, str):
            with self.store.write() as conn:
                conn.execute(
                    "UPDATE batches SET state = 'failed', error = ? WHERE batch_id = ?",
                    (outcome, batch_id),
                )
            report.failed.append(FailedBatch(batch_id, header.certifier.key, outcome))
            return
        released = outcome
        written_at = self.clock.now().isoformat(timespec="seconds")
        with self.store.write() as conn:
            conn.execute(
                "UPDATE batches SET state = 'written', file_path = ?, sha256 = ?, bytes = ?, "
                "error = NULL, written_at = ? WHERE batch_id = ?",
                (str(released.path), released.sha256, released.size, written_at, batch_id),
            )
        report.written.append(
            WrittenBatch(
                batch_id,
                header.certifier.key,
                released.path,
                released.passages,
                released.size,
                released.sha256,
            )
        )


def _split_or_none(members: list[Member], limits: dict[str, int]) -> list[list[Member]] | None:
    try:
        return split(members, **limits)
    except ValueError:
        return None


def _exact_sizes(
    conn: sqlite3.Connection, members: list[Member], profile: SchemaProfile
) -> list[Member]:
    """Render each passage to know its exact size.

    Only needed when the size bounds stored at ingest would make more files than
    `max_records` alone (a large max_records, or a small max_file_bytes).
    """
    sized = []
    for member in members:
        payload, event_id = conn.execute(
            "SELECT payload, event_id FROM contents WHERE record_id = ? AND version = ?",
            (member.record_id, member.version),
        ).fetchone()
        size = len(passage_bytes(stored_event(payload, event_id), profile))
        sized.append(Member(member.record_id, member.version, member.code, size))
    return sized


def _pending_stats(conn: sqlite3.Connection) -> list[PendingStats]:
    # pending_since carries its Paris offset, which changes with DST: compare instants
    # (epoch seconds), not strings, or the oldest record is misjudged around the change.
    return [
        PendingStats(
            r["certifier"],
            r["n"],
            datetime.fromtimestamp(int(r["oldest"]), UTC),
            datetime.fromisoformat(r["deadline"]).date() if r["deadline"] else None,
        )
        for r in conn.execute(
            "SELECT certifier, count(*) AS n, "
            "min(CAST(strftime('%s', pending_since) AS INTEGER)) AS oldest, "
            "min(deadline) AS deadline FROM records WHERE status = 'pending' "
            "GROUP BY certifier ORDER BY certifier"
        )
    ]


def _insert_batch(conn: sqlite3.Connection, header: FluxHeader, passages: int, stamp: str) -> None:
    conn.execute(
        "INSERT INTO batches (batch_id, certifier, created_at, schema_version, "
        "emitter_id_client, nature, certifier_id_client, id_contrat, state, passages, "
        "file_name) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'cut', ?, ?)",
        (
            header.id_flux,
            header.certifier.key,
            stamp,
            header.profile.version,
            header.emitter.id_client,
            header.emitter.nature,
            header.certifier.id_client,
            header.certifier.id_contrat,
            passages,
            file_name(header),
        ),
    )


def _frozen_header(batch: dict[str, object]) -> FluxHeader:
    certifier = Certifier(
        str(batch["certifier"]),
        str(batch["certifier_id_client"]),
        str(batch["id_contrat"]),
        frozenset(),
    )
    return FluxHeader(
        str(batch["batch_id"]),
        datetime.fromisoformat(str(batch["created_at"])),
        Emitter(str(batch["emitter_id_client"]), str(batch["nature"])),
        certifier,
        profile_for(str(batch["schema_version"])),
    )


def frozen_events(reader: sqlite3.Connection, batch_id: str) -> Iterator[DeliveredEvent]:
    """The events of a batch as frozen when it was cut: its members' content versions."""
    rows = reader.execute(
        "SELECT c.payload, c.event_id FROM batch_members m JOIN contents c "
        "ON c.record_id = m.record_id AND c.version = m.version "
        "WHERE m.batch_id = ? ORDER BY m.code, m.record_id",
        (batch_id,),
    )
    for payload, event_id in rows:
        yield stored_event(payload, event_id)


def stored_event(payload: str, event_id: str | None) -> DeliveredEvent:
    """An event from its stored content, which leaves out the envelope but its event_id."""
    return DeliveredEvent.model_validate({**json.loads(payload), "event_id": event_id})
