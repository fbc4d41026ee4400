"""Shared plumbing of the benchmarks: metrics, tables, JSON, subprocesses, peak RSS, configs.

Every benchmark is a script (`python -m bench.<name>`); the scenarios whose peak memory
matters run in a fresh interpreter (`python -m bench.<name> --scenario <s>`), which prints
one `BENCH-RESULT {json}` line that the parent reads back.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from accrochage.generate import GeneratedCertifier, generate_events
from accrochage.models.deadline import PARIS
from accrochage.models.registry import Certifier, Emitter, Registry

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
RESULT_TAG = "BENCH-RESULT "
EMITTER = Emitter("03VML243", "CERTIFICATEUR")
# The certifiers of accrochage.example.toml, plus a third so that files mix RS and RNCP codes.
CERTIFIERS = (
    Certifier("pix", "03VML243", "MCFCER000209", frozenset({"RS5875"})),
    Certifier("demo-school", "12ABC345", "MCFCER000123", frozenset({"RNCP35726", "RNCP37873"})),
    Certifier("campus-num", "45XYZ678", "MCFCER000456", frozenset({"RS6200", "RNCP38000"})),
)


class BenchError(RuntimeError):
    """The benchmark could not measure what it meant to (a failed run, a wrong count)."""


def load1() -> float:
    """The 1-minute load average: other work on the machine skews wall-clock figures."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


LOAD_AT_START = load1()  # when the bench started (this module is imported first thing)


# -- figures ---------------------------------------------------------------------------------


@dataclass
class Metric:
    name: str
    value: float
    unit: str
    target: str = ""
    ok: bool | None = None
    note: str = ""


def at_least(name: str, value: float, unit: str, target: float, note: str = "") -> Metric:
    return Metric(name, value, unit, f">= {fmt(target)}", value >= target, note)


def at_most(name: str, value: float, unit: str, target: float, note: str = "") -> Metric:
    return Metric(name, value, unit, f"<= {fmt(target)}", value <= target, note)


def info(name: str, value: float, unit: str, note: str = "") -> Metric:
    return Metric(name, value, unit, note=note)


def fmt(value: float) -> str:
    if value != value:  # NaN
        return "-"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


@dataclass
class Report:
    bench: str
    quick: bool
    params: dict[str, Any]
    metrics: list[Metric] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    load_start: float = LOAD_AT_START

    def add(self, metric: Metric) -> None:
        if self.quick:
            metric.ok = None  # a smoke run is too small to judge a target by
        self.metrics.append(metric)

    @property
    def missed(self) -> list[Metric]:
        return [m for m in self.metrics if m.ok is False]

    def as_dict(self) -> dict[str, Any]:
        return {
            "bench": self.bench,
            "quick": self.quick,
            "params": self.params,
            "machine": machine(),
            "load1": {"start": self.load_start, "end": load1()},
            "targets_judged": not self.quick,
            "metrics": [asdict(m) for m in self.metrics],
            "missed_targets": [m.name for m in self.missed],
            "details": self.details,
        }

    def table(self) -> str:
        header = ("metric", "value", "unit", "target", "", "note")
        rows = [
            (
                m.name,
                fmt(m.value),
                m.unit,
                m.target,
                "" if m.ok is None else ("ok" if m.ok else "MISSED"),
                m.note,
            )
            for m in self.metrics
        ]
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
        aligned = [str.ljust, str.rjust, str.ljust, str.ljust, str.ljust, str.ljust]
        lines = [
            "  ".join(a(c, w) for a, c, w in zip(aligned, row, widths, strict=True)).rstrip()
            for row in [header, *rows]
        ]
        lines.insert(1, "  ".join("-" * w for w in widths))
        title = f"bench.{self.bench}" + (
            " (--quick: a smoke run, targets not judged)" if self.quick else ""
        )
        params = ", ".join(f"{k}={v}" for k, v in self.params.items())
        load = (
            f"load average (1 min) {self.load_start:.2f} at start, {load1():.2f} at end "
            f"on {os.cpu_count()} CPUs: wall-clock figures suffer when it exceeds the CPUs"
        )
        return "\n".join([f"{title}: {params}", *lines, load])

    def emit(self, as_json: bool) -> None:
        if as_json:
            print(json.dumps(self.as_dict(), indent=1, ensure_ascii=False))
        else:
            print(self.table())


def machine() -> dict[str, Any]:
    import lxml.etree
    import pydantic

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "lxml": ".".join(map(str, lxml.etree.LXML_VERSION)),
        "libxml2": ".".join(map(str, lxml.etree.LIBXML_VERSION)),
        "pydantic": pydantic.VERSION,
        "sqlite": __import__("sqlite3").sqlite_version,
    }


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (p95 of 50 values is the 48th smallest)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]


