"""The CDC loop at the CDC's size: a report accepting every passage of a large file, the
SUPPRESSION of a mass revocation, and its report. How long each holds the write lock.

    python -m bench.cdc_loop [--events N] [--quick] [--json]

N generated events of one certifier (default 100,000; 2,000 with --quick) are stored by
`accrochage ingest` and cut into one CREATION file of N passages, written. The state is
copied (SQLite's backup), and on each copy a CDC processing report naming every passage in
its PassagesOK is imported (`Feedback.import_report`) while a probe (another store on the
state, as a service's writer) writes a row every 5 ms, each write timed: once as the product
applies it (the plain acceptances by SQL), once with every outcome through the record's life
in Python (as before session 51), the baseline. The first copy's N records are then revoked,
one `certification.revoked` event each (`accrochage ingest`), in schema 1.1.5, and the state
copied again; each copy is cut in-process (`Flusher.cut`, every record forced, `max_records`
= N), with the probe: once with the SUPPRESSION file cut in parts of `CUT_PER_TRANSACTION`,
once in one transaction, the baseline. Before session 51 the SUPPRESSION's plan (every
record to withdraw read, the file split) was read and the file cut in one write transaction:
longer than this baseline. The file cut in parts is then written, and a report accepting
every passage of it imported, as the product applies it (the revoked records withdrawn by
SQL) and through the record's life, on two copies, with the probe. No target: issue 13 asks
that "the batch cut never holds the writer back for long"; this says how long.
"""

from __future__ import annotations

import json
import statistics
import uuid
from pathlib import Path
from typing import Any

from accrochage.app import build_core
from accrochage.settings import load_settings
from accrochage.streams import cut_group, report_outcomes
from accrochage.streams.flush_report import FlushReport, WrittenBatch
from bench._common import (
    BenchError,
    Report,
    accrochage_command,
    base_parser,
    clean_env,
    finish,
    info,
    run_measured,
    scratch_dir,
    write_config,
)
from bench.cut import Cut, copied, product_cut, stored_state
from bench.probe import measured

SCHEMA = "1.1.5"
"""The first schema with SUPPRESSION files."""


def accepted_report(path: Path, file_name: str, batch_id: str, record_ids: list[str]) -> None:
    """A CDC processing report accepting every passage of one file (SPEC §9.1)."""
    with path.open("w", encoding="utf-8") as out:
        out.write(
            '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
            '<rapport xmlns:ns2="urn:cdc:cpf:pc5:rapport:schema">\n'
            f"    <nomFichier>{file_name}</nomFichier>\n    <idFlux>{batch_id}</idFlux>\n"
            "    <idTraitement>67598</idTraitement>\n    <PassagesKO>\n    </PassagesKO>\n"
            "    <PassagesOK>\n"
        )
        for record_id in record_ids:
            out.write(f"        <idTechnique>{record_id}</idTechnique>\n")
        out.write("    </PassagesOK>\n</rapport>\n")


def written_state(folder: Path, count: int) -> tuple[Path, list[str], WrittenBatch]:
    """A state of `count` records of one certifier in one written CREATION file: the state,
    the records' ids, the file; their revocations written to `folder/revocations.jsonl`.

    The events are not kept: a process holding 100,000 of them (about two million objects)
    paused about 0.4 s in one of the cut's parts, the collector walking them all."""
    state, _ = stored_state(folder, count)
    core = build_core(load_settings(write_config(state.parent, max_records=count, schema=SCHEMA)))
    try:
        flushed = core.flusher.flush(force=True)
    finally:
        core.close()
    if not flushed.ok or len(flushed.written) != 1:
        raise BenchError(f"expected one CREATION file: {flushed}")
    record_ids = []
    with (
        (folder / "events.jsonl").open(encoding="utf-8") as events,
        (folder / "revocations.jsonl").open("w", encoding="utf-8") as out,
    ):
        for line in events:
            event = json.loads(line)
            record_ids.append(event["record_id"])
            out.write(json.dumps(revocation_of(event)) + "\n")
    return state, record_ids, flushed.written[0]


def revocation_of(event: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "certification.revoked",
        "event_id": str(uuid.uuid4()),
        "record_id": event["record_id"],
        "certifier": event["certifier"],
        "certification": event["certification"],
        "reason": "bench: a mass revocation",
    }


def product_import(state: Path, report: Path, count: int, *, plain: bool = True) -> Cut:
    """`report` imported into `state` with a `WriterProbe`; `plain`: False applies every
    outcome through the record's life (the import before session 51)."""
    core = build_core(load_settings(write_config(state.parent, max_records=count, schema=SCHEMA)))
    by_sql = report_outcomes._accepted_plain
    if not plain:
        report_outcomes._accepted_plain = lambda *_: {}
    try:
        with measured(core, state, True) as (held, waits):
            summary = core.feedback.import_report(report)
    finally:
        report_outcomes._accepted_plain = by_sql
        core.close()
    if len(summary.accepted) != count:
        raise BenchError(f"expected {count} passages accepted: {len(summary.accepted)}")
    return Cut(held, 1, waits)


def written_unwritten(state: Path, count: int) -> WrittenBatch:
    """The one batch cut and not written in `state` (the SUPPRESSION file), written."""
    core = build_core(load_settings(write_config(state.parent, max_records=count, schema=SCHEMA)))
    report = FlushReport()
    try:
        core.flusher.write_unwritten(report)
    finally:
        core.close()
    if not report.ok or len(report.written) != 1:
        raise BenchError(f"expected one SUPPRESSION file written: {report}")
    return report.written[0]


