"""The batch cut: how long it holds the write lock, for one large batch and for many small ones.

    python -m bench.cut [--events N] [--quick] [--json]

N generated events of one certifier (default 100,000; 2,000 with --quick) are stored by
`accrochage ingest` into a fresh state, copied (SQLite's backup). Each copy is then cut
in-process, every pending record forced (`Flusher.cut`), with every write transaction timed
from its start to its commit (the store's `transaction`, wrapped): the longest is the most a
writer (the HTTP service's, the Kafka worker's) waits for a cut. Once with `max_records` = N
(one batch of N members, cut in parts of `CUT_PER_TRANSACTION`; the CDC takes up to 200,000
passages a file), while a probe (another store on the state, as a service's writer) writes a
row every 5 ms, each write timed; once the same with the whole batch in one transaction (the
cut before session 50), the baseline of the probe's longest write; once in parts with SQLite
copying the WAL back inside the `COMMIT` that crosses its threshold, under the write lock (as
before session 52; `state/sqlite/checkpoint.py`), the baseline of the probe's longest write
for the checkpoints run outside it; once with the default `max_records` of 1,000. Baseline
of the cut's cost, on a last copy: the cut's statements run bare in one transaction (the
members moved, the batch's members and their history inserted, by SQL alone), against the
product's transactions together. No target: issue 13
asks that "the batch cut never holds the writer back for long"; this says how long.
"""

from __future__ import annotations

import sqlite3
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from accrochage.app import build_core
from accrochage.settings import load_settings
from accrochage.state.sqlite.connection import connect
from accrochage.streams import cut_group, supersede_due
from accrochage.streams.flush_report import FlushReport
from bench._common import (
    EMITTER,
    BenchError,
    Report,
    accrochage_command,
    base_parser,
    clean_env,
    finish,
    generated_certifiers,
    info,
    run_measured,
    scratch_dir,
    write_config,
    write_events,
)
from bench.probe import PROBE_EVERY, checkpoints_in_commit, measured

CDC_MAX = 200_000
OTHER_EMITTER = "03VML244"
"""The emitter's `id_client` once the cut is made: every batch's header changed, superseded."""
BARE_CUT = (
    "UPDATE records SET status = 'batched', batch_id = :batch, pending_since = NULL, "
    "updated_at = :at WHERE status = 'pending' AND certifier = :certifier",
    "INSERT INTO batch_members (batch_id, code, record_id, version) "
    "SELECT batch_id, code, record_id, version FROM records WHERE batch_id = :batch",
    "INSERT INTO history (record_id, at, from_status, to_status, reason, batch_id) "
    "SELECT record_id, :at, 'pending', 'batched', 'bare', batch_id FROM batch_members "
    "WHERE batch_id = :batch",
)