# -- processes and memory --------------------------------------------------------------------


def _maxrss_mb(ru_maxrss: int) -> float:
    # Linux reports kilobytes, macOS bytes.
    return ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)


def cpu_seconds() -> float:
    """User + system CPU time of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def proc_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of another process (all its threads), Linux only."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _process_table(pid: int) -> tuple[dict[int, int], dict[int, float]]:
    """Every process's parent, and its own CPU seconds (the reaped children's added for `pid`
    alone), from /proc (Linux)."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        child = int(entry.name)
        parents[child] = int(fields[1])
        own = int(fields[11]) + int(fields[12])
        reaped = int(fields[13]) + int(fields[14])
        times[child] = (own + (reaped if child == pid else 0)) / ticks
    return parents, times


def tree_cpu_by_process(pid: int) -> dict[int, tuple[int, int, float]]:
    """pid -> (its parent, its depth under `pid`, its CPU seconds) for `pid` and its live
    descendants; empty if `pid` is gone."""
    parents, times = _process_table(pid)
    if pid not in times:
        return {}
    found: dict[int, tuple[int, int, float]] = {}
    frontier = [(pid, 0)]
    while frontier:
        current, depth = frontier.pop()
        found[current] = (parents.get(current, 0), depth, times.get(current, 0.0))
        frontier.extend((c, depth + 1) for c, parent in parents.items() if parent == current)
    return found


def tree_total(tree: dict[int, tuple[int, int, float]]) -> float | None:
    """The CPU seconds of a `tree_cpu_by_process` reading; None for an empty one."""
    return sum(cpu for _, _, cpu in tree.values()) if tree else None


def tree_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process, its live descendants and its reaped children
    (Linux, /proc): a service's worker processes count with it. None if it is gone."""
    return tree_total(tree_cpu_by_process(pid))


def children_cpu_seconds() -> float:
    """User + system CPU time of this process's reaped children so far (RUSAGE_CHILDREN)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB."""
    return _maxrss_mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def emit_result(result: dict[str, Any]) -> None:
    """What a `--scenario` child hands back to its parent (one line on stdout)."""
    result.setdefault("peak_rss_mb", peak_rss_mb())
    print(RESULT_TAG + json.dumps(result), flush=True)


# Linux gotcha: at exec() the kernel folds the old address space's high-water mark into the
# new program's ru_maxrss, and a spawned child's old address space is its parent's. A child
# spawned by a bench process that holds 100 MB of events reports >= 100 MB, whatever it does.
# So every measured command is started by this launcher: a bare interpreter (~10 MB) that
# spawns it, forwards SIGTERM/SIGINT to it and reaps it with wait4(). The launcher is also a
# child subreaper (Linux), so that the command's helper processes (a forkserver and its
# render workers, say) are reaped by it too: `tree_cpu_seconds` and `peak_rss_mb` then cover
# every process of the command, the peak being that of its largest single process.
LAUNCHER = """
import ctypes, json, os, resource, signal, sys, time
out, argv = sys.argv[1], sys.argv[2:]
try:
    ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
except (OSError, AttributeError):
    pass
start = time.perf_counter()
pid = os.posix_spawnp(argv[0], argv, os.environ)
with open(out + ".pid.tmp", "w") as handle:
    handle.write(str(pid))
os.replace(out + ".pid.tmp", out + ".pid")
def forward(signum, frame):
    os.kill(pid, signum)
signal.signal(signal.SIGTERM, forward)
signal.signal(signal.SIGINT, forward)
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - start
processes, deadline = 1, time.monotonic() + 30
while time.monotonic() < deadline:  # orphaned helpers, reparented to us
    try:
        reaped, _ = os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        break
    if reaped:
        processes += 1
    else:
        time.sleep(0.02)
tree = resource.getrusage(resource.RUSAGE_CHILDREN)
code = os.waitstatus_to_exitcode(status)
with open(out, "w") as handle:
    json.dump({"seconds": seconds, "cpu_seconds": usage.ru_utime + usage.ru_stime,
               "tree_cpu_seconds": tree.ru_utime + tree.ru_stime, "ru_maxrss": tree.ru_maxrss,
               "own_ru_maxrss": usage.ru_maxrss, "processes": processes, "returncode": code},
              handle)
sys.exit(0 if code == 0 else 1)
"""


