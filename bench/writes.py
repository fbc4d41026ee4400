"""The store's write amplification: bytes written and CPU per event, by transaction size.

    python -m bench.writes [--events N] [--sizes 1,8,2000] [--quick] [--json]

N generated events (all valid) are decoded once in this process, their passages prepared in
schema 1.1.5 as the services prepare them. They are then stored through the product's own
`Ingestor` into a fresh state (`SqliteStore`: the real schema and indexes, WAL,
`synchronous = FULL`, its checkpoints) in transactions of each size: 1 (a client alone),
8 (`bench.http`'s 8 clients at best), 2,000 (`ingest`'s chunk). A size-1 run stores a
quarter of the events (each event is one fsync). Measured from the first transaction to the
store closed (its last checkpoint included): the bytes this process handed to `write`
(`/proc/self/io` wchar: WAL frames and checkpoint copies), the bytes it sent to the disk
(write_bytes), CPU seconds, and the database's size afterwards (the data kept).

Baseline in the same run, at each size: the same events' JSON lines appended to a one-table
store without an index (WAL, `synchronous = FULL`, the same checkpoint interval): about
1 KiB kept an event where the product keeps about 3.6 (the record, its content, its passage,
its history), so the ratio of bytes written mixes more data kept with more pages written; the
amplification (bytes written / bytes kept) of each, printed side by side, separates them.
Printed: per event, KiB written and kept, µs of CPU, and their ratios to the baseline's.

For information, each explicit secondary index of the tables an event writes: the run at 8
events per transaction again without it (dropped right after the state is created), and
what that saves. The automatic indexes of the `records` and `passages` primary keys are
written for every event too and are not in the list (they cannot be dropped); without
`contents_key`, `INSERT OR REPLACE` has no conflict to find, which changes nothing for new
events. The indexes serve the queries and the batch cut: this says what each costs, not
which to drop.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from accrochage.generate import generate_events
from accrochage.models.deadline import SystemClock
from accrochage.models.lifecycle import Outcome
from accrochage.sinks.profiles import profile_for
from accrochage.state.sqlite import SqliteStore
from accrochage.state.sqlite.connection import CHECKPOINT_PAGES
from accrochage.streams.decoding import decode_lean
from accrochage.streams.incoming import Incoming
from accrochage.streams.ingest import Ingestor
from bench._common import (
    BenchError,
    Report,
    base_parser,
    cpu_seconds,
    finish,
    generated_certifiers,
    info,
    paris_today,
    registry,
    scratch_dir,
)
from bench.http_baselines import append_bodies, body_table

SIZES = (1, 8, 2000)
INDEXED_SIZE = 8
EVENT_TABLES = ("records", "contents", "passages", "history")


@dataclass
class Written:
    """One run: `events` stored in transactions of `size`."""

    label: str
    size: int
    events: int
    seconds: float
    cpu_seconds: float
    wchar: int
    disk_bytes: int
    kept_bytes: int

    @property
    def kib_per_event(self) -> float:
        return self.wchar / 1024 / self.events

    @property
    def cpu_us_per_event(self) -> float:
        return 1e6 * self.cpu_seconds / self.events

    @property
    def transactions(self) -> int:
        return -(-self.events // self.size)

    @property
    def kept_kib_per_event(self) -> float:
        return self.kept_bytes / 1024 / self.events

    @property
    def amplification(self) -> float:
        return self.wchar / max(1, self.kept_bytes)


def io_counters() -> tuple[int, int]:
    """(wchar, write_bytes) of this process so far."""
    fields = dict(
        line.split(": ") for line in Path("/proc/self/io").read_text().splitlines() if line
    )
    return int(fields["wchar"]), int(fields["write_bytes"])


def measured(label: str, size: int, events: int, path: Path, work: Callable[[], None]) -> Written:
    """`work` timed, with this process's CPU and `/proc/self/io` write counters around it;
    the database at `path` measured afterwards (what was kept)."""
    wchar, disk = io_counters()
    start, cpu = time.perf_counter(), cpu_seconds()
    work()
    seconds, spent = time.perf_counter() - start, cpu_seconds() - cpu
    wchar_after, disk_after = io_counters()
    return Written(
        label, size, events, seconds, spent, wchar_after - wchar, disk_after - disk,
        path.stat().st_size,
    )  # fmt: skip


def decoded_events(count: int) -> tuple[list[Incoming], list[bytes]]:
    """The events decoded as a service's decode step leaves them, and their JSON lines."""
    today = paris_today()
    events = generate_events(count, generated_certifiers(), today=today, seed=7)
    lines = [json.dumps(e, ensure_ascii=False).encode() for e in events]
    items = decode_lean(
        [Incoming(line) for line in lines], registry(), today, None, profile_for("1.1.5")
    )
    if any(item.decoded is None or not item.decoded[0].valid for item in items):
        raise BenchError("a generated event did not decode as valid")
    return items, lines


