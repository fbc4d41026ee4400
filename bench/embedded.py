"""End to end on the embedded runtime: `accrochage ingest` then `accrochage flush --force`.

    python -m bench.embedded [--events N] [--quick] [--json] [--profile] [--keep]
                             [--schema 1.1.5|1.1.2|both] [--repeat R]

N generated events (default 100,000, all valid) are written to a JSONL file; the CLI runs in
subprocesses with a configuration in a temporary folder (max_records 1000), each timed from
spawn to exit (interpreter start included) with its own peak RSS. The outbox must then hold
one passage per event. Baseline, in the same run and its own interpreter: a bare parse and
render of the same events (json.loads + DeliveredEvent.model_validate + render_flux to
/dev/null, files of 1000 per certifier; no state, no XSD).
Targets: ingest >= 5,000 events/s, end to end >= 2,500 events/s, peak RSS <= 250 MB each.

Files are written in schema 1.1.5, the product's default (`--schema 1.1.2`: the older one).
`--schema both` runs the whole pipeline for 1.1.2 and for 1.1.5 in the same run, each on a
fresh state (alternating, `--repeat R` times each, the fastest counting), prints both sets of
figures and the ratio of their end-to-end times, 1.1.5 / 1.1.2: target <= 1.05.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import shlex
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

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
SCHEMAS = ("1.1.2", "1.1.5")
DEFAULT_SCHEMA = "1.1.5"
"""The product's default (`schema.version`)."""
TARGET_SCHEMA_RATIO = 1.05
"""1.1.5 (the default) within 5 % of 1.1.2, end to end."""


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


def scenario_bare(events_file: Path, profile: bool, schema: str = DEFAULT_SCHEMA) -> None:
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
                        f"bare-{key}-{first}", now, EMITTER, certifiers[key], PROFILES[schema]
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


@dataclass
class Pipeline:
    """`ingest` then `flush --force` on a fresh state in one schema version."""

    schema: str
    ingest: Measured
    flush: Measured
    passages: int
    files: int
    accepted: int | None
    config: Path

    @property
    def seconds(self) -> float:
        return self.ingest.seconds + self.flush.seconds


def run_pipeline(
    folder: Path, events_file: Path, schema: str, cli: list[str], env: dict[str, str]
) -> Pipeline:
    folder.mkdir(parents=True, exist_ok=True)
    config = write_config(folder, max_records=MAX_RECORDS, schema=schema)
    ingest = run_measured(
        [*cli, "--config", str(config), "ingest", str(events_file)], cwd=folder, env=env
    )
    if ingest.returncode != 0:
        raise BenchError(f"ingest failed ({ingest.returncode}):\n{ingest.stderr[-3000:]}")
    flush = run_measured([*cli, "--config", str(config), "flush", "--force"], cwd=folder, env=env)
    if flush.returncode != 0:
        raise BenchError(f"flush failed ({flush.returncode}):\n{flush.stderr[-3000:]}")
    passages, files = count_passages(folder / "outbox")
    return Pipeline(schema, ingest, flush, passages, files, accepted_from(ingest.stdout), config)


def report_pipeline(report: Report, run: Pipeline, count: int, label: str) -> None:
    ingest, flush = run.ingest, run.flush
    report.add(
        at_least(
            f"{label}ingest events/s",
            count / ingest.seconds,
            "ev/s",
            TARGET_INGEST,
            f"{ingest.seconds:.1f} s wall, CPU {cpu_note(ingest)}",
        )
    )
    report.add(
        info(
            f"{label}flush --force events/s",
            count / flush.seconds,
            "ev/s",
            f"{flush.seconds:.1f} s wall, CPU {cpu_note(flush)}, {run.files} files",
        )
    )
    report.add(
        at_least(
            f"{label}end-to-end events/s",
            count / run.seconds,
            "ev/s",
            TARGET_END_TO_END,
            f"{run.seconds:.1f} s: ingest + flush",
        )
    )
    for name, measured in (("ingest", ingest), ("flush", flush)):
        report.add(
            at_most(
                f"{label}{name} peak RSS",
                measured.peak_rss_mb,
                "MiB",
                TARGET_RSS_MB,
                f"largest of its {measured.processes} process(es)",
            )
        )
    report.add(
        info(
            f"{label}passages in the outbox",
            run.passages,
            "passages",
            f"expected {count:,}; ingest accepted {run.accepted}; {run.files} files",
        )
    )


def details_of(run: Pipeline) -> dict[str, Any]:
    return {
        "ingest": {k: v for k, v in vars(run.ingest).items() if k != "stderr"},
        "flush": {k: v for k, v in vars(run.flush).items() if k != "stderr"},
    }


