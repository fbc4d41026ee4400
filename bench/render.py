"""Rendering batch files: release() (render + streamed XSD gate + atomic write).

    python -m bench.render [--quick] [--json] [--profile] [--max-count N] [--min-count N]

(a) Files at the CDC's limits, each scenario in a fresh interpreter so that its peak RSS is
    its own: as many maximal passages (every field filled, names near their maximum length)
    as fit in 190 MB, and up to 200,000 minimal passages. Each is released to a temporary
    outbox, and compared with a naive in-memory build of the same file (lxml tree built
    with SubElement, tostring, parsed back and checked with XMLSchema.validate).
    Targets: <= 20 s and peak RSS <= 200 MB for release(), whatever the size.
(b) A 1,000-passage file released inside a warm process (events decoded, schema loaded):
    median of 5 runs, target <= 0.5 s.

Passages are produced lazily (a validated template copied with a new record_id), as the
flusher does from its database cursor, so the event list never sits in memory.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import time
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from lxml import etree

from accrochage.generate import generate_events
from accrochage.models.deadline import PARIS
from accrochage.models.decode import decode
from accrochage.models.event import DeliveredEvent
from accrochage.models.nir import nir_key
from accrochage.models.vocabulary import CDC_MAX_PASSAGES
from accrochage.sinks.gate import check_file
from accrochage.sinks.outbox import release
from accrochage.sinks.passage import NSMAP, passage_bytes, passage_element, q
from accrochage.sinks.profiles import PROFILES
from accrochage.sinks.render import FluxHeader, envelope_bytes, render_flux
from accrochage.sinks.schemas import load_schema, schema_path
from bench._common import (
    CERTIFIERS,
    EMITTER,
    BenchError,
    Report,
    at_most,
    base_parser,
    cpu_seconds,
    emit_result,
    finish,
    generated_certifiers,
    info,
    maybe_profile,
    median,
    paris_today,
    peak_rss_mb,
    registry,
    run_scenario,
    scratch_dir,
)

PROFILE = PROFILES["1.1.2"]
MAX_FILE_BYTES = 190_000_000
TARGET_SECONDS = 20.0
TARGET_RSS_MB = 200.0
TARGET_WARM_SECONDS = 0.5
PIX = CERTIFIERS[0]
CAMPUS = CERTIFIERS[2]


def _fill(text: str, length: int) -> str:
    """`text` repeated to `length` characters, without trailing blanks."""
    return (text * (length // len(text) + 1))[:length].rstrip()


def maximal_payload(today: date) -> dict[str, Any]:
    """Every field of the contract filled; names near their 60-character maximum."""
    first13 = "193059910912" + "3"  # a man born in May 1993 abroad (99), country 109
    return {
        "type": "certification.delivered",
        "event_id": "6f1c2d3e-0a4b-4c5d-8e9f-101112131415",
        "occurred_at": f"{today.isoformat()}T10:15:00+01:00",
        "source": "exam-platform-bench",
        "record_id": "placeholder",
        "certifier": PIX.key,
        "certification": {"type": "RS", "code": "RS5875"},
        "delivered_on": (today - timedelta(days=10)).isoformat(),
        "valid_until": (today + timedelta(days=3 * 365)).isoformat(),
        "obtention": "PAR_SCORING",
        "certified": True,
        "score": "987",
        "mention": "MENTION_TRES_BIEN_AVEC_FELICITATIONS_DU_JURY",
        "language_level": "C1",
        "digital_level": {
            "general_score": 987,
            "results": [
                {"level": level, "area": area, "competence": competence}
                for level, area, competence in (
                    (6, "1", "1"),
                    (5, "2", "3"),
                    (7, "3", "2"),
                    (4, "4", "1"),
                    (8, "5", "2"),
                )
            ],
        },
        "exam": {
            "start": (today - timedelta(days=14)).isoformat(),
            "end": (today - timedelta(days=12)).isoformat(),
            "mode": "MIXTE",
            "center_postal_code": "75002",
        },
        "registration": {
            "access_mode": "VAE",
            "vae_path": "VAE_CLASSIQUE",
            "initiative": "EMPLOYEUR",
            "date": (today - timedelta(days=200)).isoformat(),
        },
        "proof_url": "https://verification.example-certifier.fr/attestations/2026/"
        "0f6c2d3e-0a4b-4c5d-8e9f-101112131415",
        "option_label": "Option Développement web et applications mobiles, parcours expert",
        "verbatim": "Compétences évaluées : conception, développement, déploiement et "
        "maintenance d'applications, sécurité et qualité logicielle",
        "holder": {
            "birth_name": _fill("de La Tour d'Auvergne-Saint-Exupéry Müller-Lefèvre ", 58),
            "usage_name": _fill("Nguyễn-Dupont-Aignan d'Amico-O'Connor Le Gall ", 58),
            "first_names": [
                _fill("Marie-Hélène-Éléonore ", 55),
                _fill("Anaïs-Maëlle-Chloé ", 55),
                _fill("Jean-Baptiste-Jérôme ", 55),
            ],
            "birth_date": "1993-05-23",
            "sex": "M",
            "birth_place": {
                "insee_code": "99109",
                "city": _fill("Berlin-Charlottenburg-Wilmersdorf ", 58),
                "country_code": "109",
                "country": _fill("ALLEMAGNE (RÉPUBLIQUE FÉDÉRALE D') ", 58),
            },
            "nir": f"{first13}{nir_key(first13):02d}",
        },
    }


def minimal_payload(today: date) -> dict[str, Any]:
    """Only what the contract requires; the CPF file identity is the shortest passage."""
    return {
        "type": "certification.delivered",
        "event_id": "6f1c2d3e-0a4b-4c5d-8e9f-101112131415",
        "record_id": "placeholder",
        "certification": {"type": "RS", "code": "RS5875"},
        "delivered_on": (today - timedelta(days=10)).isoformat(),
        "obtention": "PAR_SCORING",
        "cpf_file": {"id": "1234567891011", "holder_name": "Haba", "holder_first_name": "Bart"},
    }


def template(kind: str, today: date) -> DeliveredEvent:
    payload = maximal_payload(today) if kind == "max" else minimal_payload(today)
    decoded = decode(payload, registry(), today)
    if not decoded.valid or not isinstance(decoded.event, DeliveredEvent):
        raise BenchError(f"the {kind} event is not valid: {decoded.errors}")
    if decoded.warnings:
        raise BenchError(f"the {kind} event has warnings: {decoded.warnings}")
    return decoded.event


def record_id(kind: str, index: int) -> str:
    """Fixed width, so that every passage of a kind has the same size."""
    return f"{'EXAMPLATFORM-SESSION-2026' if kind == 'max' else 'MIN'}-{index:010d}"


def passages(kind: str, count: int, today: date) -> Iterator[DeliveredEvent]:
    base = template(kind, today)
    for index in range(count):
        yield base.model_copy(update={"record_id": record_id(kind, index)})


def header(created_at: datetime | None = None, certifier: Any = PIX) -> FluxHeader:
    return FluxHeader(
        str(uuid.uuid4()), created_at or datetime.now(PARIS), EMITTER, certifier, PROFILE
    )


def fitting_count(kind: str, today: date) -> tuple[int, int]:
    """(passages that fit in 190 MB, capped at the CDC's 200,000; bytes per passage)."""
    one = template(kind, today).model_copy(update={"record_id": record_id(kind, 0)})
    size = len(passage_bytes(one, PROFILE))
    room = MAX_FILE_BYTES - envelope_bytes(header(), 1)
    return min(CDC_MAX_PASSAGES, room // size), size


# -- the naive baseline ----------------------------------------------------------------------


def naive_file(path: Path, head: FluxHeader, events: Iterator[DeliveredEvent]) -> int:
    """The obvious way: the whole tree in memory, serialised, parsed back, validated."""
    sub = etree.SubElement
    root = etree.Element(q("flux"), nsmap=NSMAP)
    sub(root, q("idFlux")).text = head.id_flux
    sub(root, q("horodatage")).text = head.horodatage
    if head.profile.action is not None:
        sub(root, q("action")).text = head.profile.action
    emitter = sub(root, q("emetteur"))
    sub(emitter, q("idClient")).text = head.emitter.id_client
    certifier = sub(sub(emitter, q("certificateurs")), q("certificateur"))
    sub(certifier, q("idClient")).text = head.certifier.id_client
    sub(certifier, q("idContrat")).text = head.certifier.id_contrat
    certifications = sub(certifier, q("certifications"))
    current: str | None = None
    block: Any = None
    for event in events:
        if event.certification.code != current:
            current = event.certification.code
            certification = sub(certifications, q("certification"))
            sub(certification, q("type")).text = event.certification.type
            sub(certification, q("code")).text = current
            sub(certification, q("natureDeposant")).text = head.emitter.nature
            block = sub(certification, q("passageCertifications"))
        block.append(passage_element(event, head.profile))
    data = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    with path.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
    document = etree.fromstring(data, parser)
    schema = load_schema(schema_path(head.profile))
    if not schema.validate(document):
        raise BenchError(f"naive file is not valid: {str(schema.error_log)[:500]}")
    return len(data)


# -- scenarios (each in its own interpreter) -------------------------------------------------


def scenario_idle() -> None:
    load_schema(schema_path(PROFILE))
    template("max", paris_today())
    emit_result({})


def scenario_file(method: str, kind: str, count: int, profile: bool) -> None:
    today = paris_today()
    xsd = schema_path(PROFILE)
    load_schema(xsd)
    template(kind, today)  # pydantic and lxml warmed; their import is not the work measured
    result: dict[str, Any] = {}
    with scratch_dir(f"render-{method}") as folder:
        head = header()
        start, cpu = time.perf_counter(), cpu_seconds()
        if method == "release":
            released = release(
                folder, head, passages(kind, count, today), xsd=xsd, max_bytes=MAX_FILE_BYTES
            )
            size, written = released.size, released.passages
        else:
            size = naive_file(folder / "naive.xml", head, passages(kind, count, today))
            written = count
        result["seconds"] = time.perf_counter() - start
        result["cpu_seconds"] = cpu_seconds() - cpu
        result["peak_rss_mb"] = peak_rss_mb()
        result |= {"bytes": size, "passages": written}
        if profile and method == "release":
            for path in folder.rglob("*.xml"):
                path.unlink()
            result["stages"] = release_stages(folder / "stages.xml", kind, count, today, xsd)
            sample = min(count, 20_000)
            with maybe_profile(True, f"release() of {sample:,} {kind} passages"):
                release(folder, header(), passages(kind, sample, today), xsd=xsd)
    emit_result(result)


def release_stages(
    path: Path, kind: str, count: int, today: date, xsd: Path
) -> dict[str, dict[str, float]]:
    """release()'s steps timed one by one (wall and CPU seconds), without a profiler."""
    stages: dict[str, dict[str, float]] = {}

    def timed(name: str, step: Any) -> None:
        start, cpu = time.perf_counter(), cpu_seconds()
        step()
        stages[name] = {"seconds": time.perf_counter() - start, "cpu": cpu_seconds() - cpu}

    def events_only() -> None:
        for _ in passages(kind, count, today):
            pass

    def digest() -> None:
        sha = hashlib.sha256()
        with path.open("rb") as source:
            while block := source.read(1 << 20):
                sha.update(block)

    with path.open("wb") as handle:

        def sync() -> None:
            handle.flush()
            os.fsync(handle.fileno())

        timed("render_flux", lambda: render_flux(handle, header(), passages(kind, count, today)))
        timed("fsync", sync)
    timed("check_file", lambda: check_file(path, xsd))
    timed("sha256", digest)
    timed("(passage source alone)", events_only)
    path.unlink()
    return stages


def warm_events(count: int, today: date) -> list[DeliveredEvent]:
    """Realistic events of one certifier with two codes, decoded and sorted as a batch is."""
    reg = registry()
    events = []
    for payload in generate_events(
        count, generated_certifiers([CAMPUS]), today=today, seed=7, max_age_days=60
    ):
        decoded = decode(payload, reg, today)
        if not decoded.valid or not isinstance(decoded.event, DeliveredEvent):
            raise BenchError(f"generated event not valid: {decoded.errors}")
        events.append(decoded.event)
    events.sort(key=lambda e: (e.certification.code, e.record_id))
    return events


def scenario_warm(count: int, runs: int, profile: bool) -> None:
    today = paris_today()
    events = warm_events(count, today)
    xsd = schema_path(PROFILE)
    load_schema(xsd)
    times, render_times, check_times = [], [], []
    with scratch_dir("render-warm") as folder:
        cpu = cpu_seconds()
        for _ in range(runs):
            start = time.perf_counter()
            released = release(folder, header(certifier=CAMPUS), events, xsd=xsd)
            times.append(time.perf_counter() - start)
            if released.passages != count:
                raise BenchError(f"released {released.passages} passages, expected {count}")
        cpu_per_run = (cpu_seconds() - cpu) / runs
        # Where the time goes, without the profiler's distortion: render alone, check alone.
        sample = folder / "sample.xml"
        for _ in range(runs):
            start = time.perf_counter()
            with sample.open("wb") as handle:
                render_flux(handle, header(certifier=CAMPUS), events)
            render_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            check_file(sample, xsd)
            check_times.append(time.perf_counter() - start)
        size = sample.stat().st_size
        if profile:
            with maybe_profile(True, f"warm release() of {count:,} passages"):
                release(folder, header(certifier=CAMPUS), events, xsd=xsd)
    emit_result(
        {
            "runs": times,
            "median": median(times),
            "cpu_per_run": cpu_per_run,
            "render_median": median(render_times),
            "check_median": median(check_times),
            "bytes": size,
        }
    )


# -- the parent ------------------------------------------------------------------------------


def main() -> None:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--max-count", type=int, help="maximal passages (default: fill 190 MB)")
    parser.add_argument("--min-count", type=int, help="minimal passages (default: 200,000)")
    parser.add_argument("--warm-count", type=int, help="passages of the warm file (1,000)")
    parser.add_argument("--runs", type=int, default=5, help="warm runs (median)")
    parser.add_argument("--skip-naive", action="store_true", help="no naive baseline")
    parser.add_argument("--kind", choices=("max", "min"), help=argparse.SUPPRESS)
    parser.add_argument("--method", choices=("release", "naive"), help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.scenario == "idle":
        return scenario_idle()
    if args.scenario == "file":
        return scenario_file(args.method, args.kind, args.count, args.profile)
    if args.scenario == "warm":
        return scenario_warm(args.count, args.runs, args.profile)

    today = paris_today()
    fit_max, max_size = fitting_count("max", today)
    fit_min, min_size = fitting_count("min", today)
    counts = {
        "max": args.max_count or (2_000 if args.quick else fit_max),
        "min": args.min_count or (5_000 if args.quick else fit_min),
    }
    warm_count = args.warm_count or (200 if args.quick else 1_000)
    runs = 3 if args.quick else args.runs
    report = Report(
        "render",
        args.quick,
        {
            "max_passages": counts["max"],
            "max_passage_bytes": max_size,
            "min_passages": counts["min"],
            "min_passage_bytes": min_size,
            "warm_passages": warm_count,
            "schema": PROFILE.version,
        },
    )
    flags = ["--profile"] if args.profile else []
    idle = run_scenario("render", "idle")
    results: dict[str, Any] = {"idle": idle}
    for kind in ("max", "min"):
        n = str(counts[kind])
        done = run_scenario(
            "render",
            "file",
            "--method=release",
            f"--kind={kind}",
            f"--count={n}",
            *flags,
            show_stderr=args.profile,
        )
        results[f"release-{kind}"] = done
        if done["passages"] != counts[kind]:
            raise BenchError(f"release wrote {done['passages']} passages, not {counts[kind]}")
        if not args.skip_naive:
            results[f"naive-{kind}"] = run_scenario(
                "render", "file", "--method=naive", f"--kind={kind}", f"--count={n}"
            )
        label = (
            f"{counts[kind]:,} {kind} passages, {done['bytes'] / 1e6:.1f} MB; "
            f"CPU {done['cpu_seconds']:.1f} s"
        )
        seconds = done["seconds"]
        report.add(at_most(f"release() {kind}: seconds", seconds, "s", TARGET_SECONDS, label))
        for stage, spent in done.get("stages", {}).items():
            report.add(info(f"  stage {stage}", spent["seconds"], "s", f"CPU {spent['cpu']:.2f} s"))
        report.add(
            at_most(
                f"release() {kind}: peak RSS",
                done["peak_rss_mb"],
                "MiB",
                TARGET_RSS_MB,
                f"idle interpreter with the same imports: {idle['peak_rss_mb']:.0f} MiB",
            )
        )
        naive = results.get(f"naive-{kind}")
        if naive is not None:
            report.add(
                info(
                    f"naive lxml {kind}: seconds",
                    naive["seconds"],
                    "s",
                    f"CPU {naive['cpu_seconds']:.1f} s",
                )
            )
            report.add(info(f"naive lxml {kind}: peak RSS", naive["peak_rss_mb"], "MiB"))
            report.add(
                info(
                    f"ratio release/naive {kind}: time",
                    done["seconds"] / naive["seconds"],
                    "x",
                    "< 1: release() is faster",
                )
            )
            report.add(
                info(
                    f"ratio release/naive {kind}: peak RSS",
                    done["peak_rss_mb"] / naive["peak_rss_mb"],
                    "x",
                )
            )

    warm = run_scenario(
        "render",
        "warm",
        f"--count={warm_count}",
        f"--runs={runs}",
        *flags,
        show_stderr=args.profile,
    )
    results["warm"] = warm
    report.add(
        at_most(
            f"warm release() of {warm_count:,}: median",
            warm["median"],
            "s",
            TARGET_WARM_SECONDS,
            f"{runs} runs: "
            + ", ".join(f"{t:.3f}" for t in warm["runs"])
            + f"; CPU {warm['cpu_per_run']:.3f} s/run",
        )
    )
    report.add(
        info(
            "  of which render alone",
            warm["render_median"],
            "s",
            f"check_file alone {warm['check_median']:.3f} s; {warm['bytes'] / 1e3:.0f} kB",
        )
    )
    report.details = results
    finish(report, args.json)


if __name__ == "__main__":
    main()