def store_product(
    folder: Path, items: Sequence[Incoming], size: int, without: str | None = None
) -> Written:
    path = folder / f"state-{size}-{without or 'all'}.db"
    if path.exists():
        raise BenchError(f"{path} exists: each run stores into a fresh state")
    store = SqliteStore(path)
    if without is not None:
        conn = sqlite3.connect(path)
        conn.execute(f'DROP INDEX "{without}"')
        conn.close()
    ingestor = Ingestor(store, registry(), SystemClock())

    def work() -> None:
        for first in range(0, len(items), size):
            results = ingestor.ingest(items[first : first + size])
            if any(result.outcome != Outcome.CREATED for result in results):
                raise BenchError("an event was not stored as a new valid record")
        store.close()

    label = "product" if without is None else f"without {without}"
    return measured(label, size, len(items), path, work)


def store_baseline(folder: Path, lines: Sequence[bytes], size: int) -> Written:
    path = folder / f"baseline-{size}.db"
    conn = body_table(path)
    conn.execute(f"PRAGMA wal_autocheckpoint = {CHECKPOINT_PAGES}")

    def work() -> None:
        for first in range(0, len(lines), size):
            append_bodies(conn, list(lines[first : first + size]))
        conn.close()

    return measured("baseline", size, len(lines), path, work)


def secondary_indexes(folder: Path) -> list[str]:
    """The explicit indexes of the tables an event writes, from the product's schema."""
    path = folder / "schema.db"
    SqliteStore(path).close()
    conn = sqlite3.connect(path)
    try:
        marks = ", ".join("?" * len(EVENT_TABLES))
        rows = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            f"AND tbl_name IN ({marks}) ORDER BY tbl_name, name",
            EVENT_TABLES,
        ).fetchall()
        return [name for (name,) in rows]
    finally:
        conn.close()


def report_sizes(report: Report, product: list[Written], baseline: list[Written]) -> None:
    for mine, floor in zip(product, baseline, strict=True):
        report.add(
            info(
                f"{mine.size:,} per transaction, KiB written/event",
                mine.kib_per_event,
                "KiB",
                f"baseline {floor.kib_per_event:.2f} "
                f"(x{mine.kib_per_event / floor.kib_per_event:.1f}); to the disk "
                f"{mine.disk_bytes / 1024 / mine.events:.1f} KiB/event; amplification "
                f"{mine.amplification:.1f} (baseline {floor.amplification:.1f}), kept "
                f"{mine.kept_kib_per_event:.1f} KiB/event (baseline "
                f"{floor.kept_kib_per_event:.1f}); {mine.events:,} events, "
                f"{mine.transactions:,} transactions",
            )
        )
        report.add(
            info(
                f"{mine.size:,} per transaction, CPU µs/event",
                mine.cpu_us_per_event,
                "µs",
                f"baseline {floor.cpu_us_per_event:.0f} "
                f"(x{mine.cpu_us_per_event / floor.cpu_us_per_event:.1f}); wall "
                f"{1e6 * mine.seconds / mine.events:.0f} µs/event "
                f"(baseline {1e6 * floor.seconds / floor.events:.0f})",
            )
        )


def report_indexes(report: Report, whole: Written, without: list[Written]) -> None:
    for run in without:
        saved = 1 - run.wchar / whole.wchar
        report.add(
            info(
                f"  {run.label}",
                100 * saved,
                "% bytes",
                f"at {run.size} per transaction: {run.kib_per_event:.1f} KiB/event "
                f"(all indexes {whole.kib_per_event:.1f}); CPU "
                f"{100 * (run.cpu_seconds / whole.cpu_seconds - 1):+.0f} %",
            )
        )


def main() -> None:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--events", type=int, help="events per run (default 20,000)")
    parser.add_argument(
        "--sizes",
        default=",".join(str(s) for s in SIZES),
        help="transaction sizes, comma-separated (default 1,8,2000)",
    )
    args = parser.parse_args()
    count = args.events or (400 if args.quick else 20_000)
    sizes = [int(s) for s in args.sizes.split(",")]
    report = Report("writes", args.quick, {"events": count, "sizes": sizes})
    items, lines = decoded_events(count)
    product, baseline = [], []
    with scratch_dir("writes") as folder:
        for size in sizes:
            share = count if size > 1 else max(1, count // 4)
            product.append(store_product(folder, items[:share], size))
            baseline.append(store_baseline(folder, lines[:share], size))
        report_sizes(report, product, baseline)
        whole = next(
            (run for run in product if run.size == INDEXED_SIZE and run.events == count),
            None,
        ) or store_product(folder, items, INDEXED_SIZE)
        without = [
            store_product(folder, items, INDEXED_SIZE, without=name)
            for name in secondary_indexes(folder)
        ]
        report.add(
            info(
                f"secondary indexes, at {INDEXED_SIZE} per transaction",
                len(without),
                "indexes",
                f"each left out in turn; all of them: {whole.kib_per_event:.1f} KiB/event, "
                f"{whole.cpu_us_per_event:.0f} µs/event",
            )
        )
        report_indexes(report, whole, without)
    report.details = {
        "runs": [vars(run) for run in (*product, *baseline, *without)],
    }
    finish(report, args.json)


if __name__ == "__main__":
    main()