def stored_state(folder: Path, count: int) -> tuple[Path, str]:
    """A state holding `count` pending records of one certifier, and that certifier's key."""
    certifier = generated_certifiers()[0]
    events = folder / "events.jsonl"
    write_events(events, count, seed=21, certifiers=[certifier])
    (folder / "ingested").mkdir()
    config = write_config(folder / "ingested")
    command = [*accrochage_command(), "--config", str(config), "ingest", str(events)]
    done = run_measured(command, cwd=folder, env=clean_env())
    if done.returncode != 0:
        raise BenchError(f"ingest failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return folder / "ingested" / "state.db", certifier.key


def copied(state: Path, folder: Path) -> Path:
    folder.mkdir()
    source, target = sqlite3.connect(state), sqlite3.connect(folder / "state.db")
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()
    return folder / "state.db"


@dataclass
class Cut:
    held: list[float]
    """Each write transaction of the cut, from its start to its commit and the copy of the
    WAL that may follow it outside the write lock (seconds)."""
    batches: int
    waits: list[float]
    """Each write of the probe (another store writing every 5 ms) while the cut ran."""


def product_cut(
    state: Path,
    max_records: int,
    per_transaction: int | None = None,
    *,
    probe: bool = False,
    schema: str = "1.1.2",
) -> Cut:
    """`state` cut, every pending record forced (and every record to withdraw, in `schema`
    1.1.5); `per_transaction`: members a transaction instead of `CUT_PER_TRANSACTION` (the
    whole batch's number: the cut before session 50); `probe`: with a `WriterProbe` writing
    while it is cut."""
    config = write_config(state.parent, max_records=max_records, schema=schema)
    core = build_core(load_settings(config))
    part = cut_group.CUT_PER_TRANSACTION
    cut_group.CUT_PER_TRANSACTION = per_transaction or part
    report = FlushReport()
    try:
        with measured(core, state, probe) as (held, waits):
            core.flusher.cut(report, force=True)
    finally:
        cut_group.CUT_PER_TRANSACTION = part
        core.close()
    if not report.ok:
        raise BenchError(f"the cut failed: {report}")
    return Cut(held, len(report.cut), waits)


def product_supersede(state: Path, count: int, per_transaction: int | None = None) -> Cut:
    """The batch cut in `state` superseded by the next flush's plan, its header changed (the
    emitter's `id_client`), with a `WriterProbe`; `per_transaction`: members returned a
    transaction instead of `SUPERSEDE_PER_TRANSACTION` (the whole batch's: one transaction)."""
    config = write_config(state.parent, max_records=count)
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace(EMITTER.id_client, OTHER_EMITTER, 1), encoding="utf-8")
    core = build_core(load_settings(config))
    part = supersede_due.SUPERSEDE_PER_TRANSACTION
    supersede_due.SUPERSEDE_PER_TRANSACTION = per_transaction or part
    report = FlushReport()
    try:
        with measured(core, state, True) as (held, waits):
            core.flusher.plan(report)
    finally:
        supersede_due.SUPERSEDE_PER_TRANSACTION = part
        core.close()
    if len(report.superseded) != 1:
        raise BenchError(f"expected one batch superseded: {report.superseded}")
    return Cut(held, len(report.superseded), waits)


def bare_cut(state: Path, certifier: str) -> tuple[float, int]:
    """Seconds of one transaction of the cut's statements alone, and the members moved."""
    conn = connect(state)  # the store's own connection: WAL, synchronous = FULL, its checkpoints
    try:
        params = {"batch": "bare-batch", "at": "2026-12-07T10:00:00+01:00", "certifier": certifier}
        start = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        moved = conn.execute(BARE_CUT[0], params).rowcount
        for statement in BARE_CUT[1:]:
            conn.execute(statement, params)
        conn.execute("COMMIT")
        return time.perf_counter() - start, moved
    finally:
        conn.close()


