"""`accrochage ingest` and `revalidate` beside a service: how long the service's writer
waits meanwhile.

    python -m bench.beside [--events N] [--repeat R] [--quick] [--json]

N generated events (default 100,000) are stored by `accrochage ingest FILE` (a subprocess)
into a fresh state, twice a round:
- **served**: a process holds the state's service lock (`<state>.lock`, as `run` or `worker`
  does while it serves), so `ingest` stores `SHARED_CHUNK` events a transaction;
- **alone** (the baseline, in the same round): the state to itself, `CHUNK` events a
  transaction.
Meanwhile a `WriterProbe` (`bench/probe.py`) writes a row every 5 ms in a process of its own,
as the service's writer storing a platform's event: its longest write and its 95th
percentile, the wait for `ingest`'s transaction included, and `ingest`'s wall, in both; the
ratios served / alone. Medians over R rounds (default 3). `ingest` must accept every event.

Then, on the state of the first served round (N pending records), `accrochage revalidate`
checks every record again, the same probe writing beside it; the baseline, in the same
round: the same records checked by `bench.revalidate_inside`, each chunk decoded inside its
write transaction (as `revalidate` did before session 54). Both must check every record.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

from accrochage.commands.ingest import CHUNK, SHARED_CHUNK
from accrochage.state.sqlite import SqliteStore
from accrochage.streams import revalidate
from bench._common import (
    PYTHON,
    ROOT,
    BenchError,
    Report,
    accrochage_command,
    base_parser,
    clean_env,
    finish,
    info,
    percentile,
    run_measured,
    scratch_dir,
    write_config,
    write_events,
)
from bench.probe import PROBE_EVERY, PROBE_START_SECONDS, WriterProbe

SERVICE = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from accrochage.state.sqlite.service_lock import ServiceLock
    ServiceLock(Path(sys.argv[1])).acquire_or_refuse()
    print("serving", flush=True)
    sys.stdin.read()
    """
)
"""What a service holds while it serves the state (its `<state>.lock`), and nothing else."""


@dataclass
class Run:
    seconds: float
    cpu_seconds: float
    waits: list[float]

    @property
    def longest(self) -> float:
        return max(self.waits)

    @property
    def p95(self) -> float:
        return percentile(self.waits, 95)