def revoke(folder: Path, state: Path, count: int) -> None:
    """Every record revoked, by `accrochage ingest` of `folder/revocations.jsonl`."""
    config = write_config(state.parent, max_records=count, schema=SCHEMA)
    revocations = folder / "revocations.jsonl"
    command = [*accrochage_command(), "--config", str(config), "ingest", str(revocations)]
    done = run_measured(command, cwd=folder, env=clean_env())
    if done.returncode != 0:
        raise BenchError(f"ingest of the revocations failed:\n{done.stderr[-3000:]}")


def product_withdrawal(state: Path, count: int, per_transaction: int | None = None) -> Cut:
    """`state`'s records to withdraw cut into one SUPPRESSION file, with a `WriterProbe`;
    `per_transaction`: members a transaction instead of `CUT_PER_TRANSACTION`."""
    cut = product_cut(state, count, per_transaction, probe=True, schema=SCHEMA)
    if cut.batches != 1:
        raise BenchError(f"expected one SUPPRESSION file: {cut.batches} cut")
    return cut


def main() -> None:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--events", type=int, help="passages of the file (default 100,000)")
    args = parser.parse_args()
    count = args.events or (2_000 if args.quick else 100_000)
    report = Report("cdc_loop", args.quick, {"events": count, "certifiers": 1})
    with scratch_dir("cdc_loop") as folder:
        state, record_ids, written = written_state(folder, count)
        accepted = folder / "report.xml"
        accepted_report(accepted, written.path.name, written.batch_id, record_ids)
        python_state = copied(state, folder / "python")
        imported = product_import(state, accepted, count)
        imported_python = product_import(python_state, accepted, count, plain=False)
        revoke(folder, state, count)
        parts_state = copied(state, folder / "parts")
        parts = product_withdrawal(parts_state, count)
        whole = product_withdrawal(copied(state, folder / "whole"), count, count)
        suppression = written_unwritten(parts_state, count)
        withdrawn_report = folder / "withdrawn.xml"
        accepted_report(withdrawn_report, suppression.path.name, suppression.batch_id, record_ids)
        python_state = copied(parts_state, folder / "withdrawn-python")
        withdrawn = product_import(parts_state, withdrawn_report, count)
        withdrawn_python = product_import(python_state, withdrawn_report, count, plain=False)
    add_import(report, "CREATION", "a report accepting", count, imported, imported_python)
    add_withdrawal(report, count, parts, whole)
    add_import(report, "SUPPRESSION", "the report withdrawing", count, withdrawn, withdrawn_python)
    report.details = {
        "held_withdrawn": withdrawn.held,
        "held_withdrawn_python": withdrawn_python.held,
        "held_import": imported.held,
        "held_import_python": imported_python.held,
        "probe_import": imported.waits,
        "probe_import_python": imported_python.waits,
        "held_parts": parts.held,
        "held_whole": whole.held,
        "probe_parts": parts.waits,
        "probe_whole": whole.waits,
    }
    finish(report, args.json)


def add_import(
    report: Report, action: str, what: str, count: int, imported: Cut, baseline: Cut
) -> None:
    report.add(
        info(
            f"{action} report import, its write transaction",
            max(imported.held) * 1000,
            "ms",
            f"{what} {count:,} passages, one transaction; the probe's longest write "
            f"meanwhile {max(imported.waits) * 1000:.0f} ms ({len(imported.waits)} writes)",
        )
    )
    report.add(
        info(
            "  baseline: every outcome through the record's life",
            max(baseline.held) * 1000,
            "ms",
            f"the import before session 51; the probe's longest write meanwhile "
            f"{max(baseline.waits) * 1000:.0f} ms",
        )
    )
    report.add(
        info(
            f"ratio: a writer's longest wait, {action} import / baseline",
            max(imported.waits) / max(baseline.waits),
            "x",
        )
    )


def add_withdrawal(report: Report, count: int, parts: Cut, whole: Cut) -> None:
    longest, together = max(parts.held), sum(parts.held)
    report.add(
        info(
            "longest write transaction, one SUPPRESSION file",
            longest * 1000,
            "ms",
            f"{count:,} records revoked, max_records = {count:,}, cut in parts of "
            f"{cut_group.CUT_PER_TRANSACTION:,}: {len(parts.held)} write transactions, together "
            f"{together * 1000:.0f} ms ({together / count * 1e6:.1f} µs a member)",
        )
    )
    report.add(
        info(
            "  a writer's longest write meanwhile",
            max(parts.waits) * 1000,
            "ms",
            f"another store writing a row every 5 ms: {len(parts.waits)} writes, median "
            f"{statistics.median(parts.waits) * 1000:.1f} ms",
        )
    )
    report.add(
        info(
            "  baseline: the same cut in one transaction",
            max(whole.held) * 1000,
            "ms",
            f"the writer's longest write meanwhile {max(whole.waits) * 1000:.0f} ms "
            f"({len(whole.waits)} writes)",
        )
    )
    report.add(
        info(
            "ratio: a writer's longest wait, in parts / one transaction",
            max(parts.waits) / max(whole.waits),
            "x",
        )
    )


if __name__ == "__main__":
    main()