@dataclass
class Launched:
    """A command started through LAUNCHER: `proc` is the launcher, `pid` the command."""

    proc: subprocess.Popen[bytes]
    result: Path

    @property
    def pid(self) -> int:
        marker = Path(f"{self.result}.pid")
        deadline = time.monotonic() + 30
        while not marker.is_file():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise BenchError(f"the launcher did not start {self.result}")
            time.sleep(0.01)
        return int(marker.read_text())

    def outcome(self) -> dict[str, Any]:
        self.proc.wait()
        try:
            done: dict[str, Any] = json.loads(self.result.read_text())
        except (OSError, ValueError):
            raise BenchError(f"the launcher left no result (exit {self.proc.returncode})") from None
        finally:
            shutil.rmtree(self.result.parent, ignore_errors=True)
        done["peak_rss_mb"] = _maxrss_mb(done.pop("ru_maxrss"))
        done["own_peak_rss_mb"] = _maxrss_mb(done.pop("own_ru_maxrss"))
        return done


def launch(
    command: list[str], *, cwd: Path, env: dict[str, str] | None = None, **popen: Any
) -> Launched:
    if "/" not in command[0]:
        command = [shutil.which(command[0]) or command[0], *command[1:]]
    result = Path(tempfile.mkdtemp(prefix="accrochage-bench-launch-")) / "result.json"
    proc = subprocess.Popen(
        [PYTHON, "-S", "-c", LAUNCHER, str(result), *command], cwd=cwd, env=env, **popen
    )
    return Launched(proc, result)


def run_scenario(
    module: str, scenario: str, *args: str, show_stderr: bool = False, timeout: float = 3600
) -> dict[str, Any]:
    """Run `python -m bench.<module> --scenario <scenario> ARGS` in a fresh interpreter.

    The child measures itself (getrusage(RUSAGE_SELF)); it is started by LAUNCHER so that
    its ru_maxrss is its own. With `show_stderr` its stderr (a profile, say) goes to ours.
    """
    command = [PYTHON, "-m", f"bench.{module}", "--scenario", scenario, *args]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        launched = launch(command, cwd=ROOT, stdout=out, stderr=None if show_stderr else err)
        try:
            launched.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            launched.proc.terminate()
            raise BenchError(f"scenario {scenario} ran over {timeout} s") from None
        done = launched.outcome()
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
    if done["returncode"] != 0:
        raise BenchError(
            f"scenario {scenario} failed (exit {done['returncode']}):\n{stderr[-4000:]}"
        )
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_TAG):
            result: dict[str, Any] = json.loads(line[len(RESULT_TAG) :])
            return result
    raise BenchError(f"scenario {scenario} printed no result:\n{stdout[-2000:]}")


@dataclass
class Measured:
    """One command, timed from spawn to exit, with its own CPU time and peak RSS."""

    command: list[str]
    seconds: float
    cpu_seconds: float
    """The command's process alone."""
    tree_cpu_seconds: float
    """Every process of the command (helpers and workers included)."""
    peak_rss_mb: float
    """The largest single process of the command."""
    processes: int
    returncode: int
    stdout: str
    stderr: str


def accrochage_command() -> list[str]:
    script = Path(PYTHON).parent / "accrochage"
    if script.is_file():
        return [str(script)]
    return [PYTHON, "-c", "from accrochage.cli import main; main()"]


