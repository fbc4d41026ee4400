"""decode() throughput: parse + validate + enrich, one core, against a bare json.loads.

    python -m bench.validation [--events N] [--repeat 3] [--pin] [--quick] [--json] [--profile]

N generated events (all valid, like an exam platform's output) are serialised as JSON
lines in memory; the same lines go through `json.loads` alone, then through `decode()`.
Target: >= 20,000 events/s for decode().
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import sys
import time
from datetime import date
from typing import Any

from accrochage.generate import generate_events
from accrochage.models.decode import decode
from accrochage.models.event import ENVELOPE_FIELDS, DeliveredEvent
from accrochage.models.registry import Registry
from accrochage.models.rules import delivered_errors, delivered_warnings
from bench._common import (
    Report,
    at_least,
    base_parser,
    cpu_seconds,
    finish,
    generated_certifiers,
    info,
    maybe_profile,
    paris_today,
    registry,
)

TARGET_EVENTS_PER_S = 20_000


def make_lines(count: int, today: date, seed: int = 1) -> list[bytes]:
    events = generate_events(count, generated_certifiers(), today=today, seed=seed)
    return [json.dumps(e, ensure_ascii=False).encode() for e in events]


def time_json(lines: list[bytes]) -> float:
    loads = json.loads
    start = time.perf_counter()
    for line in lines:
        loads(line)
    return time.perf_counter() - start


def time_decode(lines: list[bytes], reg: Registry, today: date) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, valid events)."""
    valid = 0
    start, cpu = time.perf_counter(), cpu_seconds()
    for line in lines:
        valid += decode(line, reg, today).valid
    return time.perf_counter() - start, cpu_seconds() - cpu, valid


def pin_one_core(wanted: bool) -> str:
    """Single-threaded either way; pinning steadies a quiet machine, hurts a busy one."""
    if wanted and hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"pinned to cpu {cpu}"
    return "one thread, not pinned"


def main() -> None:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--events", type=int, help="events to decode (default 100,000)")
    parser.add_argument("--repeat", type=int, default=3, help="passes; the best one counts")
    parser.add_argument("--pin", action="store_true", help="pin the process to one CPU")
    args = parser.parse_args()
    count = args.events or (5_000 if args.quick else 100_000)
    repeat = 1 if args.quick else args.repeat
    pinned = pin_one_core(args.pin)
    today = paris_today()
    reg = registry()
    lines = make_lines(count, today)
    size = sum(len(line) for line in lines)

    # Warm both paths (imports, pydantic's first-call setup) outside the timings.
    time_json(lines[:500])
    time_decode(lines[:500], reg, today)
    gc.collect()
    json_s = min(time_json(lines) for _ in range(repeat))
    gc.collect()
    decode_runs = [time_decode(lines, reg, today) for _ in range(repeat)]
    decode_s, decode_cpu, valid = min(decode_runs)

    report = Report(
        "validation",
        args.quick,
        {"events": count, "avg_line_bytes": round(size / count), "passes": repeat, "cpu": pinned},
    )
    report.add(
        at_least(
            "decode() events/s",
            count / decode_s,
            "ev/s",
            TARGET_EVENTS_PER_S,
            f"{decode_s:.2f} s for {count:,}, {1e6 * decode_s / count:.1f} µs/event",
        )
    )
    report.add(
        info(
            "decode() events per CPU second",
            count / decode_cpu,
            "ev/s",
            "the same pass by CPU time: steadier when the machine is busy",
        )
    )
    report.add(
        info(
            "baseline json.loads events/s",
            count / json_s,
            "ev/s",
            f"{json_s:.2f} s, {1e6 * json_s / count:.1f} µs/event",
        )
    )
    report.add(info("ratio decode / json.loads time", decode_s / json_s, "x", "slowdown"))
    report.add(info("valid events", valid, "events", f"of {count:,}"))
    report.details = {
        "decode_s": decode_s,
        "decode_cpu_s": decode_cpu,
        "decode_runs": decode_runs,
        "json_loads_s": json_s,
        "bytes": size,
    }
    finish(report, args.json)
    if valid != count:
        raise SystemExit(f"expected {count} valid events, decode() found {valid}")

    if args.profile:
        print_stages(stages(lines, reg, today), decode_s / count)
        with maybe_profile(True, f"decode() of {min(count, 20_000):,} events"):
            time_decode(lines[:20_000], reg, today)


def stages(lines: list[bytes], reg: Registry, today: date) -> dict[str, float]:
    """decode()'s steps timed one at a time, µs per event, without a profiler.

    One line at a time through every step, as decode() does: holding many parsed events at
    once would make allocation, not the steps, the cost measured.
    """
    loads = hashed = validated = rules = 0.0
    clock = time.perf_counter
    for line in lines:
        t0 = clock()
        payload = json.loads(line)
        t1 = clock()
        canonical_hash(payload)
        t2 = clock()
        event = DeliveredEvent.model_validate(payload)
        t3 = clock()
        reg.resolve(event.certifier, event.certification.code)
        delivered_errors(event, today)
        delivered_warnings(event)
        t4 = clock()
        loads += t1 - t0
        hashed += t2 - t1
        validated += t3 - t2
        rules += t4 - t3
    per_event = 1e6 / len(lines)
    return {
        "json.loads": loads * per_event,
        "content hash (canonical json.dumps + sha256)": hashed * per_event,
        "DeliveredEvent.model_validate": validated * per_event,
        "registry.resolve + delivered_errors + delivered_warnings": rules * per_event,
    }


def canonical_hash(payload: dict[str, Any]) -> str:
    """What decode() does to hash an event's content (decode.py at the time of writing)."""
    content = {k: v for k, v in payload.items() if k not in ENVELOPE_FIELDS}
    text = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def print_stages(spent: dict[str, float], decode_us: float) -> None:
    total = sum(spent.values())
    lines = [
        f"\n== decode() stages, µs per event: decode() itself {decode_us * 1e6:.1f}; the stages "
        f"timed one by one sum to {total:.1f} (timer and cache effects) =="
    ]
    for name, micros in spent.items():
        lines.append(f"{micros:8.1f}  {100 * micros / total:5.1f}%  {name}")
    print("\n".join(lines), file=sys.stderr)


if __name__ == "__main__":
    main()