def main() -> None:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--events", type=int, help="events (default 100,000)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument(
        "--schema",
        choices=[*SCHEMAS, "both"],
        default=DEFAULT_SCHEMA,
        help=f"schema version of the files (default {DEFAULT_SCHEMA}, the product's); "
        "both: 1.1.2 and 1.1.5 in the same run, alternately, with the ratio 1.1.5/1.1.2 "
        f"(target <= {TARGET_SCHEMA_RATIO})",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="with --schema both: runs of each version, alternating; the fastest counts",
    )
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--cli", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scenario == "bare":
        return scenario_bare(args.file, args.profile, args.schema)
    if args.scenario == "cli":
        return scenario_profile_cli(args.config, *shlex.split(args.cli))

    count = args.events or (2_000 if args.quick else 100_000)
    versions = list(SCHEMAS) if args.schema == "both" else [args.schema]
    rounds = max(1, args.repeat) if args.schema == "both" else 1
    params = {"events": count, "max_records": MAX_RECORDS, "schema": args.schema}
    if rounds > 1:
        params["repeat"] = rounds
    report = Report("embedded", args.quick, params)
    cli = accrochage_command()
    env = clean_env()
    with scratch_dir("embedded", keep=args.keep) as folder:
        if args.keep:
            print(f"working folder: {folder}")
        events_file = folder / "events.jsonl"
        size = write_events(events_file, count)
        report.params["jsonl_mb"] = round(size / 1e6, 1)

        best: dict[str, Pipeline] = {}
        for round_number in range(rounds):
            for version in versions:
                run = run_pipeline(
                    folder / f"{version}-{round_number}", events_file, version, cli, env
                )
                if version not in best or run.seconds < best[version].seconds:
                    best[version] = run
        bare_schema = versions[-1]
        bare = run_scenario("embedded", "bare", f"--file={events_file}", f"--schema={bare_schema}")

        for version in versions:
            label = f"[{version}] " if len(versions) > 1 else ""
            report_pipeline(report, best[version], count, label)
        last = best[versions[-1]]
        report.add(
            info(
                "baseline bare parse+render events/s",
                count / bare["seconds"],
                "ev/s",
                f"{bare['seconds']:.1f} s, CPU {bare['cpu_seconds']:.1f} s, "
                f"peak RSS {bare['peak_rss_mb']:.0f} MiB (holds every event), "
                f"schema {bare_schema}",
            )
        )
        report.add(
            info("ratio end-to-end / bare time", last.seconds / bare["seconds"], "x", "slowdown")
        )
        if len(versions) > 1:
            old, new = best["1.1.2"], best["1.1.5"]
            report.add(
                at_most(
                    "ratio end-to-end time 1.1.5 / 1.1.2",
                    new.seconds / old.seconds,
                    "x",
                    TARGET_SCHEMA_RATIO,
                    f"{new.seconds:.2f} s / {old.seconds:.2f} s"
                    + (f", fastest of {rounds} alternating runs each" if rounds > 1 else ""),
                )
            )
            report.add(
                info(
                    "ratio flush time 1.1.5 / 1.1.2",
                    new.flush.seconds / old.flush.seconds,
                    "x",
                    f"{new.flush.seconds:.2f} s / {old.flush.seconds:.2f} s",
                )
            )
        report.details = {
            **{version: details_of(best[version]) for version in versions},
            "bare": bare,
        }
        if args.profile:
            config = last.config
            state = config.parent / "state.db"
            base = [f"--config={config}"]
            print("\n(profiles of ingest and flush on a fresh state follow on stderr)")
            state.unlink()
            for suffix in ("-wal", "-shm"):
                Path(f"{state}{suffix}").unlink(missing_ok=True)
            run_scenario(
                "embedded",
                "cli",
                *base,
                f"--cli=ingest {shlex.quote(str(events_file))}",
                show_stderr=True,
            )
            run_scenario("embedded", "cli", *base, "--cli=flush --force", show_stderr=True)
            run_scenario(
                "embedded",
                "bare",
                f"--file={events_file}",
                f"--schema={bare_schema}",
                "--profile",
                show_stderr=True,
            )
    finish(report, args.json)
    wrong = {
        version: (run.passages, run.accepted)
        for version, run in best.items()
        if (run.passages, run.accepted) != (count, count)
    }
    if wrong or bare["passages"] != count:
        raise SystemExit(
            f"expected {count} passages: (outbox, ingest accepted) per schema {wrong}, "
            f"bare rendered {bare['passages']}"
        )


if __name__ == "__main__":
    main()