def run_measured(command: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> Measured:
    """Run a command to completion; its rusage comes from wait4() on that very command.

    wait4 gives the child's own rusage (getrusage(RUSAGE_CHILDREN) would mix in every
    earlier child), so each command's peak is isolated.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        done = launch(command, cwd=cwd, env=env, stdout=out, stderr=err).outcome()
        out.seek(0)
        err.seek(0)
        return Measured(
            command,
            done["seconds"],
            done["cpu_seconds"],
            done["tree_cpu_seconds"],
            done["peak_rss_mb"],
            done["processes"],
            done["returncode"],
            out.read().decode("utf-8", "replace"),
            err.read().decode("utf-8", "replace"),
        )


def stop_measured(launched: Launched, timeout: float = 60) -> dict[str, Any]:
    """SIGTERM a long-running command (through its launcher); its rusage once it exited."""
    launched.proc.terminate()
    try:
        launched.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.kill(launched.pid, 9)
    return launched.outcome()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def scratch_dir(prefix: str, keep: bool = False) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=f"accrochage-bench-{prefix}-"))
    try:
        yield path
    finally:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)


LOCK_SERIES = {
    "accrochage_write_lock_held_seconds_count": "transactions",
    "accrochage_write_lock_held_seconds_sum": "held",
    "accrochage_write_lock_wait_seconds_sum": "waited",
}


def lock_times(base: str) -> dict[str, dict[str, float]]:
    """A service's write-lock series by process (`service`, `writer`), as its `/metrics` at
    `base` says them: its transactions, the seconds they held the state and waited for it."""
    with urllib.request.urlopen(f"{base}/metrics", timeout=30) as response:
        text = response.read().decode()
    found = {p: dict.fromkeys(LOCK_SERIES.values(), 0.0) for p in ("service", "writer")}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            process = sample.labels.get("process")
            if process in found and sample.name in LOCK_SERIES:
                found[process][LOCK_SERIES[sample.name]] = sample.value
    return found


# -- the domain ------------------------------------------------------------------------------


def paris_today() -> date:
    from datetime import datetime

    return datetime.now(PARIS).date()


def registry() -> Registry:
    return Registry(EMITTER, CERTIFIERS)


def generated_certifiers(certifiers: Sequence[Certifier] = CERTIFIERS) -> list[GeneratedCertifier]:
    return [GeneratedCertifier(c.key, sorted(c.certifications)) for c in certifiers]


def write_events(
    path: Path,
    count: int,
    seed: int = 3,
    certifiers: Sequence[GeneratedCertifier] | None = None,
) -> int:
    """`count` generated events dated today, one JSON line each, of `certifiers` (default:
    every certifier `write_config` configures); the file's size in bytes."""
    chosen = generated_certifiers() if certifiers is None else certifiers
    with path.open("w", encoding="utf-8") as out:
        for event in generate_events(count, chosen, today=paris_today(), seed=seed):
            out.write(json.dumps(event, ensure_ascii=False))
            out.write("\n")
    return path.stat().st_size


def write_config(
    folder: Path,
    *,
    max_records: int = 1000,
    bind: str = "127.0.0.1:8787",
    tick: str = "5s",
    max_delay: str = "15m",
    schema: str = "1.1.2",
) -> Path:
    """An accrochage.toml whose state and outbox live in `folder`, in schema `schema` (named:
    1.1.2 by default, the version whose official XSD the crash tests check files against)."""
    lines = [
        "[emitter]",
        f'id_client = "{EMITTER.id_client}"',
        f'nature = "{EMITTER.nature}"',
        "",
    ]
    for certifier in CERTIFIERS:
        codes = ", ".join(f'"{c}"' for c in sorted(certifier.certifications))
        lines += [
            "[[certifiers]]",
            f'key = "{certifier.key}"',
            f'id_client = "{certifier.id_client}"',
            f'id_contrat = "{certifier.id_contrat}"',
            f"certifications = [{codes}]",
            "",
        ]
    lines += [
        "[batching]",
        f"max_records = {max_records}",
        "max_file_bytes = 190000000",
        f'max_delay = "{max_delay}"',
        'deadline_margin = "14d"',
        f'tick = "{tick}"',
        "",
        "[paths]",
        f'state = "{folder / "state.db"}"',
        f'outbox = "{folder / "outbox"}"',
        "",
        "[schema]",
        f'version = "{schema}"',
        "",
        "[api]",
        f'bind = "{bind}"',
        "",
    ]
    path = folder / "accrochage.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def clean_env() -> dict[str, str]:
    """The environment for the CLI: no ACCROCHAGE_* override leaks in from the caller."""
    return {k: v for k, v in os.environ.items() if not k.startswith("ACCROCHAGE_")}


# -- command line and profiling --------------------------------------------------------------


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="a small smoke run (seconds)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also print the cProfile top entries of the measured work (slower)",
    )
    parser.add_argument("--scenario", help=argparse.SUPPRESS)
    return parser


@contextmanager
def maybe_profile(enabled: bool, title: str, top: int = 25) -> Iterator[None]:
    """Profile the block with cProfile and print the top entries to stderr."""
    if not enabled:
        yield
        return
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
        print_profile(profiler, title, top)


def print_profile(profiler: cProfile.Profile, title: str, top: int = 25) -> None:
    for order in ("tottime", "cumulative"):
        stream = io.StringIO()
        stats = pstats.Stats(profiler, stream=stream).strip_dirs().sort_stats(order)
        stats.print_stats(top)
        body = stream.getvalue()
        body = body[body.find("   ncalls") :] if "   ncalls" in body else body
        total = f"{stats.total_tt:.2f} s"  # type: ignore[attr-defined]
        print(f"\n== profile: {title} (by {order}, total {total}) ==\n{body}", file=sys.stderr)


def finish(report: Report, as_json: bool) -> None:
    report.emit(as_json)
    sys.stdout.flush()
