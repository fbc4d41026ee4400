"""The batch cut: how long it holds the write lock, for one large batch and for many small ones.

    python -m bench.cut [--events N] [--quick] [--json]

N generated events of one certifier (default 100,000; 2,000 with --quick) are stored by
`accrochage ingest` into a fresh state, copied twice (SQLite's backup). Each copy is then cut
in-process, every pending record forced (`Flusher.cut`), with every write transaction timed
from its start to its commit (the store's `transaction`, wrapped): the longest is the most a
writer (the HTTP service's, the Kafka worker's) waits for a cut. Once with `max_records` = N
(one batch of N members; the CDC takes up to 200,000 passages a file), once with the default
1,000. Baseline in the same run, on the third copy: the cut's statements run bare in one
transaction (the members moved, the batch's members and their history inserted, by SQL
alone). No target: issue 13 asks that "the batch cut never holds the writer back for long";
this says how long, a member and projected to 200,000.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from accrochage.app import build_core
from accrochage.settings import load_settings
from accrochage.state.sqlite.connection import connect
from accrochage.streams.flush_report import FlushReport
from bench._common import (
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

CDC_MAX = 200_000
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


def product_cut(state: Path, max_records: int) -> tuple[list[float], int]:
    """Each write transaction's seconds while `state` is cut, and the batches cut."""
    settings = load_settings(write_config(state.parent, max_records=max_records))
    core = build_core(settings)
    store = core.flusher.store
    original = store.transaction
    held: list[float] = []

    @contextlib.contextmanager
    def timed() -> Iterator[Any]:
        start = time.perf_counter()
        with original() as tx:
            yield tx
        held.append(time.perf_counter() - start)

    store.transaction = timed  # type: ignore[method-assign]
    try:
        report = FlushReport()
        core.flusher.cut(report, force=True)
    finally:
        store.transaction = original  # type: ignore[method-assign]
        core.close()
    if not report.ok:
        raise BenchError(f"the cut failed: {report}")
    return held, len(report.cut)


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
        held_one, batches_one = product_cut(copied(state, folder / "one-batch"), count)
        held_default, batches_default = product_cut(copied(state, folder / "default"), 1000)
        bare_seconds, moved = bare_cut(copied(state, folder / "bare"), certifier)
    if batches_one != 1 or moved != count:
        raise BenchError(f"expected one batch of {count}: {batches_one} cut, {moved} moved bare")
    longest = max(held_one)
    per_member = longest / count * 1e6
    report.add(
        info(
            "longest write transaction, one batch",
            longest * 1000,
            "ms",
            f"{count:,} members, max_records = {count:,}: {per_member:.1f} µs a member, about "
            f"{per_member * CDC_MAX / 1e6:.1f} s for the CDC's {CDC_MAX:,} passages a file",
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
    report.add(info("ratio product / bare", longest / bare_seconds, "x"))
    report.add(
        info(
            "longest write transaction, max_records 1,000",
            max(held_default) * 1000,
            "ms",
            f"{batches_default} batches, one transaction each; all the write transactions "
            f"together {sum(held_default) * 1000:.0f} ms",
        )
    )
    report.details = {"held_one_batch": held_one, "held_default": held_default}
    finish(report, args.json)


if __name__ == "__main__":
    main()