def main() -> None:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--events", type=int, help="pending records to cut (default 100,000)")
    args = parser.parse_args()
    count = args.events or (2_000 if args.quick else 100_000)
    report = Report("cut", args.quick, {"events": count, "certifiers": 1})
    with scratch_dir("cut") as folder:
        state, certifier = stored_state(folder, count)
        parts_state, whole_state = copied(state, folder / "parts"), copied(state, folder / "whole")
        parts = product_cut(parts_state, count, probe=True)
        whole = product_cut(whole_state, count, count, probe=True)
        default = product_cut(copied(state, folder / "default"), 1000, probe=True)
        with checkpoints_in_commit():
            in_commit = product_cut(copied(state, folder / "in-commit"), count, probe=True)
        superseded = product_supersede(parts_state, count)
        superseded_whole = product_supersede(whole_state, count, count)
        bare_seconds, moved = bare_cut(copied(state, folder / "bare"), certifier)
    if parts.batches != 1 or whole.batches != 1 or in_commit.batches != 1 or moved != count:
        raise BenchError(f"expected one batch of {count}: {parts.batches}, {whole.batches} cut")
    longest, together = max(parts.held), sum(parts.held)
    per_member = together / count * 1e6
    report.add(
        info(
            "longest write transaction, one batch",
            longest * 1000,
            "ms",
            f"{count:,} members, max_records = {count:,}, cut in parts of "
            f"{cut_group.CUT_PER_TRANSACTION:,}: {len(parts.held)} write transactions, together "
            f"{together * 1000:.0f} ms ({per_member:.1f} µs a member; about "
            f"{per_member * CDC_MAX / 1e6:.1f} s in all for the CDC's {CDC_MAX:,} passages a file, "
            "no writer waiting more than one part)",
        )
    )
    report.add(
        info(
            "  a writer's longest write meanwhile",
            max(parts.waits) * 1000,
            "ms",
            f"another store writing a row every {PROBE_EVERY * 1000:.0f} ms: {len(parts.waits)} "
            f"writes, median {statistics.median(parts.waits) * 1000:.1f} ms",
        )
    )
    report.add(
        info(
            "  baseline: the same cut in one transaction",
            max(whole.held) * 1000,
            "ms",
            f"the cut before session 50; the writer's longest write meanwhile "
            f"{max(whole.waits) * 1000:.0f} ms ({len(whole.waits)} writes)",
        )
    )
    report.add(
        info(
            "ratio: a writer's longest wait, in parts / one transaction",
            max(parts.waits) / max(whole.waits),
            "x",
        )
    )
    report.add(
        info(
            "  baseline: the same cut, SQLite checkpointing in the COMMIT",
            max(in_commit.waits) * 1000,
            "ms",
            "the writer's longest write meanwhile, the WAL copied back under the write lock "
            f"(before session 52); the cut's longest transaction {max(in_commit.held) * 1000:.0f} "
            "ms",
        )
    )
    report.add(
        info(
            "ratio: a writer's longest wait, checkpoints outside the write lock / in the COMMIT",
            max(parts.waits) / max(in_commit.waits),
            "x",
        )
    )
    report.add(
        info(
            "supersession of that batch, longest write transaction",
            max(superseded.held) * 1000,
            "ms",
            f"its header changed (the emitter's id_client): its {count:,} members back to "
            f"pending in parts of {supersede_due.SUPERSEDE_PER_TRANSACTION:,}, "
            f"{len(superseded.held)} write transactions together "
            f"{sum(superseded.held) * 1000:.0f} ms; the probe's longest write meanwhile "
            f"{max(superseded.waits) * 1000:.0f} ms ({len(superseded.waits)} writes)",
        )
    )
    report.add(
        info(
            "  baseline: the same supersession in one transaction",
            max(superseded_whole.held) * 1000,
            "ms",
            f"the probe's longest write meanwhile {max(superseded_whole.waits) * 1000:.0f} ms",
        )
    )
    report.add(
        info(
            "ratio: a writer's longest wait, supersession in parts / one transaction",
            max(superseded.waits) / max(superseded_whole.waits),
            "x",
        )
    )
    report.add(
        info(
            "  baseline: the cut's statements bare",
            bare_seconds * 1000,
            "ms",
            f"one transaction: the {moved:,} members moved, their batch membership and "
            f"history inserted by SQL alone ({bare_seconds / moved * 1e6:.1f} µs a member)",
        )
    )
    report.add(
        info("ratio product (its transactions together) / bare", together / bare_seconds, "x")
    )
    report.add(
        info(
            "longest write transaction, max_records 1,000",
            max(default.held) * 1000,
            "ms",
            f"{default.batches} batches, one transaction each; all the write transactions "
            f"together {sum(default.held) * 1000:.0f} ms; the probe's longest write meanwhile "
            f"{max(default.waits) * 1000:.0f} ms ({len(default.waits)} writes)",
        )
    )
    report.details = {
        "held_parts": parts.held,
        "held_whole": whole.held,
        "held_default": default.held,
        "probe_default": default.waits,
        "probe_parts": parts.waits,
        "probe_whole": whole.waits,
        "probe_in_commit": in_commit.waits,
        "held_superseded": superseded.held,
        "held_superseded_whole": superseded_whole.held,
    }
    finish(report, args.json)


if __name__ == "__main__":
    main()