def ingest_once(folder: Path, events: Path, count: int, served: bool) -> Run:
    """`ingest` of `events` into a fresh state in `folder`, the probe writing beside it."""
    folder.mkdir()
    config = write_config(folder)
    state = folder / "state.db"
    SqliteStore(state).close()
    service = None
    if served:
        service = subprocess.Popen(
            [sys.executable, "-c", SERVICE, str(state)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert service.stdout is not None
        if service.stdout.readline() != "serving\n":
            raise BenchError("the stand-in service did not take the state's service lock")
    try:
        command = [*accrochage_command(), "--config", str(config), "ingest", str(events)]
        return probed(state, command, folder, f"accepted: {count}", "ingest")
    finally:
        if service is not None:
            assert service.stdin is not None and service.stdout is not None
            service.stdin.close()
            service.wait(PROBE_START_SECONDS)
            service.stdout.close()


def revalidate_once(folder: Path, count: int, command: list[str]) -> Run:
    """`command` checking the `count` records of the state in `folder` again, the probe
    writing beside it."""
    return probed(folder / "state.db", command, ROOT, f"{count} record(s) checked", "revalidate")


def probed(state: Path, command: list[str], cwd: Path, expected: str, name: str) -> Run:
    """`command` run to its end from `cwd`, the probe writing in `state` beside it; a
    `BenchError` unless it ends well and its output says `expected`."""
    with WriterProbe(state) as probe:
        done = run_measured(command, cwd=cwd, env=clean_env())
    if done.returncode != 0 or expected not in done.stdout:
        raise BenchError(f"{name} did not say {expected!r}:\n{done.stdout}\n{done.stderr}")
    return Run(done.seconds, done.tree_cpu_seconds, probe.waits)


def revalidations(folder: Path, count: int, repeat: int) -> tuple[list[Run], list[Run]]:
    """The product's `revalidate` and the baseline, `repeat` times each, on one state."""
    config = str(folder / "accrochage.toml")
    product = [*accrochage_command(), "--config", config, "revalidate"]
    inside = [PYTHON, "-m", "bench.revalidate_inside", config]
    runs: tuple[list[Run], list[Run]] = ([], [])
    for _ in range(repeat):
        runs[0].append(revalidate_once(folder, count, product))
        runs[1].append(revalidate_once(folder, count, inside))
    return runs


def main() -> None:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--events", type=int, help="events to ingest (default 100,000)")
    parser.add_argument("--repeat", type=int, help="rounds (default 3; --quick: 1)")
    args = parser.parse_args()
    count = args.events or (3_000 if args.quick else 100_000)
    repeat = args.repeat or (1 if args.quick else 3)
    report = Report("beside", args.quick, {"events": count, "repeat": repeat})
    served: list[Run] = []
    alone: list[Run] = []
    with scratch_dir("beside") as folder:
        events = folder / "events.jsonl"
        write_events(events, count)
        for round_ in range(repeat):
            served.append(ingest_once(folder / f"served-{round_}", events, count, True))
            alone.append(ingest_once(folder / f"alone-{round_}", events, count, False))
        checked, inside = revalidations(folder / "served-0", count, repeat)

    def mid(runs: list[Run], what: str) -> float:
        return float(statistics.median(getattr(r, what) for r in runs))

    def each(runs: list[Run], what: str, scale: float = 1e3) -> str:
        return ", ".join(f"{getattr(r, what) * scale:.0f}" for r in runs)

    report.add(
        info(
            "a service's writer beside ingest, longest write",
            mid(served, "longest") * 1e3,
            "ms",
            f"ingest storing {SHARED_CHUNK:,} events a transaction (a service serves the "
            f"state); the probe writing a row every {PROBE_EVERY * 1e3:.0f} ms; medians of "
            f"{repeat} ({each(served, 'longest')}); 95th percentile "
            f"{mid(served, 'p95') * 1e3:.1f} ms ({each(served, 'p95')})",
        )
    )
    report.add(
        info(
            "  baseline: ingest with the state to itself",
            mid(alone, "longest") * 1e3,
            "ms",
            f"{CHUNK:,} events a transaction, the same probe: medians ({each(alone, 'longest')}); "
            f"95th percentile {mid(alone, 'p95') * 1e3:.1f} ms ({each(alone, 'p95')})",
        )
    )
    report.add(
        info(
            "ratio: the writer's longest write, served / alone",
            mid(served, "longest") / mid(alone, "longest"),
            "x",
            f"95th percentile {mid(served, 'p95') / mid(alone, 'p95'):.3f}x",
        )
    )
    report.add(
        info(
            "ingest wall, served",
            mid(served, "seconds"),
            "s",
            f"{count / mid(served, 'seconds'):,.0f} events/s ({each(served, 'seconds', 1)} s); "
            f"CPU {mid(served, 'cpu_seconds'):.1f} s, all its processes",
        )
    )
    report.add(
        info(
            "  baseline: ingest wall, alone",
            mid(alone, "seconds"),
            "s",
            f"{count / mid(alone, 'seconds'):,.0f} events/s ({each(alone, 'seconds', 1)} s); "
            f"CPU {mid(alone, 'cpu_seconds'):.1f} s",
        )
    )
    report.add(
        info(
            "ratio: ingest wall, served / alone",
            mid(served, "seconds") / mid(alone, "seconds"),
            "x",
            "the price of the shorter transactions, paid only beside a service",
        )
    )
    report.add(
        info(
            "a service's writer beside revalidate, longest write",
            mid(checked, "longest") * 1e3,
            "ms",
            f"`accrochage revalidate` of the {count:,} records, decoding from a reader, "
            f"{revalidate.CHUNK} records a write transaction: medians of {repeat} "
            f"({each(checked, 'longest')}); 95th percentile {mid(checked, 'p95') * 1e3:.1f} ms "
            f"({each(checked, 'p95')})",
        )
    )
    report.add(
        info(
            "  baseline: each chunk decoded inside its write transaction",
            mid(inside, "longest") * 1e3,
            "ms",
            f"`bench.revalidate_inside`: medians ({each(inside, 'longest')}); 95th percentile "
            f"{mid(inside, 'p95') * 1e3:.1f} ms ({each(inside, 'p95')})",
        )
    )
    report.add(
        info(
            "ratio: the writer's longest write, revalidate / baseline",
            mid(checked, "longest") / mid(inside, "longest"),
            "x",
            f"95th percentile {mid(checked, 'p95') / mid(inside, 'p95'):.3f}x",
        )
    )
    report.add(
        info(
            "revalidate wall",
            mid(checked, "seconds"),
            "s",
            f"{count / mid(checked, 'seconds'):,.0f} records/s ({each(checked, 'seconds', 1)} s); "
            f"CPU {mid(checked, 'cpu_seconds'):.1f} s; baseline {mid(inside, 'seconds'):.2f} s "
            f"({each(inside, 'seconds', 1)} s), CPU {mid(inside, 'cpu_seconds'):.1f} s",
        )
    )
    report.add(
        info(
            "ratio: revalidate wall / baseline",
            mid(checked, "seconds") / mid(inside, "seconds"),
            "x",
            "the price of reading each chunk twice (once without the write lock)",
        )
    )
    finish(report, args.json)


if __name__ == "__main__":
    main()
