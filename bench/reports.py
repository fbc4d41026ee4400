"""Reading a CDC processing report at the CDC's limits: `parse_report` against a whole tree.

    python -m bench.reports [--passages N] [--quick] [--json]

A report refusing every passage of a file at the CDC's limit (200,000 passages), each with
the longest message seen ("... enrichis du jour et du mois de naissance"), written once with
UUID ids (36 characters) and once with the 255-character ids the contract allows (~100 MB).
Each is read in a fresh interpreter (started by the launcher: its own peak RSS) by
`parse_report` (streamed, `sinks/reports.py`), then by the baseline: `etree.fromstring` of
the same bytes and the same outcomes read from the tree, as the reader did until session 25.
Targets: <= 20 s and peak RSS <= 300 MiB per report, whatever the ids.
"""

from __future__ import annotations

import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from accrochage.models.vocabulary import CDC_MAX_PASSAGES
from bench._common import (
    BenchError,
    Report,
    at_most,
    base_parser,
    cpu_seconds,
    emit_result,
    finish,
    info,
    run_scenario,
)

TARGET_SECONDS = 20.0
TARGET_RSS_MB = 300.0
MESSAGE = (
    "Aucun titulaire ne correspond aux critères obligatoires enrichis du jour et du mois de "
    "naissance"
)


def write_report(path: Path, passages: int, id_length: int) -> int:
    """A report refusing `passages` passages, laid out as the CDC's (SPEC §9.1); its size."""
    head = (
        '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
        '<rapport xmlns:ns2="urn:cdc:cpf:pc5:rapport:schema">\n'
        "    <nomFichier>bench.xml</nomFichier>\n"
        f"    <idFlux>{uuid.uuid4()}</idFlux>\n"
        "    <idTraitement>67598</idTraitement>\n    <PassagesKO>\n"
    )
    with path.open("w", encoding="utf-8") as out:
        out.write(head)
        for n in range(passages):
            record_id = (f"{n:08d}-" + uuid.uuid4().hex * 8)[:id_length]
            out.write(
                "        <passage>\n"
                f"            <idTechnique>{record_id}</idTechnique>\n"
                f"            <messageErreur>{MESSAGE}</messageErreur>\n"
                "        </passage>\n"
            )
        out.write("    </PassagesKO>\n    <PassagesOK>\n    </PassagesOK>\n</rapport>\n")
    return path.stat().st_size


def read_streamed(data: bytes) -> int:
    from accrochage.sinks.reports import parse_report

    return len(parse_report(data, source="bench").outcomes)


def read_whole_tree(data: bytes) -> int:
    """The reader as it was: the whole tree, then its passages."""
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
    root = etree.fromstring(data, parser)
    outcomes = {
        passage.findtext("idTechnique"): passage.findtext("messageErreur")
        for passage in root.iterfind("PassagesKO/passage")
    }
    return len(outcomes)


def scenario(method: str, path: str) -> None:
    data = Path(path).read_bytes()
    start, cpu = time.perf_counter(), cpu_seconds()
    passages = (read_streamed if method == "streamed" else read_whole_tree)(data)
    emit_result(
        {
            "passages": passages,
            "seconds": time.perf_counter() - start,
            "cpu_seconds": cpu_seconds() - cpu,
        }
    )


def main() -> None:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--passages", type=int, help=f"default {CDC_MAX_PASSAGES:,}")
    parser.add_argument("--method", help="(scenario) streamed or tree")
    parser.add_argument("--path", help="(scenario) the report")
    args = parser.parse_args()
    if args.scenario:
        scenario(args.method, args.path)
        return
    passages = args.passages or (5_000 if args.quick else CDC_MAX_PASSAGES)
    report = Report("reports", args.quick, {"passages": passages, "message_chars": len(MESSAGE)})
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="accrochage-bench-reports-") as folder:
        for id_length in (36, 255):
            path = Path(folder) / f"report-{id_length}.xml"
            size = write_report(path, passages, id_length)
            runs = {
                method: run_scenario("reports", "report", f"--method={method}", f"--path={path}")
                for method in ("streamed", "tree")
            }
            for method, done in runs.items():
                if done["passages"] != passages:
                    raise BenchError(f"{method} read {done['passages']} passages of {passages}")
            results[str(id_length)] = {"bytes": size, **runs}
            add_metrics(report, id_length, size, runs)
            path.unlink()
    report.details = results
    finish(report, args.json)


def add_metrics(report: Report, id_length: int, size: int, runs: dict[str, Any]) -> None:
    streamed, tree = runs["streamed"], runs["tree"]
    label = f"ids of {id_length} chars, {size / 2**20:.1f} MiB"
    report.add(
        at_most(
            f"parse_report ({id_length}): seconds",
            streamed["seconds"],
            "s",
            TARGET_SECONDS,
            f"{label}; CPU {streamed['cpu_seconds']:.1f} s",
        )
    )
    report.add(
        at_most(
            f"parse_report ({id_length}): peak RSS",
            streamed["peak_rss_mb"],
            "MiB",
            TARGET_RSS_MB,
            f"the report's bytes are {size / 2**20:.0f} MiB of it",
        )
    )
    report.add(
        info(
            f"whole tree ({id_length}): peak RSS",
            tree["peak_rss_mb"],
            "MiB",
            f"{tree['seconds']:.2f} s, CPU {tree['cpu_seconds']:.1f} s",
        )
    )
    report.add(
        info(
            f"ratio parse_report / whole tree ({id_length}): peak RSS",
            streamed["peak_rss_mb"] / tree["peak_rss_mb"],
            "x",
            f"time {streamed['seconds'] / tree['seconds']:.2f}x",
        )
    )


if __name__ == "__main__":
    sys.exit(main())
