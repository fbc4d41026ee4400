"""End to end on the embedded runtime: `accrochage ingest` then `accrochage flush --force`.

    python -m bench.embedded [--events N] [--quick] [--json] [--profile] [--keep]

N generated events (default 100,000, all valid) are written to a JSONL file; the CLI runs in
subprocesses with a configuration in a temporary folder (max_records 1000), each timed from
spawn to exit (interpreter start included) with its own peak RSS. The outbox must then hold
one passage per event. Baseline, in the same run and its own interpreter: a bare parse and
render of the same events (json.loads + DeliveredEvent.model_validate + render_flux to
/dev/null, files of 1000 per certifier; no state, no XSD).
Targets: ingest >= 5,000 events/s, end to end >= 2,500 events/s, peak RSS <= 250 MB each.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import shlex
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

from accrochage.generate import generate_events
from accrochage.models.deadline import PARIS
from accrochage.models.event import DeliveredEvent
from accrochage.sinks.profiles import PROFILES
from accrochage.sinks.render import FluxHeader, render_flux
from bench._common import (
    CERTIFIERS,
    EMITTER,
    BenchError,
    Measured,
    Report,
    accrochage_command,
    at_least,
    at_most,
    base_parser,
    clean_env,
    cpu_seconds,
    emit_result,
    finish,
    generated_certifiers,
    info,
    maybe_profile,
    paris_today,
    run_measured,
    run_scenario,
    scratch_dir,
    write_config,
)

TARGET_INGEST = 5_000
TARGET_END_TO_END = 2_500
TARGET_RSS_MB = 250.0
MAX_RECORDS = 1000
PASSAGE_TAG = b"<cpf:passageCertification>"


def write_events(path: Path, count: int, seed: int = 3) -> int:
    today = paris_today()
    with path.open("w", encoding="utf-8") as out:
        for event in generate_events(count, generated_certifiers(), today=today, seed=seed):
            out.write(json.dumps(event, ensure_ascii=False))
            out.write("\n")
    return path.stat().st_size


def count_passages(outbox: Path) -> tuple[int, int]:
    """(passages, files) in the outbox: occurrences of the passage tag, read in blocks."""
    passages = files = 0
    for path in sorted(outbox.rglob("*.xml")):
        files += 1
        tail = b""
        with path.open("rb") as handle:
            while block := handle.read(1 << 20):
                data = tail + block
                passages += data.count(PASSAGE_TAG)
                # a tag cut by the block boundary; too short to hold a whole one
                tail = data[-(len(PASSAGE_TAG) - 1) :]
    return passages, files


def accepted_from(stdout: str) -> int | None:
    found = re.search(r"accepted:\s+(\d+)", stdout)
    return int(found.group(1)) if found else None


def cpu_note(run: Measured) -> str:
    if run.processes == 1:
        return f"{run.cpu_seconds:.1f} s"
    total = run.tree_cpu_seconds
    return f"{run.cpu_seconds:.1f} s, all {run.processes} processes {total:.1f} s"


# -- the baseline (its own interpreter) ------------------------------------------------------


def scenario_bare(events_file: Path, profile: bool) -> None:
    """json.loads + model_validate + render_flux to /dev/null, files of MAX_RECORDS."""
    certifiers = {c.key: c for c in CERTIFIERS}
    now = datetime.now(PARIS).replace(microsecond=0)
    start, cpu = time.perf_counter(), cpu_seconds()
    with maybe_profile(profile, "bare parse and render"):
        by_certifier: dict[str, list[DeliveredEvent]] = defaultdict(list)
        with events_file.open("rb") as handle:
            for line in handle:
                event = DeliveredEvent.model_validate(json.loads(line))
                by_certifier[event.certifier or ""].append(event)
        passages = 0
        with open("/dev/null", "wb") as sink:
            for key, events in sorted(by_certifier.items()):
                events.sort(key=lambda e: (e.certification.code, e.record_id))
                for first in range(0, len(events), MAX_RECORDS):
                    head = FluxHeader(
                        f"bare-{key}-{first}", now, EMITTER, certifiers[key], PROFILES["1.1.2"]
                    )
                    stats = render_flux(sink, head, events[first : first + MAX_RECORDS])
                    passages += stats.passages
    emit_result(
        {
            "seconds": time.perf_counter() - start,
            "cpu_seconds": cpu_seconds() - cpu,
            "passages": passages,
        }
    )


def scenario_profile_cli(config: Path, *argv: str) -> None:
    """The CLI command in-process, under cProfile (the same code path as the subprocess)."""
    from accrochage.cli import main as cli

    title = f"accrochage {' '.join(argv)}"
    with maybe_profile(True, title, top=30), contextlib.suppress(SystemExit):
        cli(["--config", str(config), *argv], standalone_mode=False)
    emit_result({})


# -- the parent ------------------------------------------------------------------------------


def main() -> None:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--events", type=int, help="events (default 100,000)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--cli", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scenario == "bare":
        return scenario_bare(args.file, args.profile)
    if args.scenario == "cli":
        return scenario_profile_cli(args.config, *shlex.split(args.cli))

    count = args.events or (2_000 if args.quick else 100_000)
    report = Report("embedded", args.quick, {"events": count, "max_records": MAX_RECORDS})
    cli = accrochage_command()
    env = clean_env()
    with scratch_dir("embedded", keep=args.keep) as folder:
        if args.keep:
            print(f"working folder: {folder}")
        config = write_config(folder, max_records=MAX_RECORDS)
        events_file = folder / "events.jsonl"
        size = write_events(events_file, count)
        report.params["jsonl_mb"] = round(size / 1e6, 1)

        ingest = run_measured(
            [*cli, "--config", str(config), "ingest", str(events_file)], cwd=folder, env=env
        )
        if ingest.returncode != 0:
            raise BenchError(f"ingest failed ({ingest.returncode}):\n{ingest.stderr[-3000:]}")
        flush = run_measured(
            [*cli, "--config", str(config), "flush", "--force"], cwd=folder, env=env
        )
        if flush.returncode != 0:
            raise BenchError(f"flush failed ({flush.returncode}):\n{flush.stderr[-3000:]}")
        passages, files = count_passages(folder / "outbox")
        accepted = accepted_from(ingest.stdout)
        bare = run_scenario("embedded", "bare", f"--file={events_file}")

        total = ingest.seconds + flush.seconds
        report.add(
            at_least(
                "ingest events/s",
                count / ingest.seconds,
                "ev/s",
                TARGET_INGEST,
                f"{ingest.seconds:.1f} s wall, CPU {cpu_note(ingest)}",
            )
        )
        report.add(
            info(
                "flush --force events/s",
                count / flush.seconds,
                "ev/s",
                f"{flush.seconds:.1f} s wall, CPU {cpu_note(flush)}, {files} files",
            )
        )
        report.add(
            at_least(
                "end-to-end events/s",
                count / total,
                "ev/s",
                TARGET_END_TO_END,
                f"{total:.1f} s: ingest + flush",
            )
        )
        for name, run in (("ingest", ingest), ("flush", flush)):
            report.add(
                at_most(
                    f"{name} peak RSS",
                    run.peak_rss_mb,
                    "MiB",
                    TARGET_RSS_MB,
                    f"largest of its {run.processes} process(es)",
                )
            )
        report.add(
            info(
                "baseline bare parse+render events/s",
                count / bare["seconds"],
                "ev/s",
                f"{bare['seconds']:.1f} s, CPU {bare['cpu_seconds']:.1f} s, "
                f"peak RSS {bare['peak_rss_mb']:.0f} MiB (holds every event)",
            )
        )
        report.add(info("ratio end-to-end / bare time", total / bare["seconds"], "x", "slowdown"))
        report.add(
            info(
                "passages in the outbox",
                passages,
                "passages",
                f"expected {count:,}; ingest accepted {accepted}; {files} files",
            )
        )
        report.details = {
            "ingest": {k: v for k, v in vars(ingest).items() if k != "stderr"},
            "flush": {k: v for k, v in vars(flush).items() if k != "stderr"},
            "bare": bare,
        }
        if args.profile:
            base = [f"--config={config}"]
            print("\n(profiles of ingest and flush on a fresh state follow on stderr)")
            (folder / "state.db").unlink()
            for suffix in ("-wal", "-shm"):
                Path(f"{folder / 'state.db'}{suffix}").unlink(missing_ok=True)
            run_scenario(
                "embedded",
                "cli",
                *base,
                f"--cli=ingest {shlex.quote(str(events_file))}",
                show_stderr=True,
            )
            run_scenario("embedded", "cli", *base, "--cli=flush --force", show_stderr=True)
            run_scenario("embedded", "bare", f"--file={events_file}", "--profile", show_stderr=True)
    finish(report, args.json)
    if passages != count or accepted != count or bare["passages"] != count:
        raise SystemExit(
            f"expected {count} passages: outbox holds {passages}, ingest accepted {accepted}, "
            f"bare rendered {bare['passages']}"
        )


if __name__ == "__main__":
    main()
